package engine

import (
	"errors"
	"fmt"

	"github.com/bouncer-dlm/bouncer/spec"
)

// checkInvariants panics if an invariant is broken, when built with the
// invariants tag: a broken invariant is a programmer error.
func (c *Core) checkInvariants() {
	if !invariantsOn {
		return
	}
	if err := c.CheckInvariants(); err != nil {
		panic(fmt.Sprintf("engine: invariant broken at %v: %v", c.now, err))
	}
}

// CheckInvariants checks the semantic invariants of spec.CheckInvariants on
// the core's state, then the consistency of its own structures: lists,
// counts, maps and the timer heap. It walks everything.
func (c *Core) CheckInvariants() error {
	st := c.State()
	return c.CheckInvariantsOf(&st)
}

// CheckInvariantsOf is CheckInvariants for a caller that has just built
// st = c.State() (and not stepped the core since): the same checks, without
// building the state again. st is only read.
func (c *Core) CheckInvariantsOf(st *spec.State) error {
	if err := spec.CheckInvariants(st, &c.lim); err != nil {
		return err
	}
	return c.CheckStructures()
}

// CheckStructures checks the consistency of the core's own structures
// (lists, counts, maps and the timer heap), the part of CheckInvariants
// that spec.CheckInvariants does not do. It walks everything.
func (c *Core) CheckStructures() error {
	if x := &noExt; x.value != nil || x.delayUntil != 0 || x.limit != 0 || x.held != 0 || x.ref != (opRef{}) || x.idlePrev != nil || x.idleNext != nil || x.converting != (lockList{}) || x.waiting != (lockList{}) || x.wantedModes != [spec.ModeCount]int32{} ||
		x.delay != (timer{index: -1}) || x.searchVisit != 0 || x.searchKey != 0 || x.bySession != nil {
		return errors.New("the shared empty resource extension was written")
	}
	timers := 0
	for id, s := range c.sessions {
		// map order: only which broken invariant is reported first
		if s.id != id || s.expiry.index < 0 || s.expiry.sess != s {
			return fmt.Errorf("session %s: bad id or expiry timer", spec.ShortID(id))
		}
		timers++
		pending, locks := 0, 0
		for l := s.locks.head; l != nil; l = l.link(sessionList).next {
			if l.sess != s || l.res == nil || c.lockOf(s, l.res.name) != l {
				return fmt.Errorf("session %s: a lock is misfiled", spec.ShortID(id))
			}
			if l.request != 0 {
				pending++
			}
			locks++
		}
		if locks != s.locks.n {
			return fmt.Errorf("session %s: lock list counts %d, holds %d", spec.ShortID(id), s.locks.n, locks)
		}
		n := 0
		for p := s.pending.head; p != nil; p = p.link(pendingList).next {
			if p.sess != s || p.request == 0 {
				return fmt.Errorf("session %s: pending list holds a lock with no queued request", spec.ShortID(id))
			}
			n++
		}
		if n != pending || n != s.pending.n {
			return fmt.Errorf("session %s: %d queued requests, pending list %d (n=%d)", spec.ShortID(id), pending, n, s.pending.n)
		}
		timers += n
	}
	live, idle := 0, 0
	for name, r := range c.resources {
		// map order: only which broken invariant is reported first
		if r.idle {
			if r.locks != 0 || r.granted.n+r.ext.converting.n+r.ext.waiting.n != 0 || r.stored || r.ext.delay.index >= 0 {
				return fmt.Errorf("idle resource %q is not empty", name)
			}
			idle++
			continue
		}
		live++
		if err := c.checkResource(name, r); err != nil {
			return fmt.Errorf("resource %q: %w", name, err)
		}
		if r.ext.delayUntil != 0 {
			timers++
		}
	}
	if granted, queued := c.countLocks(); granted != c.grantedTotal || queued != c.queuedTotal {
		return fmt.Errorf("%d locks granted and %d queued, counted %d and %d", granted, queued, c.grantedTotal, c.queuedTotal)
	}
	if live != c.live || idle != c.idle.n || idle > idleResourcesMax {
		return fmt.Errorf("%d resources in use and %d idle, counted %d and %d", live, idle, c.live, c.idle.n)
	}
	if err := c.checkTimers(timers); err != nil {
		return err
	}
	if len(c.tombIndex) != len(c.tombstones) {
		return fmt.Errorf("tombstone index has %d entries for %d tombstones", len(c.tombIndex), len(c.tombstones))
	}
	for _, t := range c.tombstones {
		if closed, ok := c.tombIndex[t.session]; !ok || closed != t.closed || t.seq > c.tombSeq {
			return fmt.Errorf("tombstone %s is not indexed", spec.ShortID(t.session))
		}
	}
	return nil
}

