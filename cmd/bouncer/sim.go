package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/bouncer-dlm/bouncer/linearizability"
	"github.com/bouncer-dlm/bouncer/sim"
	"github.com/bouncer-dlm/bouncer/sim/replay"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newSimCmd) }

// Exit statuses of `bouncer sim` (and, for 2 and 3, `bouncer check`).
const (
	exitCorrectness = 2 // a safety checker failed (check: not linearizable)
	exitLiveness    = 3 // the liveness checker failed (check: the checker ran out of time)
	exitCrash       = 4 // the engine panicked or could not recover its store
)

type simFlags struct {
	seed, start uint64
	seeds       int
	jobs        int
	trace, html string
	history     string
	out         string
	linTimeout  time.Duration
	clients     int
	resources   int
	safety      time.Duration
	nodes       int
	bug         string
	plain       bool
}

func newSimCmd() *cobra.Command {
	var f simFlags
	cmd := &cobra.Command{
		Use:   "sim (--seeds N [--start S] | --seed S [--trace FILE] [--html FILE])",
		Short: "Run the deterministic simulator: a campaign of seeds, or one seed replayed",
		Long: `Run the deterministic simulator: the real engine and Pebble store, and the
real client protocol core, in virtual time, through network, clock, crash
and disk faults derived from a seed. Each run is judged by the checkers:
linearizability, mutex (client-view mutual exclusion), fencing, tokens,
invariants, model (trace validation against spec) and liveness.

  bouncer sim --seeds 500            run seeds 1..500 and print a summary line
  bouncer sim --seed 42 --trace t.ndjson --html h.html
                                     replay seed 42: options, verdicts, files
  bouncer sim --bug NAME --seed S    replay a seed of bouncer zoo: the bug
                                     planted (a -tags bugzoo build), in its
                                     group size, with the faults the zoo
                                     turns on for it (its Tune); add --plain
                                     for a row with swarm testing off

The same seed always gives the same run and the same trace, byte for byte.
A failure prints the command that replays it and writes its trace, its
history and Porcupine's HTML under --out. Exit status: 0 if every run
passed, 2 for a correctness failure, 3 for a liveness failure, 4 for a
crash (in a campaign, the first of 2, 4, 3 that occurred). See sim/README.md.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.plant(); err != nil {
				return err
			}
			switch {
			case cmd.Flags().Changed("seed") && cmd.Flags().Changed("seeds"):
				return usageError("give --seed or --seeds, not both")
			case cmd.Flags().Changed("seed"):
				return simOne(f, cmd.OutOrStdout())
			case f.seeds > 0:
				return simCampaign(f, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			return usageError("give --seeds N to run a campaign or --seed S to replay one seed")
		},
	}
	fl := cmd.Flags()
	fl.Uint64Var(&f.seed, "seed", 0, "replay this one seed")
	fl.IntVar(&f.seeds, "seeds", 0, "run this many seeds")
	fl.Uint64Var(&f.start, "start", 1, "the first seed of the campaign")
	fl.IntVar(&f.jobs, "jobs", runtime.GOMAXPROCS(0), "seeds run at once in a campaign")
	fl.StringVar(&f.trace, "trace", "", "write the seed's NDJSON trace to this file")
	fl.StringVar(&f.html, "html", "", "write the seed's replay page (one self-contained HTML file) here, and Porcupine's visualization beside it as FILE.porcupine.html")
	fl.StringVar(&f.history, "history", "", "write the seed's client history (JSON lines, for bouncer check) to this file")
	fl.StringVar(&f.out, "out", filepath.Join(os.TempDir(), "bouncer-sim"), "where a failing seed's trace, history and HTML go")
	fl.DurationVar(&f.linTimeout, "lin-timeout", linearizability.DefaultTimeout, "bound on each linearizability check (running out is a failure)")
	fl.IntVar(&f.clients, "clients", 0, "override the seed's number of clients")
	fl.IntVar(&f.resources, "resources", 0, "override the seed's number of resources")
	fl.DurationVar(&f.safety, "safety", 0, "override the seed's safety phase (faults on)")
	fl.IntVar(&f.nodes, "nodes", 0, "replicas: 1 (one node) or a raft group of 3 or 5 (default: the seed picks 1, 3 or 5)")
	fl.StringVar(&f.bug, "bug", "", "plant this bug (only in a binary built with -tags bugzoo), in its group size and with the faults the zoo turns on for it (its Tune), so that a bouncer zoo seed replays")
	fl.BoolVar(&f.plain, "plain", false, "swarm testing off: the fixed plain configuration (every fault on at a middle value) instead of the seed's own options; the seed still drives the run")
	return cmd
}

// options derives a seed's options (the seed's own, or the plain
// configuration's) with the planted bug's group size and faults, then the
// overrides, applied: with none, a seed of `bouncer zoo`.
func (f *simFlags) options(seed uint64) sim.Options {
	o := sim.NewOptions(seed)
	if f.plain {
		o = sim.PlainOptions(seed)
	}
	if f.clients > 0 {
		o.Clients = f.clients
	}
	if f.resources > 0 {
		o.Resources = f.resources
		o.Semaphores = min(o.Semaphores, o.Resources)
	}
	if f.safety > 0 {
		o.Safety = f.safety
	}
	f.applyBug(&o)
	if f.nodes > 0 {
		o.Nodes = f.nodes
	}
	return o
}

// replay is the command that replays seed with the same overrides.
func (f *simFlags) replay(seed uint64) string {
	s := fmt.Sprintf("bouncer sim --seed %d", seed)
	if f.plain {
		s += " --plain"
	}
	if f.clients > 0 {
		s += fmt.Sprintf(" --clients %d", f.clients)
	}
	if f.resources > 0 {
		s += fmt.Sprintf(" --resources %d", f.resources)
	}
	if f.safety > 0 {
		s += fmt.Sprintf(" --safety %v", f.safety)
	}
	if f.nodes > 0 {
		s += fmt.Sprintf(" --nodes %d", f.nodes)
	}
	if f.bug != "" {
		s += " --bug " + f.bug
	}
	return s
}

func exitFor(k sim.Kind) int {
	switch k {
	case sim.CorrectnessFailure:
		return exitCorrectness
	case sim.LivenessFailure:
		return exitLiveness
	case sim.CrashFailure:
		return exitCrash
	}
	return 0
}

// simOne replays one seed: its options, its verdicts, and the files asked for.
func simOne(f simFlags, out io.Writer) error {
	o := f.options(f.seed)
	if err := o.Validate(); err != nil {
		return usageError("%v", err)
	}
	fmt.Fprintf(out, "options:\n%s", o.String())
	var trace io.Writer
	if f.trace != "" {
		tf, err := os.Create(f.trace)
		if err != nil {
			return err
		}
		defer tf.Close()
		trace = tf
	}
	cfg := sim.Config{Trace: trace, LinTimeout: f.linTimeout}
	var rec *replay.Recorder
	if f.html != "" {
		rec = replay.NewRecorder()
		cfg = rec.Config(cfg)
	}
	start := time.Now()
	rep := sim.Run(o, cfg)
	wall := time.Since(start)
	fmt.Fprintln(out, "verdicts:")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, v := range rep.Verdicts {
		status := "ok"
		if !v.OK {
			status = "FAIL"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Checker, status, indent(v.Detail))
	}
	tw.Flush()
	if rep.Crash != "" {
		fmt.Fprintf(out, "crash:\n  %s\n", indent(rep.Crash))
	}
	st := rep.Stats
	fmt.Fprintf(out, "stats: sim %v in %v (%.0fx), %d events, %d turns, %d inputs, %d requests, %d writes, %d sessions, %d crashes, %d disk faults, %d partitions, %d pauses\n",
		st.SimTime.Round(time.Millisecond), wall.Round(time.Millisecond), float64(st.SimTime)/float64(wall),
		st.Events, st.Turns, st.Inputs, st.Ops, st.Writes, st.Sessions, st.Crashes, st.DiskFaults, st.Partitions, st.Pauses)
	if rep.Options.Nodes > 1 {
		fmt.Fprintf(out, "cluster: %d replicas, %d leaders elected, %d failover entries applied, %d raft layouts, %d leadership transfers, %d membership changes, %d reads (%d answered)\n",
			rep.Options.Nodes, st.Elections, st.Failovers, st.RaftPartitions, st.Transfers, st.MemberChanges, st.Reads, st.ReadsAnswered)
	}
	if f.html != "" {
		if err := writePage(f.html, rec, rep, f.replay(f.seed)); err != nil {
			return err
		}
	}
	if f.history != "" {
		if err := writeFile(f.history, func(w io.Writer) error { return linearizability.WriteHistory(w, rep.History) }); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, rep.Summary())
	if rep.Failed() {
		if f.html == "" || f.history == "" {
			paths, err := saveFailure(&f, f.seed, rep)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "wrote %s\n", strings.Join(paths, ", "))
		}
		return &exitError{code: exitFor(rep.Kind), err: fmt.Errorf("seed %d failed: %s", f.seed, rep.Kind), quiet: true}
	}
	return nil
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n    ") }

func writeFile(path string, write func(io.Writer) error) error {
	fl, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(fl); err != nil {
		fl.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return fl.Close()
}

// saveFailure writes a failing seed's trace (by running it again: the run is
// deterministic), history and HTML under --out, and returns their paths.
func saveFailure(f *simFlags, seed uint64, rep *sim.Report) ([]string, error) {
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(f.out, fmt.Sprintf("seed-%d", seed))
	paths := []string{base + ".ndjson", base + ".history.jsonl", base + ".html", porcupinePath(base + ".html")}
	rec := replay.NewRecorder()
	err := writeFile(paths[0], func(w io.Writer) error {
		sim.Run(f.options(seed), rec.Config(sim.Config{Trace: w, LinTimeout: f.linTimeout}))
		return nil
	})
	if err == nil {
		err = writeFile(paths[1], func(w io.Writer) error { return linearizability.WriteHistory(w, rep.History) })
	}
	if err == nil {
		err = writePage(paths[2], rec, rep, f.replay(seed))
	}
	return paths, err
}

// porcupinePath is where Porcupine's visualization goes beside the page
// at path: FILE.html beside FILE.porcupine.html, linked from it.
func porcupinePath(path string) string {
	return strings.TrimSuffix(path, ".html") + ".porcupine.html"
}

// writePage writes the replay page of a run at path, and Porcupine's
// visualization of its history beside it.
func writePage(path string, rec *replay.Recorder, rep *sim.Report, command string) error {
	lin := porcupinePath(path)
	if err := writeFile(lin, rep.WriteHTML); err != nil {
		return err
	}
	page, err := rec.Page(rep, filepath.Base(lin), command)
	if err != nil {
		return err
	}
	return writeFile(path, page.Write)
}

// simCampaign runs seeds start..start+seeds-1 on --jobs workers (each run is
// its own deterministic simulation), with a progress bar, and ends with one
// summary line.
func simCampaign(f simFlags, out, errOut io.Writer) error {
	if f.jobs < 1 {
		return usageError("--jobs must be at least 1")
	}
	if o := f.options(f.start); o.Validate() != nil {
		return usageError("%v", o.Validate())
	}
	start := time.Now()
	reports := make([]*sim.Report, f.seeds)
	next := make(chan int)
	done := make(chan int)
	var wg sync.WaitGroup
	for range min(f.jobs, f.seeds) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := sim.Run(f.options(f.start+uint64(i)), sim.Config{LinTimeout: f.linTimeout})
				if !r.Failed() {
					r.Slim()
				}
				reports[i] = r
				done <- i
			}
		}()
	}
	go func() {
		for i := range f.seeds {
			next <- i
		}
		close(next)
	}()
	bar := newProgress(errOut, f.seeds)
	failures := 0
	for range f.seeds {
		i := <-done
		if reports[i].Failed() {
			failures++
			fmt.Fprintf(errOut, "\r\033[KFAIL %s: replay with: %s\n", reports[i].Summary(), f.replay(f.start+uint64(i)))
		}
		bar.step(failures)
	}
	wg.Wait()
	bar.finish()
	return campaignSummary(&f, reports, time.Since(start), out)
}

func campaignSummary(f *simFlags, reports []*sim.Report, wall time.Duration, out io.Writer) error {
	var kinds [4]int
	var simTime time.Duration
	events, clusters, failovers, layouts, crashes, transfers, changes, reads := 0, 0, 0, 0, 0, 0, 0, 0
	firstKind := sim.Passed
	for i, r := range reports {
		kinds[r.Kind]++
		simTime += r.Stats.SimTime
		events += r.Stats.Events
		crashes += r.Stats.Crashes
		if r.Options.Nodes > 1 {
			clusters++
			failovers += r.Stats.Failovers
			layouts += r.Stats.RaftPartitions
			transfers += r.Stats.Transfers
			changes += r.Stats.MemberChanges
			reads += r.Stats.ReadsAnswered
		}
		if r.Failed() {
			seed := f.start + uint64(i)
			paths, err := saveFailure(f, seed, r)
			fmt.Fprintf(out, "FAIL %s\n  replay: %s\n  files: %s\n", r.Summary(), f.replay(seed), strings.Join(paths, ", "))
			if err != nil {
				fmt.Fprintf(out, "  (could not write them: %v)\n", err)
			}
			for _, v := range r.Verdicts {
				if !v.OK {
					fmt.Fprintf(out, "  %s: %s\n", v.Checker, firstLines(v.Detail, 3))
				}
			}
			if r.Crash != "" {
				fmt.Fprintf(out, "  crash: %s\n", firstLines(r.Crash, 3))
			}
		}
	}
	for _, k := range []sim.Kind{sim.CorrectnessFailure, sim.CrashFailure, sim.LivenessFailure} {
		if kinds[k] > 0 && firstKind == sim.Passed {
			firstKind = k
		}
	}
	failures := len(reports) - kinds[sim.Passed]
	fmt.Fprintf(out, "seeds=%d failures=%d correctness=%d liveness=%d crash=%d sim_time=%v wall=%v speed=%.0fx events=%d\n",
		len(reports), failures, kinds[sim.CorrectnessFailure], kinds[sim.LivenessFailure], kinds[sim.CrashFailure],
		simTime.Round(time.Second), wall.Round(time.Millisecond), float64(simTime)/float64(wall), events)
	fmt.Fprintf(out, "clusters=%d failovers=%d raft_layouts=%d transfers=%d member_changes=%d reads=%d crashes=%d\n",
		clusters, failovers, layouts, transfers, changes, reads, crashes)
	if failures > 0 {
		return &exitError{code: exitFor(firstKind), err: fmt.Errorf("%d of %d seeds failed", failures, len(reports)), quiet: true}
	}
	return nil
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n    ")
}

// progress draws a progress bar on a terminal, or a line every tenth of
// the way elsewhere (a CI log).
type progress struct {
	w        io.Writer
	total    int
	n        int
	terminal bool
	last     int
}

func newProgress(w io.Writer, total int) *progress {
	p := &progress{w: w, total: total}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) step(failures int) {
	p.n++
	const width = 40
	if p.terminal {
		filled := width * p.n / p.total
		fmt.Fprintf(p.w, "\r[%s%s] %d/%d failures=%d", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), p.n, p.total, failures)
		return
	}
	if tenth := 10 * p.n / p.total; tenth > p.last {
		p.last = tenth
		fmt.Fprintf(p.w, "%d/%d seeds, %d failures\n", p.n, p.total, failures)
	}
}

func (p *progress) finish() {
	if p.terminal {
		fmt.Fprintln(p.w)
	}
}
