package spec

import (
	"bytes"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Model is the reference lock service: a small state machine written to be
// obviously correct rather than fast. Plain maps and slices, linear scans,
// the whole wait-for graph rebuilt whenever it is consulted. The engine must
// produce exactly the same replies, events and states (tests check it step
// by step); when they disagree, this file is the one that says what Bouncer
// means.
//
// Step(now, input) and Tick(now) are the transitions of a running node.
// Each first moves the model's clock to now (never backwards) and fires
// every timer due by then, earliest first; Step then applies the input.
// Recover (a restart) and Failover (a new leader of a replicated group)
// change the durable state's clock and deadlines only, and fire nothing.
type Model struct {
	lim        Limits
	now        Time
	tokenMax   Token
	sessions   map[SessionID]*mSession
	resources  map[string]*mResource
	tombstones []Tombstone
	events     []Event // emitted by the current transition
	bugs       bugs    // planted bugs (bugs.go); zero except in the checker's own tests
}

type mSession struct {
	id       SessionID
	label    string
	ttl      time.Duration
	deadline Time
	acked    RequestID
	replies  map[RequestID]Result
	digests  map[RequestID]uint64 // Input.Digest of each request in replies
}

type mResource struct {
	name       string
	value      []byte // never mutated in place: a write replaces the slice
	valid      bool
	delayUntil Time
	limit      uint32   // a semaphore's permits; 0: a lock resource
	granted    []*mLock // every lock with a granted mode, in order of first grant
	converting []*mLock // the conversion queue (these are also in granted)
	waiting    []*mLock // the wait queue of new requests
}

type mLock struct {
	session   SessionID
	label     string // the session's
	granted   bool
	mode      Mode // granted mode, or the requested mode of a waiting lock
	want      Mode // mode a queued conversion waits for; else == mode
	permits   uint32
	token     Token
	request   RequestID // queued request, 0 if none
	deadline  Time      // when the queued request times out
	lockDelay time.Duration
	notified  int8 // highest mode told in a blocking notification; -1 none
	grantedAt Time // the instant of the grant or up-conversion that gave the token
	queuedAt  Time // when the queued request was queued, 0 if none
}

// NewModel returns an empty lock service with the given limits, which must
// be valid.
func NewModel(lim Limits) *Model {
	if err := lim.Validate(); err != nil {
		panic(err)
	}
	return &Model{lim: lim, sessions: map[SessionID]*mSession{}, resources: map[string]*mResource{}}
}

// Limits returns the model's limits.
func (m *Model) Limits() Limits { return m.lim }

// Now returns the model's clock.
func (m *Model) Now() Time { return m.now }

// Step applies one input at now: the reply to the input, and the events of
// the timers that fired and of the input, in order.
func (m *Model) Step(now Time, in Input) (Result, []Event) {
	m.events = nil
	m.advance(now)
	r := m.apply(&in)
	return r, m.events
}

// Tick moves the clock to now and fires the timers due by then.
func (m *Model) Tick(now Time) []Event {
	m.events = nil
	m.advance(now)
	return m.events
}

// Recover is what a restart does to the durable state: the clock becomes
// now, unless it was later already (it never goes back), since the node
// cannot know how long it was down; and every session gets a full TTL from
// then, a grace period for its client to reconnect. Wait
// deadlines and lock-delays are absolute instants and stay as they were;
// those already due fire at the next Tick or Step, which the caller makes at
// once (the invariants hold again after it).
func (m *Model) Recover(now Time) {
	m.now = max(m.now, now) // the clock never goes back
	for _, s := range m.sessions {
		// map order: each session is updated alone.
		s.deadline = m.now.Add(s.ttl)
	}
	if m.bugs.has(bugTokenMaxFromLocks) {
		m.tokenMax = m.highestHeldToken()
	}
}

// Failover is what a change of leader does in a replicated group: the new
// leader cannot know what leases the old one promised, so, like Chubby's
// fail-over, it gives every session a grace before anything can expire. The
// clock becomes now, unless it was later already (it never goes back); then
// every live session's deadline becomes the clock plus grace, unless it was
// later already: a failover never shortens a lease. The caller passes a
// grace at least as long as any lease a client may still believe in (a
// client counts its lease from the send time of its last answered
// keepalive, which came before the failover). Nothing else changes: wait
// deadlines and lock-delays keep their instants, and the timers that are
// due fire at the next Tick or Step, which the caller makes at once.
//
// It is the cluster's Recover: a restart forgets the deadlines and gives a
// full TTL from then, while a failover keeps the replicated state, deadlines
// included, and only pushes them out.
func (m *Model) Failover(now Time, grace time.Duration) {
	m.now = max(m.now, now) // the clock never goes back
	until := m.now.Add(grace)
	if m.bugs.has(bugFailoverNoGrace) {
		return
	}
	for _, s := range m.sessions {
		// map order: each session is updated alone.
		s.deadline = max(s.deadline, until)
	}
}

// SessionTTLMax returns the longest TTL of a live session (0: none): the
// grace a failover gives, the longest lease a client may count on.
func (m *Model) SessionTTLMax() time.Duration {
	var ttl time.Duration
	for _, s := range m.sessions {
		// map order: a maximum does not depend on it.
		ttl = max(ttl, s.ttl)
	}
	return ttl
}

// Clone returns an independent copy of the model.
func (m *Model) Clone() *Model {
	c := &Model{lim: m.lim, now: m.now, tokenMax: m.tokenMax, bugs: m.bugs,
		sessions: map[SessionID]*mSession{}, resources: map[string]*mResource{},
		tombstones: slices.Clone(m.tombstones)}
	for id, s := range m.sessions {
		// map order: copying into a map.
		cs := *s
		cs.replies, cs.digests = maps.Clone(s.replies), maps.Clone(s.digests)
		c.sessions[id] = &cs
	}
	for name, r := range m.resources {
		// map order: copying into a map.
		cr := *r
		copyLocks := func(ls []*mLock) []*mLock {
			out := make([]*mLock, len(ls))
			for i, l := range ls {
				cl := *l
				out[i] = &cl
			}
			return out
		}
		cr.granted = copyLocks(r.granted)
		cr.waiting = copyLocks(r.waiting)
		cr.converting = nil
		for _, l := range r.converting {
			cr.converting = append(cr.converting, cr.lockOf(l.session))
		}
		c.resources[name] = &cr
	}
	return c
}

// ---- time ----

// A timer is something that happens at an instant: a session's lease runs
// out, a queued request's wait times out, a resource's lock-delay ends.
// Timers due together fire in a fixed order: by instant, then kind, then
// resource name and session id, so a run is a function of its inputs.
type timer struct {
	at       Time
	kind     timerKind
	resource string
	session  SessionID
}

type timerKind uint8

const (
	timerExpiry   timerKind = iota // session lease
	timerTimeout                   // queued request's wait timeout
	timerDelayEnd                  // resource lock-delay
)

func (a timer) less(b timer) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	if c := strings.Compare(a.resource, b.resource); c != 0 {
		return c < 0
	}
	return bytes.Compare(a.session[:], b.session[:]) < 0
}

