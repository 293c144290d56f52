package peers

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// Machine describes where a report was measured.
type Machine struct {
	CPU, Memory, Kernel, Go, Redis, Etcd string
	Cores                                int
	LoadBefore                           string // /proc/loadavg when the run started
}

// DescribeMachine reads the machine's description (call it before the run,
// for the load average); redisBin is "" if the run has no Redis.
func DescribeMachine(redisBin string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown", Memory: "unknown",
		Kernel: strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")), LoadBefore: loadAverage()}
	for line := range strings.Lines(readFile("/proc/cpuinfo")) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			m.CPU = strings.TrimSpace(v)
			break
		}
	}
	for line := range strings.Lines(readFile("/proc/meminfo")) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			var kb int64
			_, _ = fmt.Sscan(f[1], &kb)
			m.Memory = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
		}
	}
	if redisBin == "" {
		// no Redis in this run
	} else if out, err := exec.Command(redisBin, "--version").Output(); err == nil {
		m.Redis = strings.TrimSpace(string(out))
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "go.etcd.io/etcd/client/v3" { // the server is the same release (go.mod)
				m.Etcd = d.Version
			}
		}
	}
	return m
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func loadAverage() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// Report is the Markdown and the plot of a run's results.
type Report struct {
	Results *Results
	Machine Machine
	Command string // quoted as the command that made it
	Commit  string // of the bouncer binary
	Plot    string // the plot's path from the Markdown's directory (set by Write)
}

// targetClients is the client count the targets are stated at.
const targetClients = 64

// Write writes the Markdown to mdPath and the plot to pngPath.
func (rep Report) Write(mdPath, pngPath string) error {
	plotted, err := WritePlot(rep.Results, pngPath)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	rep.Plot = ""
	if plotted {
		rep.Plot = relPath(filepath.Dir(mdPath), pngPath)
	}
	return os.WriteFile(mdPath, []byte(rep.Markdown()), 0o644)
}

func relPath(base, target string) string {
	rel, err := filepath.Rel(base, target)
	if err != nil {
		return target
	}
	return rel
}

// Markdown is the whole report.
func (rep Report) Markdown() string {
	var b strings.Builder
	rep.header(&b)
	b.WriteString("\n## Results\n\n")
	rep.table(&b)
	b.WriteString("\n## Targets (at 64 clients)\n\n")
	rep.targets(&b)
	if len(rep.Results.Floors) > 0 {
		b.WriteString("\n## The floor\n\n")
		rep.floorTable(&b)
	}
	if p := rep.Results.Plan; p.Failover.Kills > 0 && slices.ContainsFunc(p.Systems, func(s System) bool { return s.Members > 0 }) {
		b.WriteString("\n## Failover (groups of " + fmt.Sprint(GroupSize) + ")\n\n")
		rep.failoverTable(&b)
	}
	if rep.Plot != "" {
		fmt.Fprintf(&b, "\n![throughput and p99 acquire latency by client count](%s)\n", rep.Plot)
	}
	rep.method(&b)
	return b.String()
}

func (rep Report) header(b *strings.Builder) {
	r, m := rep.Results, rep.Machine
	p := r.Plan
	fmt.Fprintf(b, "# Bouncer and its peers, side by side\n\n")
	fmt.Fprintf(b, "Measured %s, in %v. ", r.Start.UTC().Format("2006-01-02 15:04 MST"), r.Finished.Sub(r.Start).Round(time.Second))
	fmt.Fprintf(b, "Every figure is the **median of %d runs**: in each run every system is started afresh "+
		"(data on disk), the systems taking turns in an order rotated by one per run, and each cell is a warm-up of %v "+
		"and then a measured window of %v, with the same clients for every system. "+
		"The held-locks row is one run per system, on a server of its own.", p.Runs, p.Timing.Warmup, p.Timing.Window)
	if groups := rep.groups(); len(groups) > 0 {
		fmt.Fprintf(b, " The groups of %d (%s) take their turns in the same runs, at %s; their failover is measured once, after the runs.",
			GroupSize, strings.Join(groups, ", "), cellList(p.GroupCells))
	}
	b.WriteString("\n\n")
	if rep.Command != "" {
		fmt.Fprintf(b, "Command: `%s`", rep.Command)
		if rep.Commit != "" {
			fmt.Fprintf(b, " (bouncer at %s)", rep.Commit)
		}
		b.WriteString("\n\n")
	}
	redis := ""
	if m.Redis != "" {
		redis = "; " + m.Redis
	}
	fmt.Fprintf(b, "Machine: %s, %d cores, %s memory, Linux %s, %s%s; etcd %s. Load average at the start: %s, at the end: %s "+
		"(the load generator shares the machine with the server, as do other jobs; ratios measured side by side are what holds).\n",
		m.CPU, m.Cores, m.Memory, m.Kernel, m.Go, redis, m.Etcd, m.LoadBefore, loadAverage())
}

