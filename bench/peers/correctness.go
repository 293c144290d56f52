package peers

// The correctness run: for each system, fault and seed, a fresh server,
// a fenced store, and client processes that lock, write and release; the
// fault on a fixed schedule; then the verdicts (see CORRECTNESS.md).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/bouncer-dlm/bouncer/linearizability"
	"github.com/bouncer-dlm/bouncer/spec"
)

// CorrectnessConfig is one correctness run over systems, faults and seeds.
type CorrectnessConfig struct {
	Bouncer, EtcdNode, Redis string // server binaries
	Self                     string // this binary, run again as each client (-client)
	Work                     string // a directory per run of a system under a fault with a seed
	Systems, Faults          []string
	Seeds                    []uint64
	Clients, Resources       int
	Duration, TTL            time.Duration
	CheckTimeout             time.Duration
	Log                      func(format string, args ...any) `json:"-"`
}

// Faults the run knows. Every one is given the same schedule, from the
// seed, for every system.
var Faults = []string{"none", "pause-client", "pause-server", "kill-server", "partition-leader"}

// groupOnly are the faults only a group can take: its single-server runs
// are skipped.
var groupOnly = map[string]bool{"partition-leader": true}

// isGroup reports whether a system is a group of members (NAME-3).
func isGroup(sys string) bool { return strings.HasSuffix(sys, "-3") }

// Systems the run knows: a group of three is NAME-3.
var CheckSystems = []string{"bouncer", "bouncer-3", "etcd", "etcd-3", "redis-default", "redis-always", "redis-fenced"}

// CheckRow is one run of a system under a fault with a seed.
type CheckRow struct {
	System, Fault string
	Seed          uint64
	Dir           string
	Schedule      string // what the fault did, when (history time)
	// FaultFrom and FaultTo: when the fault struck and when it was over
	// (the process continued, or the server serves again), nanoseconds
	// since the run's epoch; both 0 without a fault.
	FaultFrom, FaultTo int64
	Check              string // bouncer check's verdict line
	Linearizable       string // ok, illegal, unknown
	Entries            int
	Verdict
	History []linearizability.Entry `json:"-"`
	Beliefs []Belief                `json:"-"`
	Log     []StoreWrite            `json:"-"`
}

// RunCorrectness runs every system under every fault with every seed.
func RunCorrectness(ctx context.Context, cfg CorrectnessConfig) ([]CheckRow, error) {
	var rows []CheckRow
	for _, seed := range cfg.Seeds {
		for _, fault := range cfg.Faults {
			for _, sys := range cfg.Systems {
				if err := ctx.Err(); err != nil {
					return rows, err
				}
				if groupOnly[fault] && !isGroup(sys) {
					continue
				}
				row, err := runCorrectnessOne(ctx, cfg, sys, fault, seed)
				if err != nil {
					return rows, fmt.Errorf("%s %s seed %d: %w", sys, fault, seed, err)
				}
				cfg.Log("%-14s %-13s seed %d: lin %s, %d overlaps (%v), stale writes %d taken %d refused, avail %.0f%%; %s",
					sys, fault, seed, row.Linearizable, len(row.Overlaps), row.OverlapTime.Round(time.Millisecond),
					row.StaleAccepted, row.StaleRefused, 100*row.Availability, row.Schedule)
				rows = append(rows, row)
			}
		}
	}
	return rows, nil
}

// serverSpec starts (and, on its data, restarts) one system's server on a
// fixed address.
type serverSpec struct {
	name, bin string
	args      []string
	ready     *regexp.Regexp
	addr      string
}

func (cfg *CorrectnessConfig) server(sys, dir string) (*serverSpec, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	switch sys {
	case "bouncer":
		return &serverSpec{name: sys, bin: cfg.Bouncer, addr: ports[0], ready: regexp.MustCompile(`msg=serving listen=(\S+)`),
			args: []string{"serve", "--data", filepath.Join(dir, "data"), "--listen", ports[0], "--metrics", ""}}, nil
	case "etcd":
		return &serverSpec{name: sys, bin: cfg.EtcdNode, addr: ports[0], ready: regexp.MustCompile(`^ready listen=(\S+)`),
			args: []string{"--data", filepath.Join(dir, "data"), "--client", ports[0], "--peer", ports[1]}}, nil
	case "redis-default", "redis-always", "redis-fenced":
		port := ports[0][strings.LastIndexByte(ports[0], ':')+1:]
		args := []string{"--port", port, "--bind", "127.0.0.1", "--dir", dir, "--daemonize", "no", "--logfile", ""}
		if sys == "redis-always" {
			args = append(args, "--appendonly", "yes", "--appendfsync", "always")
		}
		return &serverSpec{name: sys, bin: cfg.Redis, addr: ports[0], ready: regexp.MustCompile(`Ready to accept connections`), args: args}, nil
	}
	return nil, fmt.Errorf("unknown system %q", sys)
}