// nextTimer returns the earliest timer by timer.less, a total order (so the
// maps' order does not matter).
func (m *Model) nextTimer() (timer, bool) {
	var first timer
	ok := false
	take := func(t timer) {
		if !ok || t.less(first) {
			first, ok = t, true
		}
	}
	for _, s := range m.sessions {
		// map order: the earliest by timer.less, a total order.
		take(timer{at: s.deadline, kind: timerExpiry, session: s.id})
	}
	for _, r := range m.resources {
		// map order: the earliest by timer.less, a total order.
		if r.delayUntil != 0 {
			take(timer{at: r.delayUntil, kind: timerDelayEnd, resource: r.name})
		}
		for _, l := range r.waiting {
			take(timer{at: l.deadline, kind: timerTimeout, resource: r.name, session: l.session})
		}
		for _, l := range r.converting {
			take(timer{at: l.deadline, kind: timerTimeout, resource: r.name, session: l.session})
		}
	}
	return first, ok
}

// NextDeadline returns the instant of the earliest timer, if any.
func (m *Model) NextDeadline() (Time, bool) {
	t, ok := m.nextTimer()
	return t.at, ok
}

func (m *Model) advance(now Time) {
	if now > m.now {
		m.now = now
	}
	for {
		t, ok := m.nextTimer()
		if !ok || t.at > m.now {
			return
		}
		switch t.kind {
		case timerExpiry:
			m.endSession(m.sessions[t.session], false)
		case timerTimeout:
			r := m.resources[t.resource]
			m.unqueue(r, r.lockOf(t.session), Refuse(Timeout, DetailTimeout))
			m.settle(r)
		case timerDelayEnd:
			r := m.resources[t.resource]
			r.delayUntil = 0
			m.settle(r)
		}
	}
}