func (rep Report) table(b *strings.Builder) {
	r := rep.Results
	b.WriteString("| workload | clients | system | ops/s | p50 | p99 | p99.9 | server RSS | CPU/op: server | CPU/op: clients " +
		"| Bouncer ÷ this: ops/s | Bouncer ÷ this: p99 | Bouncer ÷ this: RSS | notes |\n")
	b.WriteString("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, c := range rep.cells() {
		for _, sys := range r.Plan.Systems {
			if !rep.measures(sys, c) {
				continue
			}
			ref, hasRef := r.Median(Key{c.Workload, c.Clients, sys.Ref})
			k := Key{c.Workload, c.Clients, sys.Name}
			row, ok := r.Median(k)
			lead := fmt.Sprintf("| %v | %d | %s |", c.Workload, c.Clients, sys.Name)
			switch {
			case c.Workload == Mixed && sys.Shared == "":
				fmt.Fprintf(b, "%s n/a | | | | | | | | | | no shared mode (not emulated) |\n", lead)
				continue
			case !ok:
				fmt.Fprintf(b, "%s failed | | | | | | | | | | %s |\n", lead, rep.failures(k))
				continue
			}
			ratios := " | | |"
			if hasRef && sys.Ref != "" {
				ratios = fmt.Sprintf(" %s | %s | %s |", ratio(ref.Rate, row.Rate),
					ratio(float64(ref.P99), float64(row.P99)), ratio(float64(ref.RSS), float64(row.RSS)))
			}
			fmt.Fprintf(b, "%s %s | %s | %s | %s | %s | %s | %s |%s %s |\n", lead, rate(row.Rate), lat(row.P50), lat(row.P99),
				lat(row.P999), mibShort(row.RSS), micros(row.ServerCPUPerOp), micros(row.ClientCPUPerOp), ratios, rep.notes(c, sys, k, row))
		}
	}
}

// measures reports whether the plan measures cell c on sys.
func (rep Report) measures(sys System, c Cell) bool {
	if c.Workload == Table {
		return sys.Members == 0
	}
	return slices.Contains(rep.Results.Plan.CellsOf(sys), c)
}

// cells lists the rows' cells in the plan's order, the held-locks last.
// groups names the plan's replicated groups.
func (rep Report) groups() []string {
	var names []string
	for _, s := range rep.Results.Plan.Systems {
		if s.Members > 0 {
			names = append(names, s.Name)
		}
	}
	return names
}

// cellList is "uncontended at 64 clients, contended at 64 clients".
func cellList(cells []Cell) string {
	var parts []string
	for _, c := range cells {
		parts = append(parts, fmt.Sprintf("%v at %d clients", c.Workload, c.Clients))
	}
	return strings.Join(parts, " and ")
}

func (rep Report) cells() []Cell {
	p := rep.Results.Plan
	cells := p.AllCells()
	if p.TableClients > 0 {
		cells = append(cells, Cell{Table, p.TableClients})
	}
	return cells
}

func (rep Report) notes(c Cell, sys System, k Key, row Row) string {
	var n []string
	switch c.Workload {
	case TryLock:
		n = append(n, fmt.Sprintf("ops are attempts; %.0f%% granted (%s/s)", 100*row.GrantedRate/row.Rate, rate(row.GrantedRate)))
	case Mixed:
		n = append(n, "readers: "+sys.Shared)
	case Table:
		n = append(n, fmt.Sprintf("ops/s: locks taken per second while %d were taken; RSS %s before, +%s",
			LockTableSize, mibShort(row.RSSBefore), mibShort(row.RSS-row.RSSBefore)))
	}
	if sys.Members > 0 {
		n = append(n, fmt.Sprintf("%d members: RSS and CPU summed over them", sys.Members))
	}
	if sys.Ref != "" && sys.Ref != "bouncer" {
		n = append(n, "ratios: "+sys.Ref+" ÷ this")
	}
	if sys.Members > 0 && strings.HasPrefix(sys.Name, "bouncer") {
		if one, ok := rep.Results.Median(Key{c.Workload, c.Clients, "bouncer"}); ok && one.Rate > 0 {
			n = append(n, fmt.Sprintf("%.2fx the ops/s of one bouncer node", row.Rate/one.Rate))
		}
	}
	if f := rep.failures(k); f != "" {
		n = append(n, f)
	}
	if c.Workload != Table && row.Runs < rep.Results.Plan.Runs {
		n = append(n, fmt.Sprintf("median of %d runs", row.Runs))
	}
	return strings.Join(n, "; ")
}

