package spec

import (
	"flag"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// The exhaustive check runs at the CI bounds on every `go test ./spec/...`.
// The larger bounds take many minutes; run them with
//
//	go test ./spec -run TestExplore -explore.large -timeout 2h -v
//
// or with BOUNCER_EXPLORE_LARGE=1 in the environment.
var exploreLarge = flag.Bool("explore.large", false, "run the exhaustive check at its larger bounds")

type namedBounds struct {
	name string
	Bounds
}

// exploreBounds are the configurations checked, each small enough to visit
// every reachable state. One resource with all six modes and a restart
// covers the grant rules and recovery; three sessions make a conversion, a
// waiter and a holder meet; two resources are where deadlocks across
// resources live.
func exploreBounds(large bool) []namedBounds {
	all := []Mode{NL, CR, CW, PR, PW, EX}
	failover := func(b *Bounds) { b.Failovers = 1 }
	semaphore := func(limit uint32) func(*Bounds) { return func(b *Bounds) { b.Semaphore = limit } }
	bound := func(name string, sessions, resources int, modes []Mode, crashes int, more ...func(*Bounds)) namedBounds {
		b := Bounds{Sessions: sessions, Resources: resources, Modes: modes,
			TTL: 2, WaitTimeout: 1, WriteValue: true, Close: true, Crashes: crashes, Downtime: 1,
			StatesMax: 50_000_000}
		for _, f := range more {
			f(&b)
		}
		return namedBounds{name, b}
	}
	if !large {
		return []namedBounds{
			bound("2sessions-1resource-6modes-restart", 2, 1, all, 1),
			bound("3sessions-1resource-PR,PW,EX", 3, 1, []Mode{PR, PW, EX}, 0),
			bound("2sessions-2resources-EX-restart-failover", 2, 2, []Mode{EX}, 1, failover),
			bound("3sessions-1resource-EX-semaphore2", 3, 1, []Mode{EX}, 0, semaphore(2)),
			bound("2sessions-2resources-EX-semaphore1", 2, 2, []Mode{EX}, 0, semaphore(1)),
		}
	}
	tryAndDelay := func(b *Bounds) { b.NoQueue, b.LockDelay, b.Downtime = true, 1, 2 }
	noClose := func(b *Bounds) { b.Close = false }
	noWrites := func(b *Bounds) { b.WriteValue = false }
	return []namedBounds{
		bound("2sessions-1resource-6modes-restart-try-lockdelay", 2, 1, all, 1, tryAndDelay),
		bound("3sessions-1resource-CR,PR,PW,EX-restart", 3, 1, []Mode{CR, PR, PW, EX}, 1),
		bound("2sessions-2resources-PR,EX-restart", 2, 2, []Mode{PR, EX}, 1, noClose),
		bound("4sessions-1resource-EX-semaphore3-restart", 4, 1, []Mode{EX}, 1, semaphore(3)),
		bound("3sessions-2resources-EX-semaphore2-noclose", 3, 2, []Mode{EX}, 0, semaphore(2), noClose, noWrites),
	}
}

// TestExplore visits every reachable state of the model within each bound
// and fails on the first broken invariant or transition property, printing
// a shortest counterexample.
func TestExplore(t *testing.T) {
	large := *exploreLarge || os.Getenv("BOUNCER_EXPLORE_LARGE") != ""
	defer debug.SetGCPercent(debug.SetGCPercent(400)) // the frontier is large and long-lived
	for _, nb := range exploreBounds(large) {
		t.Run(nb.name, func(t *testing.T) {
			start := time.Now()
			rep, err := Explore(nb.Bounds)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%v in %v", rep, time.Since(start).Round(time.Millisecond))
			if rep.Violation != nil {
				t.Fatalf("%v", rep.Violation)
			}
			if !rep.Complete {
				t.Fatalf("incomplete: raise StatesMax")
			}
		})
	}
}

// TestExploreFindsPlantedBugs proves the checks can fail: with each planted
// bug (bugs.go) the checker must find a counterexample, and name the
// property the bug breaks.
func TestExploreFindsPlantedBugs(t *testing.T) {
	small := func(sessions, resources int, modes ...Mode) Bounds {
		return Bounds{Sessions: sessions, Resources: resources, Modes: modes,
			TTL: 2, WaitTimeout: 2, WriteValue: true, Crashes: 1,
			StatesMax: 2_000_000}
	}
	withFailover := func(b Bounds) Bounds { b.Failovers, b.Downtime = 1, 1; return b }
	withSemaphore := func(b Bounds) Bounds { b.Semaphore = 2; return b }
	cases := []struct {
		bug    bugs
		bounds Bounds
		want   string // in the violation: which check caught it
	}{
		{bugNewIgnoreConversions, small(3, 1, CR, PR, EX), "while the conversion of"},
		{bugOvertake, small(3, 1, PR, EX), "while a request queued ahead of it still waits"},
		{bugExpiryKeepsValue, small(2, 1, NL, EX), "value block still valid after its EX holder"},
		{bugUpConvertKeepsToken, small(1, 1, CR, EX), "kept token"},
		{bugConvertIgnoresHolders, small(2, 1, PR, EX), "granted modes conflict"},
		{bugNoDeadlockCheck, small(2, 2, EX), "wait-for graph has a cycle"},
		{bugTokenMaxFromLocks, small(1, 1, EX), "token-max went down"},
		{bugExpiryKeepsWaiters, small(2, 1, EX), "which is not a live session"},
		{bugDeadlockAheadEdges, small(3, 2, PR, EX), "but had it been let through no request would be stuck"},
		{bugConversionOvertakes, small(3, 1, NL, CR, PR, PW, EX), "overtook the conversion of"},
		{bugFailoverNoGrace, withFailover(small(1, 1, EX)), "before the grace ends"},
		{bugSemaphoreOverLimit, withSemaphore(small(2, 1, EX)), "semaphore over its limit"},
	}
	seen := bugs(0)
	for _, c := range cases {
		seen |= c.bug
		t.Run(c.bug.String(), func(t *testing.T) {
			c.bounds.bugs = c.bug
			rep, err := Explore(c.bounds)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Violation == nil {
				t.Fatalf("planted bug %v not found: %v", c.bug, rep)
			}
			t.Logf("%v\n%v", rep, rep.Violation)
			if msg := rep.Violation.Err.Error(); !strings.Contains(msg, c.want) {
				t.Fatalf("planted bug %v caught by the wrong check: %q, want %q", c.bug, msg, c.want)
			}
			if n := len(rep.Violation.Steps); n == 0 || n > 12 {
				t.Fatalf("counterexample of %d steps: want a short one", n)
			}
		})
	}
	if seen != bugsEnd-1 {
		t.Fatalf("bugs %b have no case here", (bugsEnd-1)&^seen)
	}
}

// TestExploreCleanAtBugBounds: the bounds that catch the planted bugs find
// nothing without them, so each counterexample is the bug's doing.
func TestExploreCleanAtBugBounds(t *testing.T) {
	b := Bounds{Sessions: 2, Resources: 2, Modes: []Mode{EX}, TTL: 2, WaitTimeout: 2,
		WriteValue: true, Crashes: 1, StatesMax: 2_000_000}
	rep, err := Explore(b)
	if err != nil || rep.Violation != nil || !rep.Complete {
		t.Fatalf("%v %v %v", err, rep, rep.Violation)
	}
	t.Log(rep)
}

// TestCheckFailover shows both halves of the failover check fail: a
// deadline short of the grace, and a deadline moved earlier than it was.
func TestCheckFailover(t *testing.T) {
	a := NamedSession("a")
	sec := func(n int) Time { return Time(time.Duration(n) * time.Second) }
	state := func(now, deadline Time) *State {
		return &State{Now: now, Sessions: []SessionState{{ID: a, TTL: 2 * time.Second, Deadline: deadline}}}
	}
	for _, c := range []struct {
		name        string
		before, mid *State
		want        string // "" for none
	}{
		{"grace given", state(sec(1), sec(3)), state(sec(2), sec(4)), ""},
		{"no grace", state(sec(1), sec(3)), state(sec(2), sec(3)), "before the grace ends"},
		{"shortened", state(sec(1), sec(9)), state(sec(2), sec(4)), "earlier than without the failover"},
	} {
		err := checkFailover(c.before, c.mid, 2*time.Second)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error with %q", c.name, err, c.want)
		}
	}
}