func (s *serverSpec) start(ctx context.Context, dir, logName string) (*Server, error) {
	srv, err := startMember(ctx, logName, dir, s.ready, nil, s.addr, s.bin, s.args...)
	if err != nil {
		return nil, err
	}
	srv.Addr = s.addr
	return srv, nil
}

// service is one run's lock service: one server, started again on its
// data after a kill, or a group of three whose leader takes the faults.
type service struct {
	endpoint string // what the clients dial
	// victim is the server process a fault strikes, by member index: the
	// only server, or the group's leader when asked.
	victim  func(ctx context.Context) (int, *Server, error)
	kill    func(i int)
	restart func(ctx context.Context, i int) error
	// partition cuts member i off from the others (i < 0 heals); nil for
	// a single server.
	partition func(i int) error
	stop      func()
}

// groupSize is the members of a group system (bouncer-3, etcd-3).
const groupSize = 3

func (cfg *CorrectnessConfig) service(ctx context.Context, sys, dir string) (*service, error) {
	var g *Group
	var err error
	switch sys {
	case "bouncer-3":
		g, err = StartBouncerGroup(ctx, cfg.Bouncer, dir, sys, groupSize, true)
	case "etcd-3":
		g, err = StartEtcdGroup(ctx, cfg.EtcdNode, dir, sys, groupSize, true)
	default:
		ss, err := cfg.server(sys, dir)
		if err != nil {
			return nil, err
		}
		srv, err := ss.start(ctx, dir, sys)
		if err != nil {
			return nil, err
		}
		return &service{endpoint: srv.Addr,
			victim: func(context.Context) (int, *Server, error) { return 0, srv, nil },
			kill:   func(int) { srv.Kill() },
			restart: func(ctx context.Context, _ int) error {
				again, err := ss.start(ctx, dir, sys+"-restarted")
				if err == nil {
					srv = again
				}
				return err
			},
			stop: func() { _ = srv.stop(false) }}, nil
	}
	if err != nil {
		return nil, err
	}
	return &service{endpoint: g.Endpoint(),
		victim: func(ctx context.Context) (int, *Server, error) {
			i, err := g.Leader(ctx)
			if err != nil {
				return 0, nil, err
			}
			g.mu.Lock()
			defer g.mu.Unlock()
			return i, g.members[i], nil
		},
		kill:      func(i int) { _ = g.Kill(i) },
		restart:   g.Restart,
		partition: g.Partition,
		stop: func() {
			// SIGKILL: the data goes with the run (a graceful stop of
			// three etcd members takes seconds).
			for i := range g.Addrs {
				_ = g.Kill(i)
			}
			_ = g.Stop()
		}}, nil
}

// schedule is a fault's timing from the seed: the same for every system.
type schedule struct {
	at, length time.Duration
}

func scheduleOf(fault string, seed uint64, ttl time.Duration) schedule {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	at := 1500*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond)))
	switch fault {
	case "pause-client", "pause-server", "partition-leader": // past the lease: two TTLs
		return schedule{at: at, length: 2 * ttl}
	case "kill-server": // down for 200 to 700 ms, as a supervisor restarts it; within a hold
		return schedule{at: at, length: 200*time.Millisecond + time.Duration(rng.Int64N(int64(500*time.Millisecond)))}
	}
	return schedule{}
}

// clientProc is one client process.
type clientProc struct {
	cmd  *exec.Cmd
	done chan error
}