// ---- inputs ----

func (m *Model) apply(in *Input) Result {
	if r, ok := Validate(in, &m.lim); !ok {
		return r
	}
	switch in.Op {
	case OpOpen:
		return m.open(in)
	case OpKeepAlive:
		s, r := m.session(in.Session)
		if s != nil {
			s.deadline = m.now.Add(s.ttl)
		}
		return r
	case OpClose:
		return m.close(in)
	}
	s, r := m.session(in.Session)
	if s == nil {
		return r
	}
	// Exactly once: a retry returns the recorded outcome; another request
	// reusing the id is refused, and changes nothing.
	if r, ok := s.replies[in.Request]; ok {
		if s.digests[in.Request] != in.Digest() {
			return Refuse(InvalidArgument, DetailRequestReused(in.Request))
		}
		return r
	}
	if in.Request <= s.acked {
		return Refuse(InvalidArgument, DetailAcknowledged(in.Request, s.acked))
	}
	acked := max(s.acked, in.Acked)
	kept := 0
	for id, r := range s.replies {
		// map order: counting.
		if id > acked || r.Pending {
			kept++
		}
	}
	if kept >= m.lim.RepliesPerSessionMax {
		return Refuse(LimitExceeded, DetailReplies(m.lim.RepliesPerSessionMax))
	}
	s.acked = acked
	for id, r := range s.replies {
		// map order: deleting.
		if id <= acked && !r.Pending {
			delete(s.replies, id)
			delete(s.digests, id)
		}
	}
	var res *mResource
	switch in.Op {
	case OpAcquire:
		r, res = m.acquire(s, in)
	case OpConvert:
		r, res = m.convert(s, in)
	case OpRelease:
		r, res = m.release(s, in)
	case OpCancel:
		r, res = m.cancel(s, in)
	}
	s.replies[in.Request], s.digests[in.Request] = r, in.Digest()
	if res != nil {
		m.settle(res)
	}
	return r
}

// session returns the live session id names, or nil and the refusal.
func (m *Model) session(id SessionID) (*mSession, Result) {
	if s, ok := m.sessions[id]; ok {
		return s, Result{}
	}
	if closed, ok := m.tombstone(id); ok {
		if closed {
			return nil, Refuse(UnknownSession, DetailSessionClosed)
		}
		return nil, Refuse(SessionExpired, DetailSessionExpired)
	}
	return nil, Refuse(UnknownSession, DetailUnknownSession)
}

// tombstone reports whether id names an ended session, and whether it was
// closed (else it expired).
func (m *Model) tombstone(id SessionID) (closed, ok bool) {
	for _, t := range m.tombstones {
		if t.Session == id {
			return t.Closed, true
		}
	}
	return false, false
}

func (m *Model) open(in *Input) Result {
	if _, ok := m.sessions[in.Session]; ok {
		return Result{} // a retry of the open that created it
	}
	if _, ok := m.tombstone(in.Session); ok {
		_, r := m.session(in.Session)
		return r // ended sessions stay ended
	}
	if len(m.sessions) >= m.lim.SessionsMax {
		return Refuse(LimitExceeded, DetailSessions(m.lim.SessionsMax))
	}
	m.sessions[in.Session] = &mSession{id: in.Session, label: in.Label, ttl: in.TTL,
		deadline: m.now.Add(in.TTL), replies: map[RequestID]Result{}, digests: map[RequestID]uint64{}}
	return Result{}
}

func (m *Model) close(in *Input) Result {
	s, r := m.session(in.Session)
	if s == nil {
		if closed, _ := m.tombstone(in.Session); closed {
			return Result{} // a retry of the close
		}
		return r
	}
	m.endSession(s, true)
	return Result{}
}