func (rep Report) failures(k Key) string {
	errs := rep.Results.Errors[k]
	if len(errs) == 0 {
		return ""
	}
	e := strings.ReplaceAll(errs[0], "|", "/")
	if len(e) > 160 {
		e = e[:160] + "..."
	}
	return fmt.Sprintf("failed in %d run(s): %s", len(errs), e)
}

// target is one of the targets: Bouncer's figure (of the system
// mine, "bouncer" if empty) over the peer's must be at least (or, for
// latency, memory and failover time, at most) want.
type target struct {
	what     string
	w        Workload
	clients  int
	peer     string
	measure  func(Row) float64
	want     float64
	atLeast  bool
	wantText string
	mine     string
	// failover: compare the failover medians (measure unused)
	failover func(FailoverRow) time.Duration
}

func (rep Report) targets(b *strings.Builder) {
	p99 := func(r Row) float64 { return float64(r.P99) }
	ops := func(r Row) float64 { return r.Rate }
	rss := func(r Row) float64 { return float64(r.RSS) }
	b3, e3 := fmt.Sprintf("bouncer-%d", GroupSize), fmt.Sprintf("etcd-%d", GroupSize)
	toFirst := func(r FailoverRow) time.Duration { return r.ToFirst }
	toN := func(r FailoverRow) time.Duration { return r.ToN }
	tc := rep.Results.Plan.TableClients
	ts := []target{
		{what: "uncontended throughput vs etcd", w: Uncontended, clients: targetClients, peer: "etcd", measure: ops, want: 5, atLeast: true, wantText: "≥ 5x"},
		{what: "uncontended throughput vs Redis (appendfsync always)", w: Uncontended, clients: targetClients, peer: "redis-always", measure: ops, want: 1, atLeast: true, wantText: "≥ 1x"},
		{what: "contended throughput vs etcd", w: Contended, clients: targetClients, peer: "etcd", measure: ops, want: 5, atLeast: true, wantText: "≥ 5x"},
		{what: "uncontended p99 acquire latency vs etcd", w: Uncontended, clients: targetClients, peer: "etcd", measure: p99, want: 0.5, wantText: "≤ 0.5x"},
		{what: "contended p99 acquire latency vs etcd", w: Contended, clients: targetClients, peer: "etcd", measure: p99, want: 0.5, wantText: "≤ 0.5x"},
		{what: "server RSS holding " + tableSize() + " locks vs Redis (appendfsync always)", w: Table, clients: tc, peer: "redis-always", measure: rss, want: 2, wantText: "≤ 2x"},
		{what: "server RSS holding " + tableSize() + " locks vs Redis (defaults)", w: Table, clients: tc, peer: "redis-default", measure: rss, want: 2, wantText: "≤ 2x"},
		{what: fmt.Sprintf("groups of %d: uncontended throughput, %s vs %s", GroupSize, b3, e3), w: Uncontended, clients: targetClients, mine: b3, peer: e3, measure: ops, want: 5, atLeast: true, wantText: "≥ 5x"},
		{what: fmt.Sprintf("groups of %d: contended throughput, %s vs %s", GroupSize, b3, e3), w: Contended, clients: targetClients, mine: b3, peer: e3, measure: ops, want: 5, atLeast: true, wantText: "≥ 5x"},
		{what: fmt.Sprintf("uncontended throughput, %s vs one bouncer node", b3), w: Uncontended, clients: targetClients, mine: b3, peer: "bouncer", measure: ops, want: 0.5, atLeast: true, wantText: "≥ 0.5x"},
		{what: fmt.Sprintf("contended throughput, %s vs one bouncer node", b3), w: Contended, clients: targetClients, mine: b3, peer: "bouncer", measure: ops, want: 0.5, atLeast: true, wantText: "≥ 0.5x"},
		{what: fmt.Sprintf("failover, leader SIGKILLed: median time to the first grant, %s vs %s", b3, e3), mine: b3, peer: e3, failover: toFirst, want: 1, wantText: "≤ 1x"},
		{what: fmt.Sprintf("failover, leader SIGKILLed: median time to %s grants, %s vs %s", commas(int64(rep.Results.Plan.Failover.Grants)), b3, e3), mine: b3, peer: e3, failover: toN, want: 1, wantText: "≤ 1x"},
	}
	b.WriteString("| target | wanted (Bouncer ÷ peer) | measured | |\n|---|--:|--:|---|\n")
	for _, t := range ts {
		if t.mine == "" {
			t.mine = "bouncer"
		}
		if !rep.planned(t.mine) || !rep.planned(t.peer) || t.failover != nil && rep.Results.Plan.Failover.Kills == 0 {
			continue
		}
		got, ok := rep.ratioOf(t)
		got = math.Round(got*100) / 100 // as shown: the verdict agrees with the figure
		switch {
		case !ok:
			fmt.Fprintf(b, "| %s | %s | not measured | |\n", t.what, t.wantText)
		case t.atLeast && got >= t.want || !t.atLeast && got <= t.want:
			fmt.Fprintf(b, "| %s | %s | %.2fx | met |\n", t.what, t.wantText, got)
		case t.atLeast:
			fmt.Fprintf(b, "| %s | %s | %.2fx | **missed**: at %.0f%% of the target |\n", t.what, t.wantText, got, 100*got/t.want)
		default:
			fmt.Fprintf(b, "| %s | %s | %.2fx | **missed**: %.2fx over the target |\n", t.what, t.wantText, got, got/t.want)
		}
	}
}

