package replay

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/bouncer-dlm/bouncer/sim"
)

// Page builds the page of the run r recorded, judged in rep. porcupine is
// the address of Porcupine's visualization beside it ("" for none), and
// replay the command that reproduces the run.
func (r *Recorder) Page(rep *sim.Report, porcupine, replay string) (*Page, error) {
	if r.err != nil {
		return nil, r.err
	}
	o := &rep.Options
	p := &Page{
		Title:     "Bouncer: seed " + strconv.FormatUint(o.Seed, 10),
		Source:    "sim",
		Summary:   rep.Summary(),
		Options:   o.String(),
		Replay:    replay,
		Porcupine: porcupine,
		Clients:   r.clients,
		Resources: r.resources,
	}
	if rep.Crash != "" {
		p.Summary += "\ncrash: " + firstLine(rep.Crash)
	}
	for _, v := range rep.Verdicts {
		p.Verdicts = append(p.Verdicts, Verdict{Checker: v.Checker, OK: v.OK, Detail: v.Detail})
	}
	sortResources(p.Resources)
	if r.stopped != "" {
		p.Notes = append(p.Notes, r.stopped)
	}
	var f *Failure
	if r.failure != nil {
		c := *r.failure
		f = &c
	}
	p.Events, p.States, p.Failure = r.events, r.states, f
	p.bound()
	return p, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// sortResources orders resources as a reader counts: r2 before r10.
func sortResources(rs []Resource) {
	slices.SortFunc(rs, func(a, b Resource) int {
		if len(a.Name) != len(b.Name) {
			return len(a.Name) - len(b.Name)
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// bound cuts the page's steps to MaxEvents and its states to MaxStates,
// keeping the first violation three quarters of the way in (or the start
// of a run without one), says so in Notes, and links each step to the state
// in force after it.
func (p *Page) bound() {
	focus := -1
	if p.Failure != nil {
		focus = p.Failure.Step
	}
	n := len(p.Events)
	lo, hi := window(n, MaxEvents, focus)
	if lo > 0 || hi < n {
		p.Notes = append(p.Notes, fmt.Sprintf("this page shows steps %d to %d of %d (at most %d)", lo+1, hi, n, MaxEvents))
		p.Events = p.Events[lo:hi]
		if p.Failure != nil {
			p.Failure.Step -= lo
		}
	}
	if len(p.Events) > 0 && len(p.States) > 0 {
		// The states in the steps' span, and the one in force at its start.
		from, to := p.Events[0].T, p.Events[len(p.Events)-1].T
		a, _ := slices.BinarySearchFunc(p.States, from, func(s State, t int64) int { return cmpInt(s.T, t+1) })
		a = max(a-1, 0)
		b, _ := slices.BinarySearchFunc(p.States, to, func(s State, t int64) int { return cmpInt(s.T, t+1) })
		ns := len(p.States)
		focusState := -1
		if p.Failure != nil {
			focusState, _ = slices.BinarySearchFunc(p.States, p.Failure.T, func(s State, t int64) int { return cmpInt(s.T, t+1) })
			focusState -= a + 1
		}
		sa, sb := window(b-a, MaxStates, focusState)
		if a+sa > 0 || a+sb < ns {
			if b-a > MaxStates {
				p.Notes = append(p.Notes, fmt.Sprintf("this page keeps %d of the %d node states (at most %d); steps outside them show no queues", sb-sa, ns, MaxStates))
			}
		}
		p.States = p.States[a+sa : a+sb]
	}
	if p.Failure != nil && (p.Failure.Step < 0 || p.Failure.Step >= len(p.Events)) {
		p.Failure.Step = -1
	}
	j := -1
	for i := range p.Events {
		for j+1 < len(p.States) && p.States[j+1].T <= p.Events[i].T {
			j++
		}
		p.Events[i].St = j
	}
	if p.Events == nil {
		p.Events = []Event{}
	}
	if p.States == nil {
		p.States = []State{}
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// window picks max items of n: around focus (three quarters in) if there
// is one, else the first.
func window(n, max, focus int) (lo, hi int) {
	if n <= max {
		return 0, n
	}
	if focus < 0 {
		return 0, max
	}
	lo = focus - 3*max/4
	lo = min(n-max, lo)
	lo = maxInt(0, lo)
	return lo, lo + max
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}
