package engine

import (
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// The grant rules, written to mirror spec/model.go function by function;
// read that file for the reasons.

func (c *Core) acquire(s *session, in *spec.Input) (spec.Result, *resource) {
	r := c.resources[in.Resource]
	if r != nil && !r.idle && r.lockOf(s) != nil {
		return spec.Refuse(spec.AlreadyHeld, spec.DetailAlreadyHeld), nil
	}
	if s.locks.n >= c.lim.LocksPerSessionMax {
		return spec.Refuse(spec.LimitExceeded, spec.DetailLocksPerSession(c.lim.LocksPerSessionMax)), nil
	}
	if r == nil || r.idle {
		if c.live >= c.lim.ResourcesMax {
			return spec.Refuse(spec.LimitExceeded, spec.DetailResources(c.lim.ResourcesMax)), nil
		}
		r = c.useResource(r, in.Resource)
	}
	// Strict FIFO: a new request is granted at once only if nothing waits.
	if r.ext.converting.n == 0 && (r.ext.waiting.n == 0 || bugzooOn && planted("fifo-overtake")) && !c.delayed(r) &&
		(r.compatible(in.Mode, nil) || bugzooOn && planted("grant-incompatible")) {
		l := c.newLock(s, r, in.Mode, in.LockDelay)
		c.grantNew(l)
		c.putLock(l)
		return r.grantResult(l), nil // nothing waits, so nothing to settle
	}
	if in.NoQueue {
		return spec.Refuse(spec.WouldBlock, spec.DetailWouldBlock), nil
	}
	if r.ext.converting.n+r.ext.waiting.n >= c.lim.WaitersPerResourceMax {
		return spec.Refuse(spec.LimitExceeded, spec.DetailWaiters(c.lim.WaitersPerResourceMax)), nil
	}
	l := c.newLock(s, r, in.Mode, in.LockDelay)
	c.enqueue(l, &c.extOf(r).waiting, in.Mode, in.Request, c.now.Add(in.WaitTimeout))
	if c.onCycle(s) {
		c.dequeue(l)
		c.freeLockQuietly(l) // never written
		return spec.Refuse(spec.Deadlock, spec.DetailDeadlockQueue), nil
	}
	c.putLock(l)
	return spec.Result{Pending: true}, r
}

func (c *Core) convert(s *session, in *spec.Input) (spec.Result, *resource) {
	l := c.lockOf(s, in.Resource)
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
		tok := l.token
		l.token, l.notified, l.grantedAt = c.nextToken(), -1, c.now
		if bugzooOn && planted("convert-keeps-token") {
			l.token = tok
		}
		c.putLock(l)
		return r.grantResult(l), r
	}
	if in.NoQueue {
		return spec.Refuse(spec.WouldBlock, spec.DetailWouldBlock), nil
	}
	if r.ext.converting.n+r.ext.waiting.n >= c.lim.WaitersPerResourceMax {
		return spec.Refuse(spec.LimitExceeded, spec.DetailWaiters(c.lim.WaitersPerResourceMax)), nil
	}
	c.enqueue(l, &c.extOf(r).converting, in.Mode, in.Request, c.now.Add(in.WaitTimeout))
	if c.onCycle(s) {
		c.dequeue(l)
		return spec.Refuse(spec.Deadlock, spec.DetailDeadlockQueue), nil
	}
	c.putLock(l)
	return spec.Result{Pending: true}, r
}

