package engine

import (
	"fmt"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// Core is the deterministic lock service: a plain struct with no goroutines,
// no clock, no random source and no I/O. It implements exactly the
// semantics of the spec model (same replies, events and states, checked step
// by step by the tests) with structures that make the common paths cheap:
// O(1) acquire and release of an uncontended lock, O(log n) timers.
//
// Inputs go in with Step (or Tick, for time alone); everything to persist
// and every event comes out of Ready; Advance confirms they were handled.
// See doc.go for the caller's obligations.
type Core struct {
	lim      spec.Limits
	now      spec.Time
	tokenMax spec.Token
	seq      uint64 // orders grants and queue entries, so recovery can rebuild the order
	tombSeq  uint64 // keys tombstones in the order sessions ended
	// deadlines: every change of a session's deadline writes its record,
	// deadline included (WriteDeadlines), so that RestoreExact can rebuild
	// the core exactly.
	deadlines bool
	// noReplies: record no outcomes (only a planted replica bug sets it).
	noReplies bool

	sessions     map[spec.SessionID]*session
	resources    map[string]*resource // in use, or idle
	live         int                  // resources in use (not idle)
	grantedTotal int                  // granted locks, for Stats
	queuedTotal  int                  // queued requests, for Stats
	idle         resourceList         // idle resources, least recently used first
	tombstones   []tombstone          // oldest first
	tombIndex    map[spec.SessionID]bool
	timers       timerHeap

	events  []spec.Event
	writes  Writes
	metaRef opRef

	visit      uint64     // epoch of the current wait-for search
	stack      []*session // scratch for the wait-for search
	names      []string   // scratch for endSession
	ending     []*lock    // scratch for endSession
	freeLocks  []*lock
	freeRes    []*resource
	freeExts   []*resourceExt
	freeQueued []*queuedPart
}

type session struct {
	id      spec.SessionID
	label   string // the client's, for people
	ttl     time.Duration
	acked   spec.RequestID
	replies replyTable // recorded outcomes, sorted by request id
	locks   lockList   // every lock of the session, granted or waiting
	pending lockList   // the session's queued requests
	ref     opRef      // its latest write this turn
	expiry  timer
	visit   uint64
}

type reply struct {
	id     spec.RequestID
	digest uint64 // spec.Input.Digest of the request: a retry must match it
	res    spec.Result
	ref    opRef // its latest write this turn
}

type tombstone struct {
	seq     uint64
	session spec.SessionID
	closed  bool
}

type resource struct {
	name         string
	granted      lockList              // every lock with a granted mode, in order of first grant
	grantedModes [spec.ModeCount]int32 // granted locks by granted mode

	// ext holds what only a value block, a record, a queue, a lock-delay,
	// many locks or idleness need: the shared, empty noExt until then
	// (read-only), its own once any of them comes (extOf), kept until the
	// resource leaves the idle list. Most resources hold one lock and
	// never need it.
	ext *resourceExt

	locks  int32 // locks on the resource, granted or waiting
	valid  bool
	stored bool // the store holds a record of value, validity and delay
	// An unused resource is kept idle for a while (empty, out of the state)
	// so that a hot name locked and unlocked again and again does not pay
	// for a map insert and delete each time.
	idle bool
}

// resourceExt is the part of a resource that most resources never use.
type resourceExt struct {
	value      []byte // never mutated in place: a write replaces the slice
	delayUntil spec.Time
	limit      uint32 // a semaphore's permits; 0: a lock resource
	held       uint64 // a semaphore's permits granted
	ref        opRef  // its latest write this turn

	idlePrev, idleNext *resource // on the idle list

	converting lockList // the conversion queue (these are also on granted)
	waiting    lockList // the wait queue of new requests

	wantedModes [spec.ModeCount]int32 // queued requests by the mode they want
	delay       timer

	// The furthest queued request walked by the current wait-for search
	// (searchVisit == Core.visit), by servingKey (see deadlock.go).
	searchVisit, searchKey uint64

	bySession map[*session]*lock // index of locks, once there are many (see lockOf)
}

// noExt is the extension of every resource that has none of its own: all
// empty, never written (extOf gives a resource its own before a write).
var noExt = resourceExt{delay: timer{index: -1}}

type lock struct {
	sess      *session
	res       *resource
	token     spec.Token
	request   spec.RequestID // queued request, 0 if none
	lockDelay time.Duration
	grantSeq  uint64
	grantedAt spec.Time   // the instant of the grant or up-conversion that gave the token
	permits   uint32      // of a semaphore; 0 on a lock resource
	ref       opRef       // its latest write this turn
	links     [2]links    // on grantedList and sessionList
	q         *queuedPart // while a request is queued (request != 0), else nil
	granted   bool
	mode      spec.Mode // granted mode, or the requested mode of a waiting lock
	want      spec.Mode // mode a queued conversion waits for; else == mode
	notified  int8
	stored    bool // the store holds its record, or will after this turn
}

// queuedPart is the part of a lock that only a queued request needs: most
// locks are granted at once and never queue. The core pools them.
type queuedPart struct {
	links   [2]links  // on queueList and pendingList
	timeout timer     // its instant is the request's deadline
	seq     uint64    // queueSeq
	at      spec.Time // when the request was queued
}

// link returns l's links on list k (a queue's only while l is queued).
func (l *lock) link(k listKind) *links {
	if k < queueList {
		return &l.links[k]
	}
	return &l.q.links[k-queueList] // nil l.q: a bug (remove asserts it)
}

// queueSeq orders a queued request in its queue (0: none queued).
func (l *lock) queueSeq() uint64 {
	if l.q == nil {
		return 0
	}
	return l.q.seq
}

// New returns an empty core with the given limits, which must be valid.
func New(lim spec.Limits) (*Core, error) {
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	return &Core{lim: lim, sessions: map[spec.SessionID]*session{},
		resources: map[string]*resource{}, tombIndex: map[spec.SessionID]bool{},
		writes: Writes{turn: 1}}, nil
}

// Limits returns the core's limits.
func (c *Core) Limits() spec.Limits { return c.lim }

// Now returns the core's clock: the latest instant it was stepped to.
func (c *Core) Now() spec.Time { return c.now }

// Step moves the clock to now (never backwards), fires the timers due by
// then and applies in. It returns the reply to in, which the caller must not
// deliver before the writes of this turn are durable.
func (c *Core) Step(now spec.Time, in *spec.Input) spec.Result {
	c.advance(now)
	res := c.apply(in)
	c.checkInvariants()
	return res
}

// Tick moves the clock to now and fires the timers due by then.
func (c *Core) Tick(now spec.Time) {
	c.advance(now)
	c.checkInvariants()
}

// WriteDeadlines makes the core write a session's deadline in its record,
// and write the record again whenever the deadline moves (a keepalive, a
// failover), so that RestoreExact rebuilds exactly this core from its
// records and clock. A replicated core needs that: a replica restarted from
// its store must equal the replicas that never stopped, and they gave no
// session the grace of a restart. It costs one session record (about 30
// bytes) per keepalive, and one per live session per failover; a
// replica writes its log entry in the same batch anyway, so no extra sync.
// Call it on a new core, before its first step.
func (c *Core) WriteDeadlines() { c.deadlines = true }

// Failover is a change of leader in a replicated group, exactly
// spec.Model.Failover: the clock moves to now (never backwards) and every
// live session's expiry moves out to at least the clock plus grace; nothing
// else changes and nothing fires (the caller Ticks at once, as after
// Restore). It writes no record, like a keepalive (unless WriteDeadlines
// was called: then each session whose deadline moved): deadlines are not
// stored, because a restart gives every session a full TTL from the restart
// whatever its deadline was (Restore, spec.Model.Recover), and that is
// enough, for no client counts its lease from later than its last answered
// keepalive, which came before the restart. The clock rides along with the
// next batch that has writes, as after Tick. A replicated core keeps the
// failover in its log and applies it again on replay.
func (c *Core) Failover(now spec.Time, grace time.Duration) {
	if now > c.now {
		c.now = now
	}
	until := c.now.Add(grace)
	for _, s := range c.sessions {
		// map order: each timer moves alone; the heap's order is total.
		if s.expiry.at < until {
			c.timers.set(&s.expiry, until)
			if c.deadlines {
				c.putSession(s, true)
			}
		}
	}
	// No invariant check here: a timer already due fires at the next Tick.
}

// SessionTTLMax returns the longest TTL of a live session (0: none): the
// longest lease a client of this core may count on.
func (c *Core) SessionTTLMax() time.Duration {
	var ttl time.Duration
	for _, s := range c.sessions {
		// map order: a maximum does not depend on it.
		ttl = max(ttl, s.ttl)
	}
	return ttl
}

// NextDeadline returns the instant of the earliest timer, if any: the
// caller should Tick the core then.
func (c *Core) NextDeadline() (spec.Time, bool) {
	if t := c.timers.first(); t != nil {
		return t.at, true
	}
	return 0, false
}

// Ready is the work a turn produced: events to deliver and records to
// persist. Both stay valid until Advance.
type Ready struct {
	Events []spec.Event
	Writes *Writes // empty if nothing durable changed
}

// Ready returns the events and writes accumulated since the last Advance.
func (c *Core) Ready() Ready {
	if c.writes.Len() > 0 { // the counters ride along with every batch
		c.putMeta()
	}
	return Ready{Events: c.events, Writes: &c.writes}
}

// Advance tells the core that the last Ready was handled: its writes are
// durable and its events delivered. The buffers are reused.
func (c *Core) Advance() {
	clear(c.events) // drop references to values
	c.events = c.events[:0]
	c.writes.reset()
}

func (c *Core) advance(now spec.Time) {
	if now > c.now {
		c.now = now
	}
	for {
		t := c.timers.first()
		if t == nil || t.at > c.now {
			return
		}
		switch t.kind {
		case timerExpiry:
			c.endSession(t.sess, false)
		case timerTimeout:
			r := t.lock.res
			c.unqueue(t.lock, spec.Refuse(spec.Timeout, spec.DetailTimeout))
			c.settle(r)
		case timerDelayEnd:
			r := t.res
			c.timers.stop(&r.ext.delay)
			r.ext.delayUntil = 0
			c.putResource(r)
			c.settle(r)
		default:
			panic(fmt.Sprintf("engine: unknown timer kind %d", t.kind))
		}
	}
}

func (c *Core) apply(in *spec.Input) spec.Result {
	if r, ok := spec.Validate(in, &c.lim); !ok {
		return r
	}
	switch in.Op {
	case spec.OpOpen:
		return c.open(in)
	case spec.OpKeepAlive:
		s, r := c.session(in.Session)
		if s != nil {
			c.timers.set(&s.expiry, c.now.Add(s.ttl))
			if c.deadlines {
				c.putSession(s, true)
			}
		}
		return r
	case spec.OpClose:
		return c.close(in)
	}
	s := c.sessions[in.Session]
	if s == nil {
		_, r := c.session(in.Session)
		return r
	}
	digest := in.Digest()
	if i, ok := s.replies.find(in.Request); ok && !(bugzooOn && planted("retry-applied-twice")) {
		// Exactly once: a retry gets the recorded outcome; another request
		// reusing the id is refused, and changes nothing.
		if rp := &s.replies.live()[i]; rp.digest == digest {
			return rp.res
		}
		return spec.Refuse(spec.InvalidArgument, spec.DetailRequestReused(in.Request))
	}
	if in.Request <= s.acked {
		return spec.Refuse(spec.InvalidArgument, spec.DetailAcknowledged(in.Request, s.acked))
	}
	acked := max(s.acked, in.Acked)
	if s.replies.len()-s.replies.prunable(acked) >= c.lim.RepliesPerSessionMax {
		return spec.Refuse(spec.LimitExceeded, spec.DetailReplies(c.lim.RepliesPerSessionMax))
	}
	c.prune(s, acked)
	var r spec.Result
	var res *resource
	switch in.Op {
	case spec.OpAcquire:
		r, res = c.acquire(s, in)
	case spec.OpConvert:
		r, res = c.convert(s, in)
	case spec.OpRelease:
		r, res = c.release(s, in)
	case spec.OpCancel:
		r, res = c.cancel(s, in)
	}
	c.record(s, in.Request, digest, r)
	if res != nil {
		c.settle(res)
	}
	return r
}

// session returns the live session id names, or nil and the refusal.
func (c *Core) session(id spec.SessionID) (*session, spec.Result) {
	if s, ok := c.sessions[id]; ok {
		return s, spec.Result{}
	}
	if closed, ok := c.tombIndex[id]; ok {
		if closed {
			return nil, spec.Refuse(spec.UnknownSession, spec.DetailSessionClosed)
		}
		return nil, spec.Refuse(spec.SessionExpired, spec.DetailSessionExpired)
	}
	return nil, spec.Refuse(spec.UnknownSession, spec.DetailUnknownSession)
}

func (c *Core) open(in *spec.Input) spec.Result {
	if _, ok := c.sessions[in.Session]; ok {
		return spec.Result{} // a retry of the open that created it
	}
	if _, ended := c.tombIndex[in.Session]; ended {
		_, r := c.session(in.Session)
		return r // ended sessions stay ended
	}
	if len(c.sessions) >= c.lim.SessionsMax {
		return spec.Refuse(spec.LimitExceeded, spec.DetailSessions(c.lim.SessionsMax))
	}
	s := c.newSession(in.Session, in.TTL)
	s.label = in.Label
	c.timers.set(&s.expiry, c.now.Add(s.ttl))
	c.putSession(s, false)
	return spec.Result{}
}

func (c *Core) newSession(id spec.SessionID, ttl time.Duration) *session {
	s := &session{id: id, ttl: ttl}
	s.expiry = timer{kind: timerExpiry, session: id, sess: s, index: -1}
	c.sessions[id] = s
	return s
}

func (c *Core) close(in *spec.Input) spec.Result {
	s, r := c.session(in.Session)
	if s == nil {
		if closed := c.tombIndex[in.Session]; closed {
			return spec.Result{} // a retry of the close
		}
		return r
	}
	c.endSession(s, true)
	return spec.Result{}
}

func (c *Core) emit(e spec.Event) { c.events = append(c.events, e) }

func (c *Core) nextToken() spec.Token {
	c.tokenMax++
	return c.tokenMax
}

func (c *Core) nextSeq() uint64 {
	c.seq++
	return c.seq
}

// lockOf returns the lock of s on the resource named name, or nil.
func (c *Core) lockOf(s *session, name string) *lock {
	r := c.resources[name]
	if r == nil || r.idle {
		return nil
	}
	return r.lockOf(s)
}
