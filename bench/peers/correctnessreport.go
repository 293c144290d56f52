package peers

// CORRECTNESS.md: the table of verdicts per system and fault, the
// excerpts that show each violation, and the planted faults.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/bouncer-dlm/bouncer/linearizability"
)

// ReportMeta is what the report says of how it was made.
type ReportMeta struct {
	Command, Commit string
	Started         time.Time
	Took            time.Duration
	Config          CorrectnessConfig
	// Plot is the plot's file, relative to the report ("": none).
	Plot string
	// Pages is the directory, relative to the report, that CopyPages filled
	// with the failed checks' pages ("": none).
	Pages string
}

// cell sums one system's runs under one fault.
type cell struct {
	runs, lin, illegal, unknown   int
	overlaps                      int
	checks, lost                  int
	overlapTime, overlapMax       time.Duration
	staleTaken, staleRefused, ooo int
	newestRefused                 int
	avail                         float64
	writes                        int
}

func (c *cell) add(r *CheckRow) {
	c.runs++
	switch r.Linearizable {
	case "ok":
		c.lin++
	case "illegal":
		c.illegal++
	default:
		c.unknown++
	}
	c.overlaps += len(r.Overlaps)
	c.overlapTime += r.OverlapTime
	for _, o := range r.Overlaps {
		c.overlapMax = max(c.overlapMax, time.Duration(o.To-o.From))
	}
	c.checks += r.Checks
	c.lost += r.Lost
	c.staleTaken += r.StaleAccepted
	c.staleRefused += r.StaleRefused
	c.ooo += r.OutOfOrder
	c.newestRefused += r.NewestRefused
	c.avail += r.Availability
	c.writes += r.Writes
}

func violated(r *CheckRow) bool {
	return r.Linearizable != "ok" || len(r.Overlaps) > 0 || r.Lost > 0 || r.StaleAccepted > 0 || r.OutOfOrder > 0 ||
		r.NewestRefused > 0
}

// Shown is the run of each system under each fault whose violations the
// report shows: the first with one, in the order of faults and systems.
func Shown(faults, systems []string, rows []CheckRow) []*CheckRow {
	var out []*CheckRow
	for _, f := range faults {
		for _, s := range systems {
			for i := range rows {
				if r := &rows[i]; r.System == s && r.Fault == f && violated(r) {
					out = append(out, r)
					break
				}
			}
		}
	}
	return out
}

// PageName names a run's pages in the report's page directory.
func PageName(r *CheckRow) string { return fmt.Sprintf("%s-%s-%d", r.System, r.Fault, r.Seed) }