// planned reports whether the plan runs the system named.
func (rep Report) planned(name string) bool {
	return slices.ContainsFunc(rep.Results.Plan.Systems, func(s System) bool { return s.Name == name })
}

func (rep Report) ratioOf(t target) (float64, bool) {
	if t.failover != nil {
		mine, ok1 := failoverMedian(rep.Results.Failover[t.mine])
		theirs, ok2 := failoverMedian(rep.Results.Failover[t.peer])
		if !ok1 || !ok2 || t.failover(theirs) == 0 {
			return 0, false
		}
		return float64(t.failover(mine)) / float64(t.failover(theirs)), true
	}
	mine, ok1 := rep.Results.Median(Key{t.w, t.clients, t.mine})
	theirs, ok2 := rep.Results.Median(Key{t.w, t.clients, t.peer})
	if !ok1 || !ok2 || t.measure(theirs) == 0 {
		return 0, false
	}
	return t.measure(mine) / t.measure(theirs), true
}

// errorKinds lists the n most frequent error messages with their counts.
func errorKinds(kinds map[string]int, n int) string {
	msgs := slices.Collect(maps.Keys(kinds))
	slices.SortFunc(msgs, func(a, b string) int {
		if c := cmp.Compare(kinds[b], kinds[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for i, m := range msgs {
		if i == n {
			parts = append(parts, fmt.Sprintf("%d more kinds", len(msgs)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%d× `%s`", kinds[m], strings.ReplaceAll(strings.ReplaceAll(m, "|", "/"), "`", "'")))
	}
	return strings.Join(parts, ", ")
}

// failoverTable is a row per group: the medians of its kills.
func (rep Report) failoverTable(b *strings.Builder) {
	r := rep.Results
	f := r.Plan.Failover
	fmt.Fprintf(b, "%d clients cycle locks (uncontended) on the group, given every member's address; the leader gets SIGKILL, "+
		"and the time runs from the kill to the first grant any client receives after it, and until %s grants have been received. The killed member is "+
		"restarted on its data and the group left to be whole again (every member following the leader, within %d entries of "+
		"its log) before the next kill. Medians of the kills. Both systems elect a new leader after a randomized election "+
		"timeout, by default 1 to 2 s in both (Bouncer: 10 to 20 ticks of 100 ms; etcd: 1,000 ms to 2,000 ms), so the time to the first "+
		"grant is mostly that draw, and a median of a few kills is noisy; \"new leader\" is when a member's log said it became the "+
		"leader (the harness reads the members' output as it comes), and the next column is the time from then to the first grant. Grants that arrive within %v of the kill are the "+
		"old leader's answers on their way and are not counted. A client whose call fails tries again every %v on the same "+
		"client and session (on a resource new to it), and opens a new client and session if its calls still fail after %v; "+
		"\"clients that saw calls fail\" is summed over the kills (a client's failures in a row count once).\n\n", f.Clients, commas(int64(f.Grants)), groupLagMax, f.Settle, failoverRetryPause, failoverRedialAfter)
	b.WriteString("| system | kills | new leader | to the first grant | (min – max) | first grant after the election | to " + commas(int64(f.Grants)) + " grants | " +
		"rejoin after restart | clients that saw calls fail | notes |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, sys := range r.Plan.Systems {
		if sys.Members == 0 {
			continue
		}
		var notes []string
		if errs := r.FailoverErrors[sys.Name]; len(errs) > 0 {
			e := strings.ReplaceAll(errs[0], "|", "/")
			if len(e) > 200 {
				e = e[:200] + "..."
			}
			notes = append(notes, fmt.Sprintf("%d kill(s) failed: %s", len(errs), e))
		}
		row, ok := failoverMedian(r.Failover[sys.Name])
		if !ok {
			fmt.Fprintf(b, "| %s | 0 | | failed | | | | | | %s |\n", sys.Name, strings.Join(notes, "; "))
			continue
		}
		if row.Residuals > 0 {
			notes = append(notes, fmt.Sprintf("%d grants within %v of the kills (the old leader's answers) not counted", row.Residuals, f.Settle))
		}
		if kinds := errorKinds(row.ErrorKinds, 3); kinds != "" {
			notes = append(notes, "the errors: "+kinds)
		}
		elected, after := "–", "–"
		if row.Elected > 0 {
			elected, after = lat(row.Elected), lat(row.AfterElection)
		}
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s – %s | %s | %s | %s | %d | %s |\n", sys.Name, row.Kills, elected, lat(row.ToFirst), lat(row.MinFirst),
			lat(row.MaxFirst), after, lat(row.ToN), lat(row.Rejoin), row.Errors, strings.Join(notes, "; "))
	}
}

func (rep Report) method(b *strings.Builder) {
	heldLocks := ""
	if tc := rep.Results.Plan.TableClients; tc > 0 {
		heldLocks = fmt.Sprintf(`- **held locks**: %d clients take %d distinct locks between them and keep them; the row's
  latency is that of every acquire while the table fills, its RSS the server's once all are held.
`, tc, LockTableSize)
	}
	b.WriteString("\n## How each system is run\n\n")
	for _, s := range rep.Results.Plan.Systems {
		fmt.Fprintf(b, "- **%s**: %s.\n", s.Name, s.About)
	}
	fmt.Fprintf(b, `
Every server runs as a process of its own on 127.0.0.1 with its data in a fresh directory on disk;
RSS is that process's VmRSS at the end of the cell. The load generator is one Go process: each
client has its own connection (and session or lease, where the system has them). Sessions, leases
and Redis keys have a %v TTL.

- **uncontended**: client i locks (exclusive) and unlocks a resource of its own, over and over.
- **contended**: every client locks and unlocks the same resource. Bouncer and etcd queue waiters
  on the server; Redis has no queue, so a client that finds the key set polls again after %v ±50%%.
- **try-lock**: every client try-locks one resource (Bouncer TryLock, etcd Mutex.TryLock, Redis
  SET NX once) and unlocks when granted; ops/s counts attempts, latency is that of the attempt.
- **shared/exclusive mix**: every client locks one resource, shared 9 times in 10 and exclusive
  otherwise. Redis has no shared mode: n/a, not emulated. etcd's concurrency package has none
  either; its client's experimental recipe.RWMutex is etcd's own reader-writer lock, so it is used.
%s
ops/s is lock+unlock cycles per second (try-lock: attempts; held locks: locks taken). CPU/op is the
CPU time (user and system, from /proc) used in the window by the server process, and by the load
generator's process (every client, for every system the same harness), divided by ops. Latency is
that of the acquire call as the client sees it, percentiles over every request started in the
window; "Bouncer ÷ this" above 1 means Bouncer is faster for ops/s, and below 1 means Bouncer is
lower (better) for p99 and RSS.
`, sessionTTL, RedisRetry, heldLocks)
	if groups := rep.groups(); len(groups) > 0 {
		fmt.Fprintf(b, `
Groups (%s): %d members each, every member a process of its own with its own data directory, all
on this machine: they share its cores and its disk with each other and with the load generator, so
a group pays for replication in CPU and fsyncs on the same hardware as one server. The clients are
given every member's address. RSS and CPU/op of a group are summed over its members. The ratios of
a group's rows are to bouncer-%d (etcd-%d's "Bouncer ÷ this" is bouncer-%d ÷ etcd-%d).
`, strings.Join(groups, ", "), GroupSize, GroupSize, GroupSize, GroupSize, GroupSize)
	}
}

func rate(v float64) string {
	switch {
	case v >= 100:
		return commas(int64(v + 0.5))
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func lat(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}

func micros(d time.Duration) string {
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func mibShort(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
