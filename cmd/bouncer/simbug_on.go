//go:build bugzoo

package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bouncer-dlm/bouncer/sim"
)

// plant plants --bug in the whole process before the simulation runs.
func (f *simFlags) plant() error {
	if err := sim.PlantBug(f.bug); err != nil {
		return usageError("%v", err)
	}
	return nil
}

// applyBug puts o in the planted bug's group size and turns on the faults
// the zoo turns on for it (its Tune): the options of a `bouncer zoo` seed.
func (f *simFlags) applyBug(o *sim.Options) {
	if b, ok := sim.ZooBug(f.bug); ok {
		b.Apply(o)
	}
}

// zooBugs are the bugs --bug names, in the zoo's order (all if none).
func zooBugs(names []string) ([]sim.Bug, error) {
	if len(names) == 0 {
		return sim.Zoo, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		if _, ok := sim.ZooBug(n); !ok {
			all := make([]string, 0, len(sim.Zoo))
			for _, b := range sim.Zoo {
				all = append(all, b.Name)
			}
			return nil, usageError("--bug %s: the zoo has no such bug (it has %s)", n, strings.Join(all, ", "))
		}
		want[n] = true
	}
	var out []sim.Bug
	for _, b := range sim.Zoo {
		if want[b.Name] {
			out = append(out, b)
		}
	}
	return out, nil
}

// runZoo hunts each bug in each setting, one bug planted at a time (a bug
// is planted in the whole process), and prints a row per hunt.
func runZoo(f zooFlags, out io.Writer) error {
	bugs, err := zooBugs(f.bugs)
	if err != nil {
		return err
	}
	swarms, err := f.swarms()
	if err != nil {
		return err
	}
	defer func() { _ = sim.PlantBug("") }()
	start := time.Now()
	var names, checkers []string
	for _, b := range bugs {
		names, checkers = append(names, zooBugLabel(b.Name, max(1, b.Nodes))), append(checkers, b.Checker)
	}
	table := newZooTable(out, f.json, names, checkers)
	for _, b := range bugs {
		if err := sim.PlantBug(b.Name); err != nil {
			return err
		}
		for _, swarm := range swarms {
			h := &sim.Hunt{Bug: b, Swarm: swarm, Seeds: f.seeds}
			began := time.Now()
			hunt(h, f.jobs, f.linTimeout)
			if err := table.add(zooRowOf(h, time.Since(began))); err != nil {
				return err
			}
		}
	}
	return table.finish(time.Since(start), f.seeds)
}

// hunt runs h's seeds on up to jobs goroutines and feeds h the reports in
// seed order; once h is done it starts no more, and it returns only when
// every run it started has ended (the next bug must not be planted under a
// run of this one).
func hunt(h *sim.Hunt, jobs int, linTimeout time.Duration) {
	type result struct {
		i   int
		rep *sim.Report
	}
	results := make(chan result)
	next, fed, running := 0, 0, 0
	pending := map[int]*sim.Report{}
	startNext := func() {
		i, o := next, h.Options(next)
		next++
		running++
		go func() {
			rep := sim.Run(o, sim.Config{LinTimeout: linTimeout})
			rep.Slim()
			results <- result{i, rep}
		}()
	}
	for running < jobs && next < h.Seeds {
		startNext()
	}
	for running > 0 {
		r := <-results
		running--
		pending[r.i] = r.rep
		for rep, ok := pending[fed]; ok && !h.Done(); rep, ok = pending[fed] {
			delete(pending, fed)
			fed++
			h.Add(rep)
		}
		for !h.Done() && running < jobs && next < h.Seeds {
			startNext()
		}
	}
}

// zooRowOf is a finished hunt as a row of the table.
func zooRowOf(h *sim.Hunt, wall time.Duration) zooRow {
	r := zooRow{Bug: h.Bug.Name, Nodes: max(1, h.Bug.Nodes), Checker: h.Bug.Checker, Swarm: h.Swarm,
		Caught: h.Caught > 0, Seed: h.Caught, Seeds: h.Runs, Crashed: h.Crashed,
		SimMs: h.SimTime.Milliseconds(), WallMs: wall.Milliseconds(), Failed: append([]string{}, h.Failed...),
		NoVerdict: h.NoVerdict}
	if r.Caught {
		r.Replay = fmt.Sprintf("bouncer sim --bug %s --seed %d", h.Bug.Name, h.Caught)
		if !h.Swarm {
			r.Replay += " --plain"
		}
	}
	return r
}
