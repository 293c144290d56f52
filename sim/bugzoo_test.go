//go:build bugzoo

package sim

import (
	"fmt"
	"slices"

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
	type row struct {
		bug, checker string
		seeds        int
		others       []string
		wall         time.Duration
	}
	var rows []row
	caught := map[string]bool{}
	defer func() { _ = PlantBug("") }()
	for _, b := range Zoo {
		if err := PlantBug(b.Name); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		r := row{bug: b.Name, checker: b.Checker}
		if b.Nodes > 1 {
			r.bug += fmt.Sprintf(" (%d replicas)", b.Nodes)
		}
		for seed := uint64(1); seed <= zooBudget; seed++ {
			o := NewOptions(seed)
			o.Nodes = max(1, b.Nodes)
			if b.Tune != nil {
				b.Tune(&o)
			}
			rep := Run(o, Config{LinTimeout: 30 * time.Second})
			if !slices.ContainsFunc(rep.Verdicts, func(v Verdict) bool { return v.Checker == b.Checker }) {
				// The run never judged (options that do not validate, a
				// crash): that is no catch.
				t.Errorf("bug %s, seed %d: checker %s gave no verdict: %s %s", b.Name, seed, b.Checker, rep.Kind, rep.Crash)
				break
			}
			if rep.Verdict(b.Checker).OK {
				continue
			}
			r.seeds = int(seed)
			r.others = rep.FailedCheckers()
			caught[b.Checker] = true
			break
		}
		r.wall = time.Since(start)
		rows = append(rows, r)
		if r.seeds == 0 {
			t.Errorf("bug %s: checker %s did not catch it in %d seeds", b.Name, b.Checker, zooBudget)
		}
	}
	_ = PlantBug("")
	var out strings.Builder
	tw := tabwriter.NewWriter(&out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "bug\tchecker\tseeds needed\tall failing checkers\ttime")
	for _, r := range rows {
		seeds := fmt.Sprint(r.seeds)
		if r.seeds == 0 {
			seeds = fmt.Sprintf("not caught in %d", zooBudget)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", r.bug, r.checker, seeds, strings.Join(r.others, ","), r.wall.Round(time.Millisecond))
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
