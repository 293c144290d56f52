package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/bouncer-dlm/bouncer/linearizability"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newZooCmd) }

// zooSeedsMax bounds --seeds: a hunt past it would take hours.
const zooSeedsMax = 10_000

type zooFlags struct {
	seeds      int
	jobs       int
	bugs       []string
	swarm      string
	json       bool
	linTimeout time.Duration
}

func newZooCmd() *cobra.Command {
	var f zooFlags
	cmd := &cobra.Command{
		Use:   "zoo [--seeds N] [--bug NAME]... [--swarm both|on|off] [--json]",
		Short: "Benchmark the checkers: for each planted bug, the seeds and time its checker needs to catch it",
		Long: `Benchmark the simulator's checkers on the planted-bug zoo (a binary built
with -tags bugzoo only: go run -tags bugzoo ./cmd/bouncer zoo). For each
bug, plant it and run seeds 1..N with the faults the bug needs turned on
(its Tune), until its checker fails: with swarm testing on (each seed's own
options) and off (one fixed plain configuration, every fault at a middle
value). One row per bug and setting: the checker that must catch it, the
first seed that did ("not caught in N seeds" otherwise), the simulated and
wall time the hunt took, every checker that failed in that seed, and the
runs that crashed before the checker judged (never a catch).

A row replays with: bouncer sim --bug NAME --seed S (add --plain for swarm
off). Exit status: 0 once the table is printed; 1 if a run gave the checker
no verdict (the bug's options do not validate). See README, "The checkers
benchmarked".`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.seeds < 1 || f.seeds > zooSeedsMax {
				return usageError("--seeds %d: want 1 to %d", f.seeds, zooSeedsMax)
			}
			if f.jobs < 1 {
				return usageError("--jobs must be at least 1")
			}
			if _, err := f.swarms(); err != nil {
				return err
			}
			return runZoo(f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.seeds, "seeds", 100, "seeds each bug gets to be caught in, per setting (1..N)")
	fl.IntVar(&f.jobs, "jobs", runtime.GOMAXPROCS(0), "seeds run at once")
	fl.StringSliceVar(&f.bugs, "bug", nil, "only these bugs (repeat, or separate with commas; default: the whole zoo)")
	fl.StringVar(&f.swarm, "swarm", "both", "swarm testing on (each seed's own options), off (the plain configuration) or both")
	fl.BoolVar(&f.json, "json", false, "print one JSON object per row (see README, JSON output) instead of the table")
	fl.DurationVar(&f.linTimeout, "lin-timeout", linearizability.DefaultTimeout, "bound on each linearizability check (running out is a failure)")
	return cmd
}

// swarms are the settings --swarm asks for: true for swarm testing on.
func (f *zooFlags) swarms() ([]bool, error) {
	switch f.swarm {
	case "both":
		return []bool{true, false}, nil
	case "on":
		return []bool{true}, nil
	case "off":
		return []bool{false}, nil
	}
	return nil, usageError("--swarm %q: want both, on or off", f.swarm)
}

// zooRow is one bug's hunt in one setting, as the table and --json show it
// (the JSON conventions of README's "JSON output": durations in whole
// milliseconds in fields ending in _ms, lists never null).
type zooRow struct {
	Bug       string   `json:"bug"`
	Nodes     int      `json:"nodes"`                // the group size the bug lives in (1: one node)
	Checker   string   `json:"checker"`              // the checker that must catch it
	Swarm     bool     `json:"swarm"`                // swarm testing on (false: the plain configuration)
	Caught    bool     `json:"caught"`               // its checker failed within the seeds
	Seed      uint64   `json:"seed"`                 // the first seed that caught it; 0 if none did
	Seeds     int      `json:"seeds"`                // seeds run (the budget if not caught)
	Crashed   int      `json:"crashed"`              // runs that crashed before the checker failed
	SimMs     int64    `json:"sim_ms"`               // simulated time of the seeds run
	WallMs    int64    `json:"wall_ms"`              // wall time of the hunt
	Failed    []string `json:"failed"`               // every checker that failed in the catching seed
	Replay    string   `json:"replay"`               // the command that replays the catching seed ("" if none)
	NoVerdict string   `json:"no_verdict,omitempty"` // why a run gave the checker no verdict (the hunt stopped)
}

// zooTable prints the rows as they come (a hunt can take a while), as a
// table whose first columns are as wide as the longest bug and checker
// names, or as JSON lines.
type zooTable struct {
	out            io.Writer
	json           bool
	bugW, checkerW int
	rows           []zooRow
}

// zooColumn is the width of the table's "caught at" column.
const zooColumn = len("not caught in 10000 seeds")

func newZooTable(out io.Writer, json bool, names, checkers []string) *zooTable {
	t := &zooTable{out: out, json: json, bugW: len("bug"), checkerW: len("checker")}
	for _, n := range names {
		t.bugW = max(t.bugW, len(n))
	}
	for _, c := range checkers {
		t.checkerW = max(t.checkerW, len(c))
	}
	if !json {
		t.line("bug", "checker", "swarm", "caught at", "simulated", "wall", "crashed", "failing checkers")
	}
	return t
}

func (t *zooTable) line(bug, checker, swarm, caught, simulated, wall, crashed, failed string) {
	fmt.Fprintf(t.out, "%-*s  %-*s  %-5s  %-*s  %9s  %8s  %7s  %s\n", t.bugW, bug, t.checkerW, checker, swarm,
		zooColumn, caught, simulated, wall, crashed, failed)
}

func (t *zooTable) add(r zooRow) error {
	t.rows = append(t.rows, r)
	if t.json {
		return writeJSON(t.out, r)
	}
	swarm, caught := "on", fmt.Sprintf("seed %d", r.Seed)
	if !r.Swarm {
		swarm = "off"
	}
	switch {
	case r.NoVerdict != "":
		caught = fmt.Sprintf("no verdict at seed %d", r.Seeds)
	case !r.Caught:
		caught = fmt.Sprintf("not caught in %d seeds", r.Seeds)
		if r.Seeds == 1 {
			caught = "not caught in 1 seed"
		}
	}
	t.line(zooBugLabel(r.Bug, r.Nodes), r.Checker, swarm, caught,
		(time.Duration(r.SimMs) * time.Millisecond).Round(100*time.Millisecond).String(),
		(time.Duration(r.WallMs) * time.Millisecond).Round(10*time.Millisecond).String(),
		fmt.Sprint(r.Crashed), strings.Join(r.Failed, ","))
	return nil
}

// zooBugLabel names a bug in the table, with its group size if not one node.
func zooBugLabel(name string, nodes int) string {
	if nodes > 1 {
		return fmt.Sprintf("%s (%d replicas)", name, nodes)
	}
	return name
}

// finish ends the table: a summary line (not in JSON), and an error if a
// run gave no verdict.
func (t *zooTable) finish(wall time.Duration, seeds int) error {
	caught, bad := 0, []string{}
	for _, r := range t.rows {
		if r.Caught {
			caught++
		}
		if r.NoVerdict != "" {
			bad = append(bad, r.NoVerdict)
		}
	}
	if !t.json {
		fmt.Fprintf(t.out, "rows=%d caught=%d not_caught=%d seeds_per_row=%d wall=%v\n",
			len(t.rows), caught, len(t.rows)-caught, seeds, wall.Round(time.Second))
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d hunts gave no verdict: %s", len(bad), strings.Join(bad, "; "))
	}
	return nil
}
