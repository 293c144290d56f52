package engine_test

import (
	"flag"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/spec/spectest"
	"pgregory.net/rapid"
)

// TestMain raises rapid's defaults for this package: 1000 random workloads
// (CI included) of about 200 actions each, enough to reach queued
// conversions and deadlocks. -rapid.checks and -rapid.steps (or RAPID_CHECKS
// and RAPID_STEPS) override them.
const rapidChecksDefault = 1000

// rapidChecksExplicit is set when the command line chose the number of checks.
var rapidChecksExplicit bool

// withRapidChecks runs f with rapid's number of checks set to n, for tests
// whose cases are costly, unless the command line chose the number.
func withRapidChecks(n int, f func()) {
	if rapidChecksExplicit {
		f()
		return
	}
	_ = flag.Set("rapid.checks", strconv.Itoa(n))
	defer flag.Set("rapid.checks", strconv.Itoa(rapidChecksDefault))
	f()
}

func TestMain(m *testing.M) {
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	rapidChecksExplicit = set["rapid.checks"] || os.Getenv("RAPID_CHECKS") != ""
	if !set["rapid.checks"] && os.Getenv("RAPID_CHECKS") == "" {
		_ = flag.Set("rapid.checks", strconv.Itoa(rapidChecksDefault))
	}
	if !set["rapid.steps"] && os.Getenv("RAPID_STEPS") == "" {
		_ = flag.Set("rapid.steps", "200")
	}
	os.Exit(m.Run())
}

// twin runs the model and the engine side by side on the same inputs and
// fails at the first step where their replies, events or states differ, or
// where an invariant breaks. Restarts go through the engine's record
// encoding and Restore (the model's Recover says what they must give).
type twin struct {
	t     *rapid.T
	lim   spec.Limits
	model *spec.Model
	core  *engine.Core
	kv    memKV
	last  spec.State
	buf   engine.StateBuf // StateIn reuses it from turn to turn
}

func newTwin(t *rapid.T, lim spec.Limits) *twin {
	c, err := engine.New(lim)
	if err != nil {
		t.Fatal(err)
	}
	return &twin{t: t, lim: lim, model: spec.NewModel(lim), core: c, kv: memKV{}}
}

func (w *twin) step(now spec.Time, in spec.Input, what string) (spec.Result, []spec.Event) {
	mr, mev := w.model.Step(now, in)
	er := w.core.Step(now, &in)
	if d := diffResults(mr, er); d != "" {
		w.t.Fatalf("%s %+v: replies differ\n%s", what, in, d)
	}
	w.finish(mev, what)
	return mr, mev
}

func (w *twin) tick(now spec.Time) []spec.Event {
	mev := w.model.Tick(now)
	w.core.Tick(now)
	w.finish(mev, "tick")
	return mev
}

func (w *twin) restart(now spec.Time) []spec.Event {
	w.model.Recover(now)
	c, err := engine.Restore(w.lim, now, w.kv.records)
	if err != nil {
		w.t.Fatalf("restore: %v", err)
	}
	w.core = c
	return w.tick(now)
}

func (w *twin) failover(now spec.Time, grace time.Duration) []spec.Event {
	w.model.Failover(now, grace)
	w.core.Failover(now, grace)
	return w.tick(now)
}

func (w *twin) finish(mev []spec.Event, what string) {
	rd := w.core.Ready()
	if d := diffEvents(mev, rd.Events); d != "" {
		w.t.Fatalf("%s: events differ\n%s", what, d)
	}
	w.kv.apply(rd.Writes)
	w.core.Advance()
	ms, es := w.model.State(), w.core.State()
	if d := diffStates(&ms, &es); d != "" {
		w.t.Fatalf("%s: states differ\n%s", what, d)
	}
	if err := w.core.CheckInvariants(); err != nil {
		w.t.Fatalf("%s: %v\n%s", what, err, es.String())
	}
	if d := diffStates(&es, w.core.StateIn(&w.buf)); d != "" {
		w.t.Fatalf("%s: StateIn differs from State\n%s", what, d)
	}
	var queued []spec.ResourceState
	for _, r := range es.Resources {
		if len(r.Converting)+len(r.Waiting) > 0 {
			queued = append(queued, r)
		}
	}
	if got := w.core.QueuedResources(); !slices.EqualFunc(got, queued, func(a, b spec.ResourceState) bool { return a.Equal(&b) }) {
		w.t.Fatalf("%s: QueuedResources %v, the state's queued resources %v", what, got, queued)
	}
	if err := w.core.CheckInvariantsOf(&es); err != nil {
		w.t.Fatalf("%s: CheckInvariantsOf: %v", what, err)
	}
	if err := spec.CheckTransition(&w.last, &es); err != nil {
		w.t.Fatalf("%s: %v\nbefore:\n%s\nafter:\n%s", what, err, w.last.String(), es.String())
	}
	w.last = es
}

// TestEngineMatchesModel is the rapid state-machine test: random sessions,
// resources, all six modes, conversions, try-locks, timeouts, time jumps,
// expiries, retried request ids, restarts and failovers; the engine must agree with
// the model at every step.
func TestEngineMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := newTwin(t, spectest.SmallLimits())
		g := spectest.NewGen()
		t.Repeat(map[string]func(*rapid.T){
			"step": func(t *rapid.T) {
				in := g.Input(t)
				r, ev := w.step(g.Advance(t), in, in.Op.String())
				g.Observe(in, r, ev)
			},
			"retry": func(t *rapid.T) {
				in, ok := g.Retry(t)
				if !ok {
					t.Skip("nothing to retry")
				}
				r, ev := w.step(g.Advance(t), in, "retry "+in.Op.String())
				g.Observe(in, r, ev)
			},
			"tick": func(t *rapid.T) {
				g.ObserveEvents(w.tick(g.Advance(t)))
			},
			"restart": func(t *rapid.T) {
				g.ObserveEvents(w.restart(g.Advance(t)))
			},
			"failover": func(t *rapid.T) {
				grace := time.Duration(rapid.Int64Range(0, int64(w.lim.TTLMax)).Draw(t, "grace"))
				g.ObserveEvents(w.failover(g.Advance(t), grace))
			},
		})
	})
}