func (m *Model) acquire(s *mSession, in *Input) (Result, *mResource) {
	r := m.resources[in.Resource]
	if r != nil && r.lockOf(s.id) != nil {
		return Refuse(AlreadyHeld, DetailAlreadyHeld), nil
	}
	if r != nil && r.limit != in.Limit {
		if r.limit == 0 {
			return Refuse(InvalidArgument, DetailSemaphoreLock), nil
		}
		return Refuse(InvalidArgument, DetailSemaphore(r.limit)), nil
	}
	if m.locksOf(s.id) >= m.lim.LocksPerSessionMax {
		return Refuse(LimitExceeded, DetailLocksPerSession(m.lim.LocksPerSessionMax)), nil
	}
	if r == nil {
		if len(m.resources) >= m.lim.ResourcesMax {
			return Refuse(LimitExceeded, DetailResources(m.lim.ResourcesMax)), nil
		}
		r = &mResource{name: in.Resource, valid: true, limit: in.Limit}
		m.resources[in.Resource] = r
	}
	l := &mLock{session: s.id, label: s.label, mode: in.Mode, want: in.Mode, permits: in.Permits, lockDelay: in.LockDelay, notified: -1}
	// Strict FIFO: a new request is granted at once only if nothing waits.
	if (len(r.converting) == 0 || m.bugs.has(bugNewIgnoreConversions)) &&
		(len(r.waiting) == 0 || m.bugs.has(bugOvertake)) && !m.delayed(r) && m.fits(r, l) {
		l.granted, l.grantedAt = true, m.now
		l.token = m.nextToken()
		r.granted = append(r.granted, l)
		return r.grantResult(l), r
	}
	if in.NoQueue {
		return Refuse(WouldBlock, DetailWouldBlock), nil
	}
	if len(r.converting)+len(r.waiting) >= m.lim.WaitersPerResourceMax {
		return Refuse(LimitExceeded, DetailWaiters(m.lim.WaitersPerResourceMax)), nil
	}
	l.request, l.queuedAt = in.Request, m.now
	l.deadline = m.now.Add(in.WaitTimeout)
	r.waiting = append(r.waiting, l)
	if !m.bugs.has(bugNoDeadlockCheck) && m.onCycle(s.id) {
		r.waiting = r.waiting[:len(r.waiting)-1]
		return Refuse(Deadlock, DetailDeadlockQueue), nil
	}
	return Result{Pending: true}, r
}

func (m *Model) convert(s *mSession, in *Input) (Result, *mResource) {
	r := m.resources[in.Resource]
	var l *mLock
	if r != nil {
		l = r.lockOf(s.id)
	}
	if l == nil || !l.granted {
		return Refuse(NotHeld, DetailNotHeld), nil
	}
	if l.request != 0 {
		return Refuse(AlreadyHeld, DetailConverting), nil
	}
	if r.limit != 0 {
		return Refuse(InvalidArgument, DetailConvertPermits), nil
	}
	down := Weaker(in.Mode, l.mode)
	if in.WriteValue && (!l.mode.WritesValue() || !down) {
		return Refuse(InvalidArgument, DetailValueWrite), nil
	}
	if down { // always grantable in place; keeps its token
		if in.Mode != l.mode {
			l.mode, l.want, l.notified = in.Mode, in.Mode, -1
		}
		if in.WriteValue {
			r.value, r.valid = CloneValue(in.Value), true
		}
		return r.grantResult(l), r
	}
	// Up (or sideways, PR<->CW): in place at once if compatible with every
	// other granted mode, overtaking queued conversions (as the DLM does).
	if !m.delayed(r) && (r.compatible(in.Mode, l) || m.bugs.has(bugConvertIgnoresHolders)) {
		old := l.mode
		l.mode, l.want = in.Mode, in.Mode
		if m.onCycle(s.id) {
			l.mode, l.want = old, old
			return Refuse(Deadlock, DetailDeadlockGrant), nil
		}
		if !m.bugs.has(bugUpConvertKeepsToken) {
			l.token, l.grantedAt = m.nextToken(), m.now
		}
		l.notified = -1
		return r.grantResult(l), r
	}
	if in.NoQueue {
		return Refuse(WouldBlock, DetailWouldBlock), nil
	}
	if len(r.converting)+len(r.waiting) >= m.lim.WaitersPerResourceMax {
		return Refuse(LimitExceeded, DetailWaiters(m.lim.WaitersPerResourceMax)), nil
	}
	l.want, l.request, l.deadline, l.queuedAt = in.Mode, in.Request, m.now.Add(in.WaitTimeout), m.now
	r.converting = append(r.converting, l)
	if m.onCycle(s.id) {
		r.converting = r.converting[:len(r.converting)-1]
		l.want, l.request, l.deadline, l.queuedAt = l.mode, 0, 0, 0
		return Refuse(Deadlock, DetailDeadlockQueue), nil
	}
	return Result{Pending: true}, r
}

