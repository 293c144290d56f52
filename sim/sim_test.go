package sim

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"hash"
	"sync"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

var (
	determinismSeeds = flag.Int("sim.determinism-seeds", 16, "seeds TestDeterministicTrace runs twice")
	smokeSeeds       = flag.Int("sim.seeds", 8, "seeds TestSeedsPass runs")
)

// shortOptions shortens a seed's safety phase for tests that run many seeds.
func shortOptions(seed uint64) Options {
	o := NewOptions(seed)
	o.Safety = 4 * time.Second
	return o
}

// TestDeterministicTrace: the same seed gives the same trace, byte for byte,
// over many seeds. The two runs of a seed go at the same time, so that
// Pebble's goroutines are scheduled differently in each: nothing in the
// trace may depend on them.
func TestDeterministicTrace(t *testing.T) {
	for seed := uint64(1); seed <= uint64(*determinismSeeds); seed++ {
		var sums [2][]byte
		var lines [2]int
		var wg sync.WaitGroup
		for i := range sums {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := &lineHash{h: sha256.New()}
				rep := Run(shortOptions(seed), Config{Trace: h})
				sums[i], lines[i] = h.h.Sum(nil), h.lines
				if rep.Failed() {
					t.Errorf("seed %d: %s", seed, rep.Summary())
				}
			}()
		}
		wg.Wait()
		require.Greater(t, lines[0], 100, "seed %d: a trace of a few lines proves little", seed)
		require.Equal(t, fmt.Sprintf("%x", sums[0]), fmt.Sprintf("%x", sums[1]),
			"seed %d: two runs wrote different traces (%d and %d lines)", seed, lines[0], lines[1])
	}
}

type lineHash struct {
	h     hash.Hash
	lines int
}

func (l *lineHash) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			l.lines++
		}
	}
	return l.h.Write(p)
}

// TestSeedsPass: a few seeds of the swarm pass every checker (the CI
// campaign runs hundreds with bouncer sim).
func TestSeedsPass(t *testing.T) {
	for seed := uint64(1); seed <= uint64(*smokeSeeds); seed++ {
		rep := Run(shortOptions(seed), Config{})
		if rep.Failed() {
			for _, v := range rep.Verdicts {
				if !v.OK {
					t.Logf("%s: %s", v.Checker, v.Detail)
				}
			}
			t.Errorf("%s %s", rep.Summary(), rep.Crash)
		}
		require.NotEmpty(t, rep.History, "seed %d recorded no history", seed)
	}
}

func TestOptions(t *testing.T) {
	kinds := map[string]int{}
	for seed := uint64(1); seed <= 200; seed++ {
		o := NewOptions(seed)
		require.NoError(t, o.Validate(), "seed %d", seed)
		require.Equal(t, o, NewOptions(seed), "options are a function of the seed")
		for _, f := range o.Faults() {
			kinds[f]++
		}
	}
	for _, f := range []string{"partitions", "resets", "pauses", "crashes", "disk-faults"} {
		require.Greater(t, kinds[f], 20, "fault kind %s is on in too few seeds", f)
	}
	o := NewOptions(1)
	o.Clients = 0
	require.Error(t, o.Validate())
}

func TestClockTrueAt(t *testing.T) {
	for _, c := range []clock{{0, 0}, {12345, 10_000}, {999, -10_000}, {7, 1}} {
		for _, l := range []spec.Time{c.offset + 1, c.offset + 1_000_000_007, c.offset + 40e9} {
			at := c.trueAt(l)
			require.GreaterOrEqual(t, c.local(at), l, "clock %+v local %v", c, l)
			if at > 0 {
				require.Less(t, c.local(at-1), l, "clock %+v local %v: not the first instant", c, l)
			}
		}
	}
}

func TestQueueOrder(t *testing.T) {
	var q queue
	for i, at := range []spec.Time{5, 1, 5, 3, 1} {
		q.push(event{at: at, c: i})
	}
	var got []int
	for q.len() > 0 {
		got = append(got, q.pop().c)
	}
	require.Equal(t, []int{1, 4, 3, 0, 2}, got, "by time, then in the order scheduled")
}

