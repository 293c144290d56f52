package engine_test

import (
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/spec/spectest"
	"pgregory.net/rapid"
)

// TestRestoreExact: a core that writes its deadlines, stepped through
// random turns, keepalives and failovers, is rebuilt by RestoreExact from
// its records and its clock into exactly the same state after every turn
// (the replica's restart and snapshot install), and the rebuilt core goes
// on exactly like the original.
func TestRestoreExact(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lim := spectest.SmallLimits()
		g := spectest.NewGen()
		c, err := engine.New(lim)
		if err != nil {
			t.Fatal(err)
		}
		c.WriteDeadlines()
		kv := memKV{}
		turn := func(c *engine.Core, kv memKV, now spec.Time, in *spec.Input, failover bool) {
			switch {
			case failover:
				c.Failover(now, c.SessionTTLMax())
				c.Tick(now)
			case in == nil:
				c.Tick(now)
			default:
				c.Step(now, in)
			}
			kv.apply(c.Ready().Writes)
			c.Advance()
		}
		for i, n := 0, rapid.IntRange(1, 40).Draw(t, "turns"); i < n; i++ {
			now := g.Advance(t)
			var in *spec.Input
			failover := false
			switch rapid.IntRange(0, 9).Draw(t, "kind") {
			case 0:
				failover = true
			case 1:
			case 2:
				x := g.InputOf(t, spec.OpKeepAlive)
				in = &x
			default:
				x := g.Input(t)
				in = &x
			}
			turn(c, kv, now, in, failover)
			r, err := engine.RestoreExact(lim, c.Now(), kv.records)
			if err != nil {
				t.Fatalf("turn %d: %v", i, err)
			}
			want, got := c.State(), r.State()
			if want.String() != got.String() {
				t.Fatalf("turn %d: restored\n%s\nwant\n%s", i, got.String(), want.String())
			}
			// Both go on alike: the rebuilt core is the same machine.
			later := now + spec.Time(rapid.IntRange(0, 3000).Draw(t, "later"))*spec.Time(time.Millisecond)
			c2, kv2 := r, memKV{}
			turn(c2, kv2, later, nil, false)
			probe, err := engine.RestoreExact(lim, c.Now(), kv.records)
			if err != nil {
				t.Fatal(err)
			}
			turn(probe, memKV{}, later, nil, false)
			if a, b := c2.State(), probe.State(); a.String() != b.String() {
				t.Fatalf("turn %d: two restored cores ticked to %v differ", i, later)
			}
		}
	})
}

// TestKeepAliveBytes: under WriteDeadlines a keepalive writes its session's
// record (with the deadline) and the meta record; without, nothing.
func TestKeepAliveBytes(t *testing.T) {
	lim := spec.DefaultLimits()
	for _, deadlines := range []bool{false, true} {
		c, err := engine.New(lim)
		if err != nil {
			t.Fatal(err)
		}
		if deadlines {
			c.WriteDeadlines()
		}
		id := spec.SessionID{1}
		c.Step(spec.Time(time.Second), &spec.Input{Op: spec.OpOpen, Session: id, TTL: 30 * time.Second})
		c.Ready()
		c.Advance()
		c.Step(spec.Time(10*time.Second), &spec.Input{Op: spec.OpKeepAlive, Session: id})
		w := c.Ready().Writes
		bytes := 0
		_ = w.Each(func(key, value []byte, _ bool) error { bytes += len(key) + len(value); return nil })
		n := w.Len()
		c.Advance()
		t.Logf("deadlines %v: a keepalive writes %d records, %d bytes of keys and values", deadlines, n, bytes)
		if want := map[bool]int{false: 0, true: 2}[deadlines]; n != want {
			t.Errorf("deadlines %v: a keepalive wrote %d records, want %d", deadlines, n, want)
		}
	}
}