func (m *Model) release(s *mSession, in *Input) (Result, *mResource) {
	r := m.resources[in.Resource]
	var l *mLock
	if r != nil {
		l = r.lockOf(s.id)
	}
	if l == nil || !l.granted {
		return Refuse(NotHeld, DetailNotHeld), nil
	}
	if in.WriteValue && !l.mode.WritesValue() {
		return Refuse(InvalidArgument, DetailValueWrite), nil
	}
	if l.request != 0 {
		m.unqueue(r, l, Refuse(Cancelled, DetailReleased))
	}
	r.granted = remove(r.granted, l)
	if in.WriteValue {
		r.value, r.valid = CloneValue(in.Value), true
	}
	return Result{}, r
}

func (m *Model) cancel(s *mSession, in *Input) (Result, *mResource) {
	r := m.resources[in.Resource]
	var l *mLock
	if r != nil {
		l = r.lockOf(s.id)
	}
	if l == nil || l.request == 0 {
		return Refuse(NotHeld, DetailNotQueued), nil
	}
	m.unqueue(r, l, Refuse(Cancelled, DetailCancelled))
	return Result{}, r
}

// unqueue ends l's queued request with res (Cancelled, Timeout): a waiting
// lock goes away, a converting lock keeps its granted mode.
func (m *Model) unqueue(r *mResource, l *mLock, res Result) {
	req := l.request
	if l.granted {
		r.converting = remove(r.converting, l)
		l.want = l.mode
	} else {
		r.waiting = remove(r.waiting, l)
	}
	l.request, l.deadline, l.queuedAt = 0, 0, 0
	m.complete(l.session, req, r.name, res)
}

// endSession closes (closed) or expires a session: its queued requests end,
// its locks go (an expired PW/EX holder invalidates the value block and an
// expired holder with a lock-delay starts it), then every resource it
// touched is settled, in name order.
func (m *Model) endSession(s *mSession, closed bool) {
	var names []string
	for name, r := range m.resources {
		if r.lockOf(s.id) != nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		r := m.resources[name]
		l := r.lockOf(s.id)
		if l.request != 0 {
			res := Refuse(SessionExpired, DetailSessionExpired)
			if closed {
				res = Refuse(Cancelled, DetailClosedCancelled)
			}
			m.emit(Event{Kind: Completed, Session: s.id, Request: l.request, Resource: name, Result: res})
			r.converting = remove(r.converting, l)
		}
		if l.granted && !closed {
			if l.mode.WritesValue() && !m.bugs.has(bugExpiryKeepsValue) {
				r.valid = false
			}
			if l.lockDelay > 0 && l.mode != NL {
				r.delayUntil = max(r.delayUntil, m.now.Add(l.lockDelay))
			}
		}
		r.granted = remove(r.granted, l)
		if closed || !m.bugs.has(bugExpiryKeepsWaiters) {
			r.waiting = remove(r.waiting, l)
		}
	}
	if !closed {
		m.emit(Event{Kind: Expired, Session: s.id})
	}
	delete(m.sessions, s.id)
	m.tombstones = append(m.tombstones, Tombstone{Session: s.id, Closed: closed})
	if len(m.tombstones) > m.lim.TombstonesMax {
		m.tombstones = m.tombstones[1:]
	}
	for _, name := range names {
		m.settle(m.resources[name])
	}
}

// ---- the grant rules ----