func (c *Core) release(s *session, in *spec.Input) (spec.Result, *resource) {
	l := c.lockOf(s, in.Resource)
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
	l := c.lockOf(s, in.Resource)
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

// settle grants what the DLM's rules allow after any change to r: the head
// of the conversion queue while it is grantable (queued conversions never
// overtake one another), then, only when no conversion waits, new requests
// from the head of the wait queue while each is compatible. Then holders
// that block a request are told, and an unused resource is dropped.
// Granting a head adds no wait-for edge, so neither loop checks for a
// deadlock.
func (c *Core) settle(r *resource) {
	for r.ext.converting.n > 0 && !c.delayed(r) && r.compatible(r.ext.converting.head.want, r.ext.converting.head) {
		l := r.ext.converting.head
		req, want := l.request, l.want
		c.dequeue(l)
		c.setMode(l, want)
		l.token, l.notified, l.grantedAt = c.nextToken(), -1, c.now
		c.putLock(l)
		c.complete(l.sess, req, r.name, r.grantResult(l))
	}
	for r.ext.converting.n == 0 && r.ext.waiting.n > 0 && !c.delayed(r) && r.compatible(r.ext.waiting.head.mode, nil) {
		l := r.ext.waiting.head
		req := l.request
		c.dequeue(l)
		c.grantNew(l)
		c.putLock(l)
		c.complete(l.sess, req, r.name, r.grantResult(l))
	}
	c.notify(r)
	if r.granted.n == 0 && r.ext.waiting.n == 0 && !c.delayed(r) {
		c.dropResource(r)
	}
}

// notify tells each holder that blocks a queued request of another session
// the highest such mode, once per higher mode since its own mode changed.
func (c *Core) notify(r *resource) {
	if r.ext.converting.n+r.ext.waiting.n == 0 {
		return
	}
	for h := r.granted.head; h != nil; h = h.link(grantedList).next {
		high := int8(-1)
		for m := spec.ModeCount - 1; m >= 0; m-- {
			n := r.ext.wantedModes[m]
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

func (c *Core) delayed(r *resource) bool { return r.ext.delayUntil > c.now }

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
	return spec.Result{Code: spec.OK, Mode: l.mode, Token: l.token, Value: r.ext.value, ValueValid: r.valid}
}

func (c *Core) writeValue(r *resource, v []byte) {
	c.extOf(r).value, r.valid = spec.CloneValue(v), true
	c.putResource(r)
}

// ---- structure: the only functions that touch lists, counts and timers ----

// idleResourcesMax bounds the unused resources kept for reuse.
const idleResourcesMax = 1024

// useResource puts the resource named name in use: idle (r) or new (r nil).
func (c *Core) useResource(r *resource, name string) *resource {
	c.live++
	if r != nil {
		c.idle.remove(r)
		r.idle = false
		return r
	}
	r = reuse(&c.freeRes)
	r.name, r.valid, r.ext = name, true, &noExt
	c.resources[name] = r
	return r
}

// dropResource takes an unused resource out of use: for the state it is
// gone (its value block with it); the struct stays idle in the map for a
// while in case the name is locked again.
func (c *Core) dropResource(r *resource) {
	assert(c.live > 0 && !r.idle && r.locks == 0, "a resource in use is dropped, with no lock")
	if r.stored {
		c.deleteResource(r)
	}
	c.timers.stop(&r.ext.delay)
	x := c.extOf(r) // for the idle list's links
	x.value, x.delayUntil, r.valid = nil, 0, true
	r.idle = true
	c.live--
	c.idle.pushBack(r)
	if c.idle.n > idleResourcesMax {
		old := c.idle.head
		c.idle.remove(old)
		delete(c.resources, old.name)
		c.freeExt(old)
		*old = resource{}
		c.freeRes = append(c.freeRes, old)
	}
}

func (c *Core) newLock(s *session, r *resource, mode spec.Mode, lockDelay time.Duration) *lock {
	l := reuse(&c.freeLocks)
	l.sess, l.res, l.mode, l.want, l.lockDelay, l.notified = s, r, mode, mode, lockDelay, -1
	s.locks.pushBack(sessionList, l)
	r.locks++
	if r.ext.bySession == nil && r.locks > lockScanMax {
		c.extOf(r)
		r.index()
	}
	if r.ext.bySession != nil {
		r.ext.bySession[s] = l
	}
	return l
}

// freeLock forgets l, which must be on no list, and deletes its record.
func (c *Core) freeLock(l *lock) {
	c.deleteLock(l)
	c.freeLockQuietly(l)
}

func (c *Core) freeLockQuietly(l *lock) {
	r := l.res
	assert(!l.granted && l.request == 0 && r.locks > 0, "a freed lock is neither granted nor queued")
	l.sess.locks.remove(sessionList, l)
	r.locks--
	if r.ext.bySession != nil {
		delete(r.ext.bySession, l.sess)
	}
	*l = lock{}
	c.freeLocks = append(c.freeLocks, l)
}

func (c *Core) grantNew(l *lock) {
	r := l.res
	assert(!l.granted && l.request == 0, "a lock is granted twice, or while queued")
	l.granted = true
	l.token, l.grantedAt = c.nextToken(), c.now
	l.grantSeq = c.nextSeq()
	r.granted.pushBack(grantedList, l)
	r.grantedModes[l.mode]++
	c.grantedTotal++
}

func (c *Core) ungrant(l *lock) {
	r := l.res
	assert(l.granted && r.grantedModes[l.mode] > 0 && c.grantedTotal > 0, "an ungranted lock is ungranted")
	r.granted.remove(grantedList, l)
	r.grantedModes[l.mode]--
	l.granted = false
	c.grantedTotal--
}

// setMode changes the granted mode of l.
func (c *Core) setMode(l *lock, m spec.Mode) {
	assert(l.granted && l.res.grantedModes[l.mode] > 0 && (l.link(grantedList).prev != nil || l.res.granted.head == l),
		"a lock changes mode while not on its resource's granted list")
	l.res.grantedModes[l.mode]--
	l.mode, l.want = m, m
	l.res.grantedModes[m]++
}

// enqueue queues a request of l for mode on q (the wait queue for a new
// lock, the conversion queue for a granted one).
func (c *Core) enqueue(l *lock, q *lockList, want spec.Mode, req spec.RequestID, deadline spec.Time) {
	l.want, l.request = want, req
	part := c.queue(l)
	part.seq, part.at = c.nextSeq(), c.now
	q.pushBack(queueList, l)
	l.sess.pending.pushBack(pendingList, l)
	l.res.ext.wantedModes[want]++
	c.queuedTotal++
	c.timers.set(&l.q.timeout, deadline)
	assert(req != 0 && l.q.timeout.index >= 0, "a queued request has an id and a timer")
}

// dequeue takes l's queued request off its queue.
func (c *Core) dequeue(l *lock) {
	r := l.res
	assert(l.request != 0 && l.q != nil && l.q.timeout.index >= 0 && r.ext.wantedModes[l.want] > 0 && c.queuedTotal > 0,
		"a dequeued request was queued, with a timer")
	if l.granted {
		r.ext.converting.remove(queueList, l)
	} else {
		r.ext.waiting.remove(queueList, l)
	}
	l.sess.pending.remove(pendingList, l)
	r.ext.wantedModes[l.want]--
	c.queuedTotal--
	c.timers.stop(&l.q.timeout)
	*l.q = queuedPart{}
	c.freeQueued = append(c.freeQueued, l.q)
	l.request, l.want, l.q = 0, l.mode, nil
}

// queue gives l, which has none, the part a queued request needs.
func (c *Core) queue(l *lock) *queuedPart {
	assert(l.q == nil, "a lock queues twice")
	q := reuse(&c.freeQueued)
	q.timeout = timer{kind: timerTimeout, resource: l.res.name, session: l.sess.id, lock: l, index: -1}
	l.q = q
	return q
}

// extOf returns r's own extension, giving it one if it has none, before a
// write to it (noExt is never written).
func (c *Core) extOf(r *resource) *resourceExt {
	if r.ext != &noExt {
		return r.ext
	}
	x := reuse(&c.freeExts)
	x.delay = timer{kind: timerDelayEnd, resource: r.name, res: r, index: -1}
	r.ext = x
	return x
}

// freeExt returns r's extension, empty now, to the pool (r leaves the
// idle list: no queue, no lock-delay).
func (c *Core) freeExt(r *resource) {
	x := r.ext
	if x == &noExt {
		return
	}
	assert(x.converting.n == 0 && x.waiting.n == 0 && x.delay.index < 0 && x.wantedModes == [spec.ModeCount]int32{},
		"a resource's extension is freed while in use")
	*x = resourceExt{}
	c.freeExts = append(c.freeExts, x)
	r.ext = &noExt
}

// lockScanMax is how many locks a resource may have before it keeps an
// index of them by session: below it a scan of its lists is cheaper than a
// map, above it a map keeps lookups O(1).
const lockScanMax = 8

// lockOf returns the lock of s on r, or nil.
func (r *resource) lockOf(s *session) *lock {
	if r.ext.bySession != nil {
		return r.ext.bySession[s]
	}
	for l := r.granted.head; l != nil; l = l.link(grantedList).next {
		if l.sess == s {
			return l
		}
	}
	for l := r.ext.waiting.head; l != nil; l = l.link(queueList).next {
		if l.sess == s {
			return l
		}
	}
	return nil
}

// index builds r.ext.bySession from r's lists (newLock adds the lock it is
// making, which is on none yet).
func (r *resource) index() {
	assert(r.ext != &noExt, "an index is built in noExt")
	r.ext.bySession = make(map[*session]*lock, 2*lockScanMax)
	for l := r.granted.head; l != nil; l = l.link(grantedList).next {
		r.ext.bySession[l.sess] = l
	}
	for l := r.ext.waiting.head; l != nil; l = l.link(queueList).next {
		r.ext.bySession[l.sess] = l
	}
}

// resourceList is the intrusive list of idle resources.
type resourceList struct {
	head, tail *resource
	n          int
}

func (ls *resourceList) pushBack(r *resource) {
	x := r.ext
	assert(x != &noExt, "an idle resource has no extension of its own")
	x.idlePrev, x.idleNext = ls.tail, nil
	if ls.tail != nil {
		ls.tail.ext.idleNext = r
	} else {
		ls.head = r
	}
	ls.tail = r
	ls.n++
}

func (ls *resourceList) remove(r *resource) {
	x := r.ext
	if x.idlePrev != nil {
		x.idlePrev.ext.idleNext = x.idleNext
	} else {
		ls.head = x.idleNext
	}
	if x.idleNext != nil {
		x.idleNext.ext.idlePrev = x.idlePrev
	} else {
		ls.tail = x.idlePrev
	}
	x.idlePrev, x.idleNext = nil, nil
	ls.n--
}

// reuse takes an item off a free list (its fields are the caller's to
// set), or makes a new one.
func reuse[T any](free *[]*T) *T {
	if n := len(*free); n > 0 {
		x := (*free)[n-1]
		*free = (*free)[:n-1]
		return x
	}
	return new(T)
}