func (c *Core) checkResource(name string, r *resource) error {
	if r.name != name {
		return fmt.Errorf("named %q", r.name)
	}
	var granted, wanted [spec.ModeCount]int32
	count := func(ls *lockList, k listKind, f func(*lock) error) error {
		n := 0
		var prev *lock
		for l := ls.head; l != nil; l = l.link(k).next {
			if l.res != r || l.link(k).prev != prev || r.lockOf(l.sess) != l {
				return fmt.Errorf("list %d is broken at %s", k, spec.ShortID(l.sess.id))
			}
			if err := f(l); err != nil {
				return err
			}
			prev = l
			n++
		}
		if n != ls.n || ls.tail != prev {
			return fmt.Errorf("list %d counts %d, holds %d", k, ls.n, n)
		}
		return nil
	}
	var lastSeq, held uint64
	err := count(&r.granted, grantedList, func(l *lock) error {
		if !l.granted || l.grantSeq <= lastSeq {
			return fmt.Errorf("granted list holds %s out of order", spec.ShortID(l.sess.id))
		}
		lastSeq = l.grantSeq
		granted[l.mode]++
		held += uint64(l.permits)
		return nil
	})
	if err != nil {
		return err
	}
	for _, q := range []*lockList{&r.ext.converting, &r.ext.waiting} {
		lastSeq = 0
		isConv := q == &r.ext.converting
		err := count(q, queueList, func(l *lock) error {
			if l.granted != isConv || l.request == 0 || l.q == nil || l.q.timeout.index < 0 || l.q.seq <= lastSeq {
				return fmt.Errorf("queue holds %s wrongly", spec.ShortID(l.sess.id))
			}
			lastSeq = l.q.seq
			wanted[l.want]++
			return nil
		})
		if err != nil {
			return err
		}
	}
	if r.granted.n+r.ext.waiting.n != int(r.locks) || (r.ext.bySession != nil && len(r.ext.bySession) != int(r.locks)) {
		return fmt.Errorf("counts %d locks, lists hold %d, index %d", r.locks, r.granted.n+r.ext.waiting.n, len(r.ext.bySession))
	}
	if held != r.ext.held {
		return fmt.Errorf("semaphore counts %d permits held, its locks %d", r.ext.held, held)
	}
	if granted != r.grantedModes || wanted != r.ext.wantedModes {
		return fmt.Errorf("mode counts %v/%v, lists say %v/%v", r.grantedModes, r.ext.wantedModes, granted, wanted)
	}
	if (r.ext.delayUntil != 0) != (r.ext.delay.index >= 0) || (r.ext.delayUntil != 0 && r.ext.delay.at != r.ext.delayUntil) {
		return fmt.Errorf("delay timer disagrees with delay-until %v", r.ext.delayUntil)
	}
	return nil
}

func (c *Core) checkTimers(want int) error {
	if len(c.timers) != want {
		return fmt.Errorf("timer heap holds %d timers, want %d", len(c.timers), want)
	}
	for i, t := range c.timers {
		if t.index != i {
			return fmt.Errorf("timer %d thinks it is at %d", i, t.index)
		}
		if i > 0 && t.less(c.timers[(i-1)/2]) {
			return fmt.Errorf("timer heap order broken at %d", i)
		}
	}
	return nil
}

func (c *Core) countLocks() (granted, queued int) {
	for _, r := range c.resources {
		// map order: a sum
		granted += r.granted.n
		queued += r.ext.converting.n + r.ext.waiting.n
	}
	return granted, queued
}
