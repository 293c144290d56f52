//go:build bugzoo

package sim

import (
	"fmt"
	"slices"
	"time"
)

// ZooBug returns the zoo's bug of that name.
func ZooBug(name string) (Bug, bool) {
	i := slices.IndexFunc(Zoo, func(b Bug) bool { return b.Name == name })
	if i < 0 {
		return Bug{}, false
	}
	return Zoo[i], true
}

// Apply puts o in the bug's group size (one node unless it lives in a
// group) and turns on the faults it needs (Tune). The zoo's hunts and
// `bouncer sim --bug` both apply it, so that a zoo seed replays.
func (b Bug) Apply(o *Options) {
	o.Nodes = max(1, b.Nodes)
	if b.Tune != nil {
		b.Tune(o)
	}
}

// Options are the options the zoo runs seed with for the bug: the seed's
// own (swarm testing on) or the plain configuration's (off, PlainOptions),
// with the bug applied.
func (b Bug) Options(seed uint64, swarm bool) Options {
	o := PlainOptions(seed)
	if swarm {
		o = NewOptions(seed)
	}
	b.Apply(&o)
	return o
}

// Caught judges a run with the bug planted: true only when the bug's
// checker judged the run and failed it. A run that gives the checker no
// verdict is never a catch: its options did not validate, so no checker
// ran (an error: the bug's Tune is wrong, no later seed will do better), or
// it crashed before the checker found anything (its OK covers only the run
// up to the crash: the engine stopped the bug, the checker did not). A
// failure the checker found before a crash is a catch.
func (b Bug) Caught(rep *Report) (bool, error) {
	i := slices.IndexFunc(rep.Verdicts, func(v Verdict) bool { return v.Checker == b.Checker })
	if i < 0 {
		return false, fmt.Errorf("bug %s, seed %d: checker %s gave no verdict: %s %s", b.Name, rep.Options.Seed, b.Checker, rep.Kind, firstLine(rep.Crash))
	}
	return !rep.Verdicts[i].OK, nil
}

// Hunt is one bug's search through seeds 1..Seeds, swarm testing on or
// off, fed the runs in seed order (Add); it ends at the first seed that
// catches the bug, at a run that gives no verdict, or after Seeds seeds.
type Hunt struct {
	Bug   Bug
	Swarm bool
	Seeds int // the budget

	Caught    uint64        // the first seed that caught the bug (0: none)
	Runs      int           // seeds judged
	Crashed   int           // runs that crashed before the checker failed: no catch
	SimTime   time.Duration // simulated time of the seeds judged
	Failed    []string      // every checker that failed in the catching run
	NoVerdict string        // why a run gave no verdict (an error)
}

// Seed is the i-th seed of the hunt (from 0).
func (h *Hunt) Seed(i int) uint64 { return uint64(i) + 1 }

// Options are the options of the hunt's i-th seed.
func (h *Hunt) Options(i int) Options { return h.Bug.Options(h.Seed(i), h.Swarm) }

// Add judges the next seed's run; it reports whether the hunt is over.
func (h *Hunt) Add(rep *Report) bool {
	if h.Done() {
		return true
	}
	h.Runs++
	h.SimTime += rep.Stats.SimTime
	caught, err := h.Bug.Caught(rep)
	switch {
	case err != nil:
		h.NoVerdict = err.Error()
	case caught:
		h.Caught = rep.Options.Seed
		h.Failed = rep.FailedCheckers()
	case rep.Kind == CrashFailure:
		h.Crashed++
	}
	return h.Done()
}

// Done reports whether the hunt is over.
func (h *Hunt) Done() bool { return h.Caught > 0 || h.NoVerdict != "" || h.Runs >= h.Seeds }
