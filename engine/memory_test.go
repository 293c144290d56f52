package engine_test

import (
	"flag"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
)

// heldLocks, heldSessions: the held-locks cell of bench/peers, on the core
// alone: 64 clients, each with a session, take 100,000 distinct locks in
// EX between them and keep them.
const (
	heldLocks    = 100_000
	heldSessions = 64
)

var heapProfile = flag.String("heldlocks.heapprofile", "", "write a heap profile with the locks held here (TestHeldLocksMemory)")

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// holdLocks opens the sessions and takes the locks as the bench's clients
// do: each acknowledges its previous answer with every request; a turn
// steps a batch of inputs, then Ready and Advance, as the loop does.
func holdLocks(tb testing.TB, c *engine.Core) {
	sessions := make([]spec.SessionID, heldSessions)
	reqs := make([]spec.RequestID, heldSessions)
	for i := range sessions {
		sessions[i] = spec.NamedSession("client-" + strconv.Itoa(i))
		if r := c.Step(0, &spec.Input{Op: spec.OpOpen, Session: sessions[i], TTL: time.Hour}); r.Code != spec.OK {
			tb.Fatalf("open: %s", r.String())
		}
	}
	in := spec.Input{Op: spec.OpAcquire, Mode: spec.EX, WaitTimeout: time.Minute}
	for j := range heldLocks {
		i := j % heldSessions
		reqs[i]++
		in.Session, in.Request, in.Acked = sessions[i], reqs[i], reqs[i]-1
		in.Resource = "t-t" + strconv.Itoa(j) // the bench's names
		if r := c.Step(0, &in); r.Code != spec.OK {
			tb.Fatalf("lock %d: %s", j, r.String())
		}
		if j%heldSessions == heldSessions-1 {
			c.Ready()
			c.Advance()
		}
	}
	c.Ready()
	c.Advance()
	if st := c.Stats(); st.Locks != heldLocks || st.Resources != heldLocks {
		tb.Fatalf("stats %+v, want %d locks and resources", st, heldLocks)
	}
}

// TestHeldLocksMemory reports the live heap the core takes per held lock
// (run with -v to see it): the engine's share of the held-locks cell of
// bench/peers, reproducible without the bench. -heldlocks.heapprofile
// writes a heap profile with the locks held.
func TestHeldLocksMemory(t *testing.T) {
	if testing.Short() || engine.InvariantsOn {
		t.Skip("takes 100,000 locks (the invariants build checks every one in O(locks))")
	}
	base := liveHeap()
	c, err := engine.New(spec.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	holdLocks(t, c)
	held := liveHeap()
	if *heapProfile != "" {
		f, err := os.Create(*heapProfile)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	perLock := float64(held-base) / heldLocks
	t.Logf("%d held locks (%d sessions): live heap %.1f MiB, %.0f bytes per held lock",
		heldLocks, heldSessions, float64(held-base)/(1<<20), perLock)
	runtime.KeepAlive(c)
}

// BenchmarkHeldLocks takes the held-locks cell's 100,000 locks on a fresh
// core per op and reports the live heap per held lock.
func BenchmarkHeldLocks(b *testing.B) {
	if engine.InvariantsOn {
		b.Skip("the invariants build checks every step in O(locks)")
	}
	var perLock float64
	for b.Loop() {
		b.StopTimer()
		base := liveHeap()
		c, err := engine.New(spec.DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		holdLocks(b, c)
		b.StopTimer()
		perLock = float64(liveHeap()-base) / heldLocks
		runtime.KeepAlive(c)
		b.StartTimer()
	}
	b.ReportMetric(perLock, "B/held-lock")
	b.ReportMetric(float64(heldLocks)*float64(b.N)/b.Elapsed().Seconds(), "locks/s")
}
