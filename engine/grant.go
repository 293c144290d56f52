package engine

import (
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// The grant rules, written to mirror spec/model.go function by function;
// read that file for the reasons.

func (c *Core) acquire(s *session, in *spec.Input) (spec.Result, *resource) {
	if _, ok := s.locks[in.Resource]; ok {
		return spec.Refuse(spec.AlreadyHeld, spec.DetailAlreadyHeld), nil
	}
	if len(s.locks) >= c.lim.LocksPerSessionMax {
		return spec.Refuse(spec.LimitExceeded, spec.DetailLocksPerSession(c.lim.LocksPerSessionMax)), nil
	}
	r := c.resources[in.Resource]
	if r == nil {
		if len(c.resources) >= c.lim.ResourcesMax {
			return spec.Refuse(spec.LimitExceeded, spec.DetailResources(c.lim.ResourcesMax)), nil
		}
		r = c.newResource(in.Resource)
	}
	// Strict FIFO: a new request is granted at once only if nothing waits.
	if r.converting.n == 0 && r.waiting.n == 0 && !c.delayed(r) && r.compatible(in.Mode, nil) {
		l := c.newLock(s, r, in.Mode, in.LockDelay)
		c.grantNew(l)
		c.putLock(l)
		return r.grantResult(l), nil // nothing waits, so nothing to settle
	}
	if in.NoQueue {
		return spec.Refuse(spec.WouldBlock, spec.DetailWouldBlock), nil
	}
	if r.converting.n+r.waiting.n >= c.lim.WaitersPerResourceMax {
		return spec.Refuse(spec.LimitExceeded, spec.DetailWaiters(c.lim.WaitersPerResourceMax)), nil
	}
	l := c.newLock(s, r, in.Mode, in.LockDelay)
	c.enqueue(l, &r.waiting, in.Mode, in.Request, c.now.Add(in.WaitTimeout))
	if c.onCycle(s) {
		c.dequeue(l)
		c.freeLockQuietly(l) // never written
		return spec.Refuse(spec.Deadlock, spec.DetailDeadlockQueue), nil
	}
	c.putLock(l)
	return spec.Result{Pending: true}, r
}

func (c *Core) convert(s *session, in *spec.Input) (spec.Result, *resource) {
	l := s.locks[in.Resource]
	if l == nil || !l.granted {
		return spec.Refuse(spec.NotHeld, spec.DetailNotHeld), nil
	}
	if l.request != 0 {
		return spec.Refuse(spec.AlreadyHeld, spec.DetailConverting), nil
	}
	r := l.res
	down := spec.Weaker(in.Mode, l.mode)
	if in.WriteValue && (!l.mode.WritesValue() || !down) {
		return spec.Refuse(spec.InvalidArgument, spec.DetailValueWrite), nil
	}
	if down { // always grantable in place; keeps its token
		if in.Mode != l.mode {
			c.setMode(l, in.Mode)
			l.notified = -1
			c.putLock(l)
		}
		if in.WriteValue {
			c.writeValue(r, in.Value)
		}
		return r.grantResult(l), r
	}
	if !c.delayed(r) && r.compatible(in.Mode, l) {
		old := l.mode
		c.setMode(l, in.Mode)
		if c.onCycle(s) {
			c.setMode(l, old)
			return spec.Refuse(spec.Deadlock, spec.DetailDeadlockGrant), nil
		}
		l.token, l.notified = c.nextToken(), -1
		c.putLock(l)
		return r.grantResult(l), r
	}
	if in.NoQueue {
		return spec.Refuse(spec.WouldBlock, spec.DetailWouldBlock), nil
	}
	if r.converting.n+r.waiting.n >= c.lim.WaitersPerResourceMax {
		return spec.Refuse(spec.LimitExceeded, spec.DetailWaiters(c.lim.WaitersPerResourceMax)), nil
	}
	c.enqueue(l, &r.converting, in.Mode, in.Request, c.now.Add(in.WaitTimeout))
	if c.onCycle(s) {
		c.dequeue(l)
		return spec.Refuse(spec.Deadlock, spec.DetailDeadlockQueue), nil
	}
	c.putLock(l)
	return spec.Result{Pending: true}, r
}

func (c *Core) release(s *session, in *spec.Input) (spec.Result, *resource) {
	l := s.locks[in.Resource]
	if l == nil || !l.granted {
		return spec.Refuse(spec.NotHeld, spec.DetailNotHeld), nil
	}
	if in.WriteValue && !l.mode.WritesValue() {
		return spec.Refuse(spec.InvalidArgument, spec.DetailValueWrite), nil
	}
	r := l.res
	if l.request != 0 {
		c.unqueue(l, spec.Refuse(spec.Cancelled, spec.DetailReleased))
	}
	c.ungrant(l)
	c.freeLock(l)
	if in.WriteValue {
		c.writeValue(r, in.Value)
	}
	return spec.Result{}, r
}

func (c *Core) cancel(s *session, in *spec.Input) (spec.Result, *resource) {
	l := s.locks[in.Resource]
	if l == nil || l.request == 0 {
		return spec.Refuse(spec.NotHeld, spec.DetailNotQueued), nil
	}
	r := l.res
	c.unqueue(l, spec.Refuse(spec.Cancelled, spec.DetailCancelled))
	return spec.Result{}, r
}

// unqueue ends l's queued request with res (Cancelled, Timeout): a waiting
// lock goes away, a converting lock keeps its granted mode.
func (c *Core) unqueue(l *lock, res spec.Result) {
	req, s, name := l.request, l.sess, l.res.name
	c.dequeue(l)
	if l.granted {
		c.putLock(l)
	} else {
		c.freeLock(l)
	}
	c.complete(s, req, name, res)
}

// settle grants what the DLM's rules allow after any change to r: queued
// conversions first (the first grantable in queue order, again and again),
// then, only when no conversion waits, new requests from the head of the
// wait queue while each is compatible. Then holders that block a request
// are told, and an unused resource is dropped.
func (c *Core) settle(r *resource) {
	for r.converting.n > 0 && !c.delayed(r) {
		l := r.converting.head
		for l != nil && !r.compatible(l.want, l) {
			l = l.links[queueList].next
		}
		if l == nil {
			break
		}
		req, want, old := l.request, l.want, l.mode
		c.dequeue(l)
		c.setMode(l, want)
		if c.onCycle(l.sess) {
			c.setMode(l, old)
			c.putLock(l)
			c.complete(l.sess, req, r.name, spec.Refuse(spec.Deadlock, spec.DetailDeadlockGrant))
			continue
		}
		l.token, l.notified = c.nextToken(), -1
		c.putLock(l)
		c.complete(l.sess, req, r.name, r.grantResult(l))
	}
	for r.converting.n == 0 && r.waiting.n > 0 && !c.delayed(r) && r.compatible(r.waiting.head.mode, nil) {
		l := r.waiting.head
		req := l.request
		c.dequeue(l)
		c.grantNew(l)
		c.putLock(l)
		c.complete(l.sess, req, r.name, r.grantResult(l))
	}
	c.notify(r)
	if r.granted.n == 0 && r.waiting.n == 0 && !c.delayed(r) {
		c.dropResource(r)
	}
}

// notify tells each holder that blocks a queued request of another session
// the highest such mode, once per higher mode since its own mode changed.
func (c *Core) notify(r *resource) {
	if r.converting.n+r.waiting.n == 0 {
		return
	}
	for h := r.granted.head; h != nil; h = h.links[grantedList].next {
		high := int8(-1)
		for m := spec.ModeCount - 1; m >= 0; m-- {
			n := r.wantedModes[m]
			if h.request != 0 && h.want == spec.Mode(m) {
				n-- // its own conversion
			}
			if n > 0 && !spec.Compatible(h.mode, spec.Mode(m)) {
				high = int8(m)
				break
			}
		}
		if high > h.notified {
			h.notified = high
			c.putLock(h)
			c.emit(spec.Event{Kind: spec.Blocking, Session: h.sess.id, Resource: r.name, Mode: spec.Mode(high)})
		}
	}
}

func (c *Core) delayed(r *resource) bool { return r.delayUntil > c.now }

// compatible reports whether mode is compatible with the granted mode of
// every lock on r other than self: O(number of modes).
func (r *resource) compatible(mode spec.Mode, self *lock) bool {
	for m := spec.Mode(0); m < spec.ModeCount; m++ {
		n := r.grantedModes[m]
		if self != nil && self.granted && self.mode == m {
			n--
		}
		if n > 0 && !spec.Compatible(m, mode) {
			return false
		}
	}
	return true
}

func (r *resource) grantResult(l *lock) spec.Result {
	return spec.Result{Code: spec.OK, Mode: l.mode, Token: l.token, Value: r.value, ValueValid: r.valid}
}

func (c *Core) writeValue(r *resource, v []byte) {
	r.value, r.valid = spec.CloneValue(v), true
	c.putResource(r)
}

// ---- structure: the only functions that touch lists, counts and timers ----

func (c *Core) newResource(name string) *resource {
	var r *resource
	if n := len(c.freeRes); n > 0 {
		r = c.freeRes[n-1]
		c.freeRes = c.freeRes[:n-1]
	} else {
		r = &resource{}
	}
	r.name, r.valid = name, true
	r.delay = timer{kind: timerDelayEnd, resource: name, res: r, index: -1}
	c.resources[name] = r
	return r
}

func (c *Core) dropResource(r *resource) {
	if r.stored {
		c.writes.deleteResource(r.name)
	}
	c.timers.stop(&r.delay)
	delete(c.resources, r.name)
	*r = resource{}
	c.freeRes = append(c.freeRes, r)
}

func (c *Core) newLock(s *session, r *resource, mode spec.Mode, lockDelay time.Duration) *lock {
	var l *lock
	if n := len(c.freeLocks); n > 0 {
		l = c.freeLocks[n-1]
		c.freeLocks = c.freeLocks[:n-1]
	} else {
		l = &lock{}
	}
	l.sess, l.res, l.mode, l.want, l.lockDelay, l.notified = s, r, mode, mode, lockDelay, -1
	l.timeout = timer{kind: timerTimeout, resource: r.name, session: s.id, lock: l, index: -1}
	s.locks[r.name] = l
	return l
}

// freeLock forgets l, which must be on no list, and deletes its record.
func (c *Core) freeLock(l *lock) {
	c.writes.deleteLock(l.res.name, l.sess.id)
	c.freeLockQuietly(l)
}

func (c *Core) freeLockQuietly(l *lock) {
	delete(l.sess.locks, l.res.name)
	*l = lock{}
	c.freeLocks = append(c.freeLocks, l)
}

func (c *Core) grantNew(l *lock) {
	r := l.res
	l.granted = true
	l.token = c.nextToken()
	l.grantSeq = c.nextSeq()
	r.granted.pushBack(grantedList, l)
	r.grantedModes[l.mode]++
}

func (c *Core) ungrant(l *lock) {
	r := l.res
	r.granted.remove(grantedList, l)
	r.grantedModes[l.mode]--
	l.granted = false
}

// setMode changes the granted mode of l.
func (c *Core) setMode(l *lock, m spec.Mode) {
	l.res.grantedModes[l.mode]--
	l.mode, l.want = m, m
	l.res.grantedModes[m]++
}

// enqueue queues a request of l for mode on q (the wait queue for a new
// lock, the conversion queue for a granted one).
func (c *Core) enqueue(l *lock, q *lockList, want spec.Mode, req spec.RequestID, deadline spec.Time) {
	l.want, l.request, l.queueSeq = want, req, c.nextSeq()
	q.pushBack(queueList, l)
	l.sess.pending.pushBack(pendingList, l)
	l.res.wantedModes[want]++
	c.timers.set(&l.timeout, deadline)
}

// dequeue takes l's queued request off its queue.
func (c *Core) dequeue(l *lock) {
	r := l.res
	if l.granted {
		r.converting.remove(queueList, l)
	} else {
		r.waiting.remove(queueList, l)
	}
	l.sess.pending.remove(pendingList, l)
	r.wantedModes[l.want]--
	c.timers.stop(&l.timeout)
	l.request, l.want, l.queueSeq = 0, l.mode, 0
}