// TestMutexCheckerFails: overlapping beliefs in conflicting modes fail.
func TestMutexCheckerFails(t *testing.T) {
	s := newSim(NewOptions(1), Config{})
	a, b := spec.NamedSession("a"), spec.NamedSession("b")
	s.mutex[0] = []segment{
		{session: a, mode: spec.PR, start: 0, end: 10},
		{session: b, mode: spec.CR, start: 5, end: 20},
		{session: b, mode: spec.EX, start: 10, end: 20},
	}
	s.checkMutex()
	require.Empty(t, s.failures, "touching intervals and compatible modes are fine")
	s.mutex[0] = append(s.mutex[0], segment{session: a, mode: spec.PW, start: 19, end: 30})
	s.checkMutex()
	require.Contains(t, s.failures[Mutex], "believed it held")
}

// TestFenceCheckerFails: a stale write applied, and a write of the latest
// grant rejected, both fail.
func TestFenceCheckerFails(t *testing.T) {
	s := newSim(NewOptions(1), Config{})
	a, b := spec.NamedSession("a"), spec.NamedSession("b")
	s.grants[grantKey{a, 1, 7}] = 1
	s.grants[grantKey{b, 1, 9}] = 2
	s.fenceWrite(&write{session: b, resource: "r0", token: 9, grant: 1})
	s.fenceWrite(&write{session: a, resource: "r0", token: 7, grant: 1})
	require.Empty(t, s.failures, "a stale write rejected is the fence working")
	s = newSim(NewOptions(1), Config{})
	s.grants[grantKey{a, 1, 7}] = 1
	s.grants[grantKey{b, 1, 7}] = 2
	s.fenceWrite(&write{session: b, resource: "r0", token: 7, grant: 1})
	s.fenceWrite(&write{session: a, resource: "r0", token: 7, grant: 1})
	require.Contains(t, s.failures[Fencing], "stale write")
	s = newSim(NewOptions(1), Config{})
	s.grants[grantKey{a, 1, 9}] = 1
	s.grants[grantKey{b, 1, 7}] = 2
	s.fenceWrite(&write{session: a, resource: "r0", token: 9, grant: 1})
	s.fenceWrite(&write{session: b, resource: "r0", token: 7, grant: 1})
	require.Contains(t, s.failures[Fencing], "latest grant")
}

// TestTokensCheckerFails: a token not above one sent before fails, unless
// it is a recorded outcome answered again.
func TestTokensCheckerFails(t *testing.T) {
	s := newSim(NewOptions(1), Config{})
	a, b := spec.NamedSession("a"), spec.NamedSession("b")
	acq := func(id spec.SessionID, req spec.RequestID) *message {
		return &message{input: spec.Input{Op: spec.OpAcquire, Session: id, Request: req, Resource: "r0", Mode: spec.EX}}
	}
	ok := func(tok spec.Token) spec.Result { return spec.Result{Code: spec.OK, Mode: spec.EX, Token: tok} }
	s.observeGrants(&turnOut{msgs: []*message{acq(a, 1)}, replies: []spec.Result{ok(5)}})
	s.observeGrants(&turnOut{msgs: []*message{acq(b, 1)}, replies: []spec.Result{ok(4)}, retried: []bool{true}})
	require.Empty(t, s.failures)
	s.observeGrants(&turnOut{msgs: []*message{acq(b, 2)}, replies: []spec.Result{ok(3)}})
	require.Contains(t, s.failures[Tokens], "not above")
	s = newSim(NewOptions(1), Config{})
	s.observeGrants(&turnOut{msgs: []*message{acq(a, 1), acq(b, 1)}, replies: []spec.Result{ok(5), ok(5)}})
	require.Contains(t, s.failures[Tokens], "went to session")
}

// TestDeterministicCluster5: groups of 5 replicas, each seed run twice at
// once on two goroutines: raft's election jitter comes from the seed, and
// the two runs' draws do not mix, so the traces are the same byte for byte.
func TestDeterministicCluster5(t *testing.T) {
	for seed := uint64(1); seed <= uint64(*determinismSeeds); seed++ {
		var sums [2][]byte
		var wg sync.WaitGroup
		var st [2]Stats
		for i := range sums {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := &lineHash{h: sha256.New()}
				o := shortOptions(seed)
				o.Nodes = 5
				rep := Run(o, Config{Trace: h})
				sums[i], st[i] = h.h.Sum(nil), rep.Stats
				if rep.Failed() {
					t.Errorf("seed %d: %s", seed, rep.Summary())
				}
			}()
		}
		wg.Wait()
		require.Positive(t, st[0].Elections, "seed %d: no leader was elected", seed)
		require.Equal(t, fmt.Sprintf("%x", sums[0]), fmt.Sprintf("%x", sums[1]), "seed %d: two runs wrote different traces", seed)
	}
}