func runCorrectnessOne(ctx context.Context, cfg CorrectnessConfig, sys, fault string, seed uint64) (CheckRow, error) {
	row := CheckRow{System: sys, Fault: fault, Seed: seed, Dir: filepath.Join(cfg.Work, fmt.Sprintf("%s-%s-%d", sys, fault, seed))}
	if err := os.RemoveAll(row.Dir); err != nil {
		return row, err
	}
	srvDir := filepath.Join(row.Dir, "server")
	svc, err := cfg.service(ctx, sys, srvDir)
	if err != nil {
		return row, err
	}
	defer svc.stop()
	epoch := time.Now()
	store := NewFencedStore(epoch)
	stopStore, storeAddr, err := store.Serve()
	if err != nil {
		return row, err
	}
	defer stopStore()
	resources := make([]string, cfg.Resources)
	for i := range resources {
		resources[i] = fmt.Sprintf("r%d", i)
	}
	end := epoch.Add(cfg.Duration)
	var procs []*clientProc
	defer func() {
		for _, p := range procs {
			_ = p.cmd.Process.Signal(syscall.SIGCONT)
			_ = p.cmd.Process.Kill()
		}
	}()
	holds := make(chan int, 16) // the clients' hold lines, by client
	for i := range cfg.Clients {
		cc := ClientConfig{System: sys, Addr: svc.endpoint, Store: storeAddr, ID: i, Resources: resources,
			Epoch: epoch, End: end, Seed: seed, TTL: cfg.TTL, Dir: row.Dir}
		p, err := startClient(cfg.Self, cc, holds)
		if err != nil {
			return row, err
		}
		procs = append(procs, p)
	}
	sch := scheduleOf(fault, seed, cfg.TTL)
	at := func(t time.Time) time.Duration { return t.Sub(epoch).Round(time.Millisecond) }
	sleepUntil(ctx, epoch.Add(sch.at))
	// The server faults strike the only server, or the group's leader.
	victim, vsrv, what := 0, (*Server)(nil), "server"
	if strings.HasSuffix(fault, "-server") || fault == "partition-leader" {
		if victim, vsrv, err = svc.victim(ctx); err != nil {
			return row, err
		}
		if isGroup(sys) {
			what = fmt.Sprintf("the leader (member %d)", victim+1)
		}
		defer func() { _ = vsrv.cmd.Process.Signal(syscall.SIGCONT) }()
	}
	// Every fault strikes when a client next holds a lock: it has just
	// checked its lease and prepares its first write.
	holder, when := 0, "while no client was seen taking a lock (for 5 s)"
	if fault != "none" {
		drain(holds)
		select {
		case holder = <-holds:
			when = fmt.Sprintf("as client %d began a hold", holder)
		case <-time.After(5 * time.Second):
		}
	}
	from := time.Now()
	switch fault {
	case "pause-client":
		p := procs[holder]
		_ = p.cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(sch.length)
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		row.Schedule = fmt.Sprintf("%s, client %d stopped (SIGSTOP) at %v, continued at %v", when, holder, at(from), at(time.Now()))
	case "pause-server":
		_ = vsrv.cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(sch.length)
		_ = vsrv.cmd.Process.Signal(syscall.SIGCONT)
		row.Schedule = fmt.Sprintf("%s, %s stopped (SIGSTOP) at %v, continued at %v", when, what, at(from), at(time.Now()))
	case "kill-server":
		svc.kill(victim)
		time.Sleep(sch.length)
		back := time.Now()
		if err := svc.restart(ctx, victim); err != nil {
			return row, fmt.Errorf("restart: %w", err)
		}
		row.Schedule = fmt.Sprintf("%s, %s killed (SIGKILL) at %v, restarted at %v, serving at %v", when, what, at(from), at(back), at(time.Now()))
	case "partition-leader":
		if err := svc.partition(victim); err != nil {
			return row, err
		}
		time.Sleep(sch.length)
		if err := svc.partition(-1); err != nil {
			return row, err
		}
		row.Schedule = fmt.Sprintf("%s, %s cut off from the other members (clients still reach it) at %v, healed at %v", when, what, at(from), at(time.Now()))
	default:
		row.Schedule = "no fault"
	}
	if fault != "none" {
		row.FaultFrom, row.FaultTo = int64(from.Sub(epoch)), int64(time.Since(epoch))
	}
	var errs []error
	for i, p := range procs {
		select {
		case err := <-p.done:
			if err != nil {
				errs = append(errs, fmt.Errorf("client %d: %w (see %s)", i, err, filepath.Join(row.Dir, fmt.Sprintf("client-%d.log", i))))
			}
		case <-time.After(time.Until(end) + 60*time.Second):
			errs = append(errs, fmt.Errorf("client %d did not finish", i))
		}
	}
	procs = nil
	if err := errors.Join(errs...); err != nil {
		return row, err
	}
	return row, judgeRun(cfg, &row, store, resources)
}

