package spec_test

import (
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/spec/spectest"
	"pgregory.net/rapid"
)

// TestModelInvariants drives the model with random workloads and checks the
// invariants after every step and the transition properties between steps.
func TestModelInvariants(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lim := spectest.SmallLimits()
		m := spec.NewModel(lim)
		g := spectest.NewGen()
		before := m.State()
		check := func(what string) {
			after := m.State()
			if err := spec.CheckInvariants(&after, &lim); err != nil {
				t.Fatalf("after %s: %v\n%s", what, err, after.String())
			}
			if err := spec.CheckTransition(&before, &after); err != nil {
				t.Fatalf("after %s: %v\nbefore:\n%s\nafter:\n%s", what, err, before.String(), after.String())
			}
			before = after
		}
		t.Repeat(map[string]func(*rapid.T){
			"step": func(t *rapid.T) {
				in := g.Input(t)
				r, ev := m.Step(g.Advance(t), in)
				g.Observe(in, r, ev)
				check(in.Op.String())
			},
			"retry": func(t *rapid.T) {
				in, ok := g.Retry(t)
				if !ok {
					t.Skip("nothing to retry")
				}
				r, ev := m.Step(g.Advance(t), in)
				g.Observe(in, r, ev)
				check("retry")
			},
			"tick": func(t *rapid.T) {
				m.Tick(g.Advance(t))
				check("tick")
			},
			"recover": func(t *rapid.T) {
				now := g.Advance(t)
				m.Recover(now)
				m.Tick(now) // timers due at the restart fire on its first turn
				check("recover")
			},
			"failover": func(t *rapid.T) {
				now := g.Advance(t)
				grace := time.Duration(rapid.Int64Range(0, int64(lim.TTLMax)).Draw(t, "grace"))
				m.Failover(now, grace)
				m.Tick(now) // timers due at the failover fire on the new leader's first entry
				check("failover")
			},
		})
	})
}
