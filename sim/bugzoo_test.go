//go:build bugzoo

package sim

import (
	"fmt"

	"github.com/bouncer-dlm/bouncer/client/protocol"
	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/replica"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// zooBudget is how many seeds each planted bug gets to be caught in.
const zooBudget = 40

// TestBugZoo plants each bug of the zoo in turn and requires its named
// checker to fail within zooBudget seeds; it prints the table of bug,
// checker and seeds needed. Together the bugs make every checker fail.
//
//	go test -tags bugzoo ./sim -run BugZoo -v
func TestBugZoo(t *testing.T) {
	var rows []Hunt
	caught := map[string]bool{}
	defer func() { _ = PlantBug("") }()
	for _, b := range Zoo {
		if err := PlantBug(b.Name); err != nil {
			t.Fatal(err)
		}
		h := Hunt{Bug: b, Swarm: true, Seeds: zooBudget}
		for i := 0; !h.Done(); i++ {
			h.Add(Run(h.Options(i), Config{LinTimeout: 30 * time.Second}))
		}
		rows = append(rows, h)
		switch {
		case h.NoVerdict != "":
			t.Error(h.NoVerdict)
		case h.Caught == 0:
			t.Errorf("bug %s: checker %s did not catch it in %d seeds", b.Name, b.Checker, zooBudget)
		default:
			caught[b.Checker] = true
		}
	}
	_ = PlantBug("")
	var out strings.Builder
	tw := tabwriter.NewWriter(&out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "bug\tchecker\tseeds needed\tall failing checkers\tsimulated")
	for _, h := range rows {
		bug, seeds := h.Bug.Name, fmt.Sprint(h.Caught)
		if h.Bug.Nodes > 1 {
			bug += fmt.Sprintf(" (%d replicas)", h.Bug.Nodes)
		}
		if h.Caught == 0 {
			seeds = fmt.Sprintf("not caught in %d", h.Runs)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", bug, h.Bug.Checker, seeds, strings.Join(h.Failed, ","), h.SimTime.Round(time.Millisecond))
	}
	tw.Flush()
	t.Logf("planted bugs:\n%s", out.String())
	for _, c := range Checkers {
		if !caught[c] {
			t.Errorf("no planted bug made checker %s fail", c)
		}
	}
}

// replicaHarnessOnly are replica bugs only replica's own harness shows
// caught, and why the simulator cannot.
var replicaHarnessOnly = map[string]string{
	"hint-self": "protocol.Members takes a hint naming the member it asked as no hint and moves on: the bug cannot mislead this client",
	"applied-with-writes-only": "the entries a restart replays again are ones that wrote nothing (empty and quiet tick entries), so " +
		"the restarted state is the same; replica's harness checks the restarted index itself",
}

// TestZooCoversEveryBug: every bug the engine and the client core can plant
// has its row in the zoo (and so a checker shown to catch it), and every
// row names a bug one of them knows.
func TestZooCoversEveryBug(t *testing.T) {
	known := map[string]bool{}
	for name := range engine.Bugs() {
		known[name] = true
	}
	for name := range protocol.Bugs() {
		known[name] = true
	}
	for name := range replica.Bugs() {
		known[name] = true
	}
	inZoo := map[string]bool{}
	for _, b := range Zoo {
		inZoo[b.Name] = true
		if !known[b.Name] {
			t.Errorf("zoo row %q: neither the engine nor the client core plants it", b.Name)
		}
	}
	for name := range known {
		if _, ok := replicaHarnessOnly[name]; ok {
			continue
		}
		if !inZoo[name] {
			t.Errorf("bug %q has no row in the zoo: no checker is shown to catch it", name)
		}
	}
}

// TestCaughtNeedsAVerdict: a run that gives the bug's checker no verdict is
// no catch: options that do not validate (no checker ran) end the hunt
// with an error; a run that crashed before the checker failed is counted
// and the hunt goes on; a failure found before a crash is a catch.
func TestCaughtNeedsAVerdict(t *testing.T) {
	b := Bug{Name: "fifo-overtake", Checker: Model, Tune: func(o *Options) { o.Clients = 0 }}
	h := Hunt{Bug: b, Swarm: true, Seeds: 3}
	h.Add(Run(h.Options(0), Config{}))
	if !h.Done() || h.Caught != 0 || !strings.Contains(h.NoVerdict, "gave no verdict") {
		t.Fatalf("options that do not validate: caught %d, no verdict %q", h.Caught, h.NoVerdict)
	}
	crashed := &Report{Options: Options{Seed: 1}, Kind: CrashFailure, Crash: "panic: boom", Verdicts: []Verdict{{Checker: Model, OK: true}}}
	h = Hunt{Bug: b, Swarm: true, Seeds: 3}
	if h.Add(crashed); h.Caught != 0 || h.Crashed != 1 || h.NoVerdict != "" || h.Done() {
		t.Fatalf("a crash before the checker failed: caught %d, crashed %d, no verdict %q", h.Caught, h.Crashed, h.NoVerdict)
	}
	failed := &Report{Options: Options{Seed: 2}, Kind: CrashFailure, Crash: "panic: boom", Verdicts: []Verdict{{Checker: Model, OK: false}}}
	if h.Add(failed); h.Caught != 2 || !h.Done() {
		t.Fatalf("a failure found before a crash: caught %d", h.Caught)
	}
}