// settle grants what the DLM's rules allow after any change to r, in order:
// the head of the conversion queue while it is grantable (queued
// conversions never overtake one another, so a queued NL->EX cannot be
// postponed forever), then, only when no conversion waits, new requests
// from the head of the wait queue while each is compatible. Then holders
// that block a request are told, and an unused resource is dropped.
// Granting a head adds no wait-for edge (graph.go), so neither loop
// checks for a deadlock.
func (m *Model) settle(r *mResource) {
	for len(r.converting) > 0 && !m.delayed(r) {
		l := r.converting[0]
		if m.bugs.has(bugConversionOvertakes) {
			l = nil
			for _, c := range r.converting {
				if r.compatible(c.want, c) {
					l = c
					break
				}
			}
		}
		if l == nil || !r.compatible(l.want, l) {
			break
		}
		req := l.request
		r.converting = remove(r.converting, l)
		l.request, l.deadline, l.queuedAt = 0, 0, 0
		l.mode = l.want
		l.token, l.notified, l.grantedAt = m.nextToken(), -1, m.now
		m.complete(l.session, req, r.name, r.grantResult(l))
	}
	for (len(r.converting) == 0 || m.bugs.has(bugNewIgnoreConversions)) &&
		len(r.waiting) > 0 && !m.delayed(r) && m.fits(r, r.waiting[0]) {
		l := r.waiting[0]
		r.waiting = r.waiting[1:]
		req := l.request
		l.granted, l.request, l.deadline, l.queuedAt = true, 0, 0, 0
		l.token, l.grantedAt = m.nextToken(), m.now
		r.granted = append(r.granted, l)
		m.complete(l.session, req, r.name, r.grantResult(l))
	}
	m.notify(r)
	if len(r.granted) == 0 && len(r.waiting) == 0 && !m.delayed(r) {
		delete(m.resources, r.name)
	}
}

// notify tells each holder that blocks a queued request of another session
// the highest such mode, once per higher mode since its own mode changed.
func (m *Model) notify(r *mResource) {
	for _, h := range r.granted {
		high := int8(-1)
		for _, queue := range [][]*mLock{r.converting, r.waiting} {
			for _, p := range queue {
				if p.session != h.session && !Compatible(h.mode, p.want) && int8(p.want) > high {
					high = int8(p.want)
				}
			}
		}
		if high > h.notified {
			h.notified = high
			m.emit(Event{Kind: Blocking, Session: h.session, Resource: r.name, Mode: Mode(high)})
		}
	}
}

func (m *Model) delayed(r *mResource) bool { return r.delayUntil > m.now }

func (m *Model) nextToken() Token {
	m.tokenMax++
	return m.tokenMax
}

func (m *Model) complete(id SessionID, req RequestID, resource string, res Result) {
	if s, ok := m.sessions[id]; ok {
		s.replies[req] = res
	}
	m.emit(Event{Kind: Completed, Session: id, Request: req, Resource: resource, Result: res})
}

func (m *Model) emit(e Event) { m.events = append(m.events, e) }

func (m *Model) locksOf(id SessionID) int {
	n := 0
	for _, r := range m.resources {
		// map order: counting.
		if r.lockOf(id) != nil {
			n++
		}
	}
	return n
}

func (r *mResource) lockOf(id SessionID) *mLock {
	for _, l := range r.granted {
		if l.session == id {
			return l
		}
	}
	for _, l := range r.waiting {
		if l.session == id {
			return l
		}
	}
	return nil
}

// fits reports whether l, a lock not yet granted, could be granted beside
// r's granted locks: its mode is compatible with theirs and, on a
// semaphore, its permits fit in what they leave of the limit.
func (m *Model) fits(r *mResource, l *mLock) bool {
	if r.limit == 0 {
		return r.compatible(l.mode, nil)
	}
	held := uint64(l.permits)
	for _, h := range r.granted {
		held += uint64(h.permits)
	}
	if m.bugs.has(bugSemaphoreOverLimit) {
		return held <= uint64(r.limit)+1
	}
	return held <= uint64(r.limit)
}

// compatible reports whether mode is compatible with the granted mode of
// every lock on r other than self.
func (r *mResource) compatible(mode Mode, self *mLock) bool {
	for _, h := range r.granted {
		if h != self && !Compatible(h.mode, mode) {
			return false
		}
	}
	return true
}

func (r *mResource) grantResult(l *mLock) Result {
	return Result{Code: OK, Mode: l.mode, Token: l.token, Value: r.value, ValueValid: r.valid}
}

func remove(ls []*mLock, l *mLock) []*mLock {
	if i := slices.Index(ls, l); i >= 0 {
		return slices.Delete(ls, i, i+1)
	}
	return ls
}