// judgeRun merges the clients' histories, checks the merged one with
// `bouncer check`, and computes the other verdicts.
func judgeRun(cfg CorrectnessConfig, row *CheckRow, store *FencedStore, resources []string) error {
	var err error
	for i := range cfg.Clients {
		h, err := readHistoryFile(filepath.Join(row.Dir, fmt.Sprintf("history-%d.jsonl", i)))
		if err != nil {
			return err
		}
		row.History = append(row.History, h...)
		bs, err := readJSONLines[Belief](filepath.Join(row.Dir, fmt.Sprintf("beliefs-%d.jsonl", i)))
		if err != nil {
			return err
		}
		row.Beliefs = append(row.Beliefs, bs...)
	}
	NumberGrants(row.History)
	hist := filepath.Join(row.Dir, "history.jsonl")
	if err := writeHistoryFile(hist, row.History); err != nil {
		return err
	}
	row.Entries = len(row.History)
	if row.Log, err = store.Log(); err != nil {
		return err
	}
	if err := writeJSONLines(filepath.Join(row.Dir, "store.jsonl"), row.Log); err != nil {
		return err
	}
	row.Linearizable, row.Check, err = checkHistory(cfg.Bouncer, hist, cfg.CheckTimeout)
	if err != nil {
		return err
	}
	row.Verdict = Judge(row.Beliefs, row.Log, resources, 0, int64(cfg.Duration))
	return nil
}

// NumberGrants gives the grants of a system without tokens (Redis: token
// 0) tokens 1, 2, ... per resource in the order their answers came, so that
// the checker, which wants every grant's token above those seen before,
// checks who held what; it then checks no token order of the system's own.
func NumberGrants(h []linearizability.Entry) {
	var idx []int
	for i := range h {
		e := &h[i]
		if e.Input.Op == spec.OpAcquire && e.Known && e.Output.Code == spec.OK && e.Output.Token == 0 {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return h[idx[a]].Return < h[idx[b]].Return })
	n := map[string]spec.Token{}
	for _, i := range idx {
		r := h[i].Input.Resource
		n[r]++
		// The history format names a grant's mode only beside a token, so
		// a grant read back with token 0 lost it: it is the mode asked.
		h[i].Output.Token, h[i].Output.Mode = n[r], h[i].Input.Mode
	}
}

// checkHistory runs `bouncer check` (bin) on a history file: ok, illegal
// or unknown, with its verdict line. On a failed check it writes, as it
// does for anyone, the replay page and Porcupine's visualization beside the
// file (NAME.html, NAME.porcupine.html).
func checkHistory(bin, path string, timeout time.Duration) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "check", "--timeout", timeout.String(), path)
	out, err := cmd.Output()
	line, _, _ := strings.Cut(string(out), "\n")
	var exit *exec.ExitError
	switch {
	case err == nil:
		return "ok", line, nil
	case errors.As(err, &exit) && exit.ExitCode() == 2:
		return "illegal", line, nil
	case errors.As(err, &exit) && exit.ExitCode() == 3:
		return "unknown", line, nil
	}
	return "", "", fmt.Errorf("bouncer check %s: %w: %s", path, err, bytes.TrimSpace(out))
}

// startClient runs this binary again as one client (-client CONFIG).
func startClient(self string, cc ClientConfig, holds chan<- int) (*clientProc, error) {
	b, err := json.Marshal(cc)
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(cc.Dir, fmt.Sprintf("client-%d.log", cc.ID)))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-client", string(b))
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		_ = logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, err
	}
	p := &clientProc{cmd: cmd, done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == HoldLine {
				select {
				case holds <- cc.ID:
				default:
				}
			}
		}
		p.done <- cmd.Wait()
		_ = logf.Close()
	}()
	return p, nil
}

func drain(c chan int) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

func sleepUntil(ctx context.Context, t time.Time) {
	select {
	case <-time.After(time.Until(t)):
	case <-ctx.Done():
	}
}

func readHistoryFile(path string) ([]linearizability.Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return linearizability.ReadHistory(f)
}

func writeHistoryFile(path string, h []linearizability.Entry) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := linearizability.WriteHistory(f, h); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func readJSONLines[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []T
	dec := json.NewDecoder(f)
	for {
		var v T
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, v)
	}
}

func writeJSONLines[T any](path string, vs []T) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, v := range vs {
		if err := enc.Encode(v); err != nil {
			_ = f.Close()
			return err
		}
	}
	return f.Close()
}