// CopyPages copies into dir the pages bouncer check wrote for the shown
// runs whose history failed (the replay page and Porcupine's), after it
// removes the pages of an earlier report there.
func CopyPages(dir string, shown []*CheckRow) error {
	old, err := filepath.Glob(filepath.Join(dir, "*.html"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, r := range shown {
		if r.Linearizable == "ok" {
			continue
		}
		for _, ext := range []string{".html", ".porcupine.html"} {
			b, err := os.ReadFile(filepath.Join(r.Dir, "history"+ext))
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, PageName(r)+ext), b, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteCorrectnessReport writes the report in markdown.
// again, if not nil, is a second run with other seeds, whose table is shown
// beside the first's.
func WriteCorrectnessReport(w io.Writer, meta ReportMeta, rows []CheckRow, planted []PlantedCheck, again *RunRecord) error {
	var b bytes.Buffer
	cfg := meta.Config
	b.WriteString(correctnessPreamble)
	fmt.Fprintf(&b, "## Results (%s, at %s)\n\n", meta.Started.UTC().Format("2006-01-02 15:04"), meta.Commit)
	runLine(&b, meta)
	verdictTable(&b, cfg, rows)
	if meta.Plot != "" {
		fmt.Fprintf(&b, "\n![Timelines of one run per system, and the violations of every run](%s)\n\n"+
			"Above, one run of each system (its lowest seed, under pause-client): each client's holds on each resource "+
			"(a bar while it believed it held the lock; a thin bar from where its count of the lease ran out until it "+
			"called the release), the fault shaded, and the writes at the store. Below, the violations of every run, "+
			"per fault and system, and the writes the fence refused.\n", meta.Plot)
	}
	fmt.Fprintf(&b, "\nEvery run, with what its fault did and when (since the run's start), and the check of its history (in %s):\n\n", cfg.Work)
	b.WriteString("| system | fault | seed | schedule | bouncer check |\n|---|---|---|---|---|\n")
	for i := range rows {
		r := &rows[i]
		check := strings.ReplaceAll(strings.TrimPrefix(r.Check, cfg.Work+"/"), "|", "/")
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s |\n", r.System, r.Fault, r.Seed, r.Schedule, check)
	}
	b.WriteString("\n### Planted faults (in this run's records)\n\n")
	b.WriteString("| checker | planted in | fault planted | caught | what it said |\n|---|---|---|---|---|\n")
	for _, p := range planted {
		fmt.Fprintf(&b, "| %s | %s | %s | %v | %s |\n", p.Checker, p.Source, p.Plant, yes(p.Caught), strings.ReplaceAll(p.Detail, "|", "/"))
	}
	b.WriteString("\n### The violations, with the records that show them\n")
	shown := Shown(cfg.Faults, cfg.Systems, rows)
	for _, r := range shown {
		excerpt(&b, r, meta.Pages)
	}
	if len(shown) == 0 {
		b.WriteString("\nNone.\n")
	}
	if again != nil {
		b.WriteString("\n## A second run with other seeds\n\n")
		fmt.Fprintf(&b, "To see that the verdicts do not hang on the seeds (%s, at %s):\n\n", again.Meta.Started.UTC().Format("2006-01-02 15:04"), again.Meta.Commit)
		runLine(&b, again.Meta)
		verdictTable(&b, again.Meta.Config, again.Rows)
		b.WriteString("\nIts records are in " + again.Meta.Config.Work + ".\n")
	}
	b.WriteString(correctnessNotes)
	_, err := w.Write(b.Bytes())
	return err
}

// runLine says how a run was made.
func runLine(b *bytes.Buffer, meta ReportMeta) {
	cfg := meta.Config
	fmt.Fprintf(b, "`%s`: %d systems x %d faults x %d seeds (%v), %d client processes on %d resources, %v per run, "+
		"leases of %v; %s on %d cores (%s/%s).\n\n", meta.Command, len(cfg.Systems), len(cfg.Faults), len(cfg.Seeds),
		cfg.Seeds, cfg.Clients, cfg.Resources, cfg.Duration, cfg.TTL, meta.Took.Round(time.Second), runtime.NumCPU(),
		runtime.GOOS, runtime.GOARCH)
}

// verdictTable is the table of verdicts per fault and system, summed over
// the seeds.
func verdictTable(b *bytes.Buffer, cfg CorrectnessConfig, rows []CheckRow) {
	cells := map[[2]string]*cell{}
	for i := range rows {
		k := [2]string{rows[i].System, rows[i].Fault}
		if cells[k] == nil {
			cells[k] = &cell{}
		}
		cells[k].add(&rows[i])
	}
	b.WriteString("| system | fault | runs | linearizable (`bouncer check`) | client-view overlaps (total, longest) | " +
		"lost acknowledged grants (of holds read) | stale writes taken | stale writes refused by the fence | " +
		"taken out of token order | newest grant's writes refused | availability | writes |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range cfg.Faults {
		for _, s := range cfg.Systems {
			c := cells[[2]string{s, f}]
			if c == nil {
				continue
			}
			lin := fmt.Sprintf("%d/%d ok", c.lin, c.runs)
			if c.illegal > 0 {
				lin += fmt.Sprintf(", **%d illegal**", c.illegal)
			}
			if c.unknown > 0 {
				lin += fmt.Sprintf(", %d unknown", c.unknown)
			}
			ov := "0"
			if c.overlaps > 0 {
				ov = fmt.Sprintf("**%d** (%v, %v)", c.overlaps, c.overlapTime.Round(time.Millisecond), c.overlapMax.Round(time.Millisecond))
			}
			fmt.Fprintf(b, "| %s | %s | %d | %s | %s | %s of %d | %s | %d | %s | %s | %.0f%% | %d |\n", s, f, c.runs, lin, ov,
				bold(c.lost), c.checks, bold(c.staleTaken), c.staleRefused, bold(c.ooo), bold(c.newestRefused), 100*c.avail/float64(c.runs), c.writes)
		}
	}
}

func bold(n int) string {
	if n > 0 {
		return fmt.Sprintf("**%d**", n)
	}
	return "0"
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

// excerpt shows the records of r's first violations: bouncer check's
// verdict, the first overlap with the two clients' history on that
// resource around it, the first stale write with the store's log before it.
func excerpt(b *bytes.Buffer, r *CheckRow, pages string) {
	fmt.Fprintf(b, "\n#### %s, %s, seed %d\n\n%s. Records in `%s` (history.jsonl, beliefs-N.jsonl, store.jsonl", r.System, r.Fault, r.Seed, r.Schedule, r.Dir)
	b.WriteString(").\n\n")
	if r.Linearizable != "ok" {
		fmt.Fprintf(b, "`bouncer check`: %s\n\n", r.Check)
		if pages != "" {
			p := path.Join(pages, PageName(r))
			fmt.Fprintf(b, "Its pages, as `bouncer check` wrote them: [the replay](%s.html) and [Porcupine's visualization](%s.porcupine.html).\n\n", p, p)
		}
	}
	earlyExpiries(b, r)
	if len(r.Overlaps) > 0 {
		o := r.Overlaps[0]
		fmt.Fprintf(b, "Client %d and client %d both believed they held %s from %s to %s (%v); their beliefs and the history on %s:\n\n```\n",
			o.A.Client, o.B.Client, o.A.Resource, ms(o.From), ms(o.To), time.Duration(o.To-o.From).Round(time.Millisecond), o.A.Resource)
		for _, x := range []Belief{o.A, o.B} {
			j, _ := json.Marshal(x)
			fmt.Fprintf(b, "belief %s\n", j)
		}
		lo, hi := min(o.A.Start, o.B.Start), max(o.A.End, o.B.End, o.A.Release, o.B.Release)
		historyAround(b, r.History, o.A.Resource, []int{o.A.Client, o.B.Client}, lo, hi)
		b.WriteString("```\n")
	}
	if l := r.FirstLost; l != nil {
		fmt.Fprintf(b, "\nClient %d was granted %s at %s and, by its count of the lease, still held it; asked at the end of its hold, "+
			"the service answered at %s that the lock was no longer its own. Its belief and the history on %s around it:\n\n```\n",
			l.Client, l.Resource, ms(l.Start), ms(l.Checked), l.Resource)
		j, _ := json.Marshal(l)
		fmt.Fprintf(b, "belief %s\n", j)
		historyAround(b, r.History, l.Resource, nil, l.Start-int64(time.Second), l.Checked)
		b.WriteString("```\n")
	}
	if s := r.FirstStale; s != nil {
		fmt.Fprintf(b, "\nThe store took a write from client %d (grant answered at %s) at %s, after a write of a later grant of %s; the store's log on %s up to it:\n\n",
			s.Client, ms(s.Grant), ms(s.At), s.Resource, s.Resource)
		storeBefore(b, r.Log, s)
	}
	if s := r.FirstNewestRefused; s != nil {
		fmt.Fprintf(b, "\nThe fence refused a write from client %d, whose grant (answered at %s) was the newest of %s, its token %d lower than an older grant's; the store's log on %s up to it:\n\n",
			s.Client, ms(s.Grant), s.Resource, s.Token, s.Resource)
		storeBefore(b, r.Log, s)
	}
}

// earlyExpiries shows the sessions the service ended before their lease
// could have run out (an expiry that returned before its call: the client
// learned of the end before its own count of the lease ran out), with what
// the client's log says of the lease (etcd's client logs its renewals; the
// history's session id carries the lease id, see SessionOf).
func earlyExpiries(b *bytes.Buffer, r *CheckRow) {
	var early []linearizability.Entry
	for _, e := range r.History {
		if e.Expiry() && e.Known && e.Return < e.Call {
			early = append(early, e)
		}
	}
	if len(early) == 0 {
		return
	}
	b.WriteString("The service ended a session before its lease could have run out: the expiry's call is when the " +
		"client's own count of the lease (from its last answered renewal, or for Redis its SET) would have run out, " +
		"its return when the client learned the session was gone:\n\n```\n")
	for _, e := range early {
		j, _ := json.Marshal(e)
		fmt.Fprintf(b, "%s\n", j)
	}
	b.WriteString("```\n")
	for _, e := range early[:min(len(early), 2)] {
		lease := fmt.Sprintf("%x", binary.BigEndian.Uint64(e.Input.Session[4:12]))
		lines := logLines(filepath.Join(r.Dir, fmt.Sprintf("client-%d.log", e.Client)), lease, 4)
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(b, "\nClient %d's log on lease %s, last lines:\n\n```\n%s\n```\n", e.Client, lease, strings.Join(lines, "\n"))
	}
	b.WriteString("\n")
}

// logLines is the last n lines of the file at path that contain s.
func logLines(path, s string, n int) []string {
	f, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(f), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out[max(0, len(out)-n):]
}

// storeBefore prints the store's last writes on s's resource up to s.
func storeBefore(b *bytes.Buffer, log []StoreWrite, s *StoreWrite) {
	var prior []StoreWrite
	for _, w := range log {
		if w.Resource == s.Resource && w.At <= s.At {
			prior = append(prior, w)
		}
	}
	b.WriteString("```\n")
	for _, w := range prior[max(0, len(prior)-6):] {
		j, _ := json.Marshal(w)
		fmt.Fprintf(b, "%s\n", j)
	}
	b.WriteString("```\n")
}

// historyAround prints the entries of clients (nil: every client) on resource that overlap
// [lo, hi], in call order, at most 16.
func historyAround(b *bytes.Buffer, h []linearizability.Entry, resource string, clients []int, lo, hi int64) {
	var sel []linearizability.Entry
	for _, e := range h {
		if clients != nil && !containsInt(clients, e.Client) || e.Input.Resource != resource && !contains(e.Resources, resource) {
			continue
		}
		// Its span [call, return] (an expiry's return may come first: the
		// client learned of it before its lease could have run out) meets
		// [lo, hi].
		if min(int64(e.Call), int64(e.Return)) <= hi && int64(e.Return) >= lo {
			sel = append(sel, e)
		}
	}
	sort.SliceStable(sel, func(i, j int) bool { return sel[i].Call < sel[j].Call })
	for _, e := range sel[:min(len(sel), 16)] {
		j, _ := json.Marshal(e)
		fmt.Fprintf(b, "%s\n", j)
	}
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func ms(ns int64) string { return fmt.Sprintf("%.0f ms", float64(ns)/1e6) }
