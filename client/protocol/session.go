package protocol

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// CallID names one transmission of an input, so that its answer can be
// matched to it: every Send has a fresh one, also when it resends a request
// id. Answers to calls the session no longer tracks are ignored.
type CallID uint64

// Send is an input to hand to the transport now, with the CallID to give
// back with its answer.
type Send struct {
	Call  CallID
	Input spec.Input
}

// UpdateKind is the kind of an Update.
type UpdateKind uint8

const (
	// Opened: the node answered the open; the session is live.
	Opened UpdateKind = iota + 1
	// Queued: Request was queued at the node; its outcome comes later.
	Queued
	// Done: Request ended with Result (or, with Unknown, the session ended
	// before its outcome was learned).
	Done
	// Blocking: the session's lock on Resource blocks a request for Mode.
	Blocking
	// SessionLost: the session is lost (Result says why; ByNode says the
	// node confirmed it, rather than the lease running out locally).
	SessionLost
	// SessionClosed: the node answered the close with Result.
	SessionClosed
)

var updateNames = [...]string{"", "opened", "queued", "done", "blocking", "lost", "closed"}

func (k UpdateKind) String() string {
	if int(k) < len(updateNames) && k != 0 {
		return updateNames[k]
	}
	return fmt.Sprintf("UpdateKind(%d)", uint8(k))
}

// Update is something the application learns.
type Update struct {
	Kind     UpdateKind
	Request  spec.RequestID // Queued, Done
	Op       spec.Op        // Queued, Done
	Resource string         // Queued, Done, Blocking
	Mode     spec.Mode      // Blocking: the mode a waiter wants
	Result   spec.Result    // Done, SessionLost, SessionClosed
	Unknown  bool           // Done: the outcome was never learned
	ByNode   bool           // SessionLost: the node said so
}

// Errors of misuse: the application asked for something the session cannot
// do. They are Go errors, not protocol outcomes. (A request the node would
// refuse on sight, such as a name over NameBytesMax, fails at once with a
// *spec.Error carrying the node's code: see Config.Limits.)
var (
	ErrNotOpen = errors.New("client: the session is not open")
	ErrClosing = errors.New("client: the session is closing or closed")
	ErrBusy    = errors.New("client: a request on this resource is still in flight")
	ErrNoLock  = errors.New("client: no lock held on this resource")
)

// Session is the sans-I/O core of one client session; see the package
// documentation for the caller's obligations.
type Session struct {
	id    spec.SessionID
	cfg   Config
	lease time.Duration // how long the lease runs from base, by the local clock

	status    Status
	opened    bool
	closing   bool
	connected bool

	openFirst spec.Time // local send time of the first open attempt
	openSent  bool
	openNext  spec.Time
	closeNext spec.Time
	base      spec.Time // the lease counts from here (local)
	kaNext    spec.Time // next keepalive

	nextCall CallID
	calls    map[CallID]callRef
	nextReq  spec.RequestID
	acked    spec.RequestID
	reqs     []*request              // unresolved requests, by id
	resolved map[spec.RequestID]bool // resolved ids above acked
	locks    map[string]*lock

	sends   []Send
	updates []Update
}

type callKind uint8

const (
	callOpen callKind = iota + 1
	callKeepAlive
	callClose
	callRequest
)

type callRef struct {
	kind   callKind
	req    spec.RequestID
	sentAt spec.Time
}

type request struct {
	in     spec.Input
	sent   bool      // sent on the current connection
	queued bool      // the node said Pending
	next   spec.Time // resend (retry or poll) at
	from   spec.Mode // a conversion: the mode held before it
}

type lock struct {
	resource   string
	held       bool
	mode       spec.Mode
	token      spec.Token
	grant      spec.RequestID // the request whose grant gave token
	value      []byte
	valueValid bool
	permits    uint32         // of a semaphore (asked for by the acquire)
	acquire    spec.RequestID // unresolved acquire
	op         spec.RequestID // unresolved convert or release
	cancel     spec.RequestID // unresolved cancel
}

// NewSession returns the core of a session with the given id (128 random
// bits: a capability), which starts opening at now.
func NewSession(id spec.SessionID, cfg Config, now spec.Time) (*Session, error) {
	if id.IsZero() {
		return nil, errors.New("client: session id must not be zero")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Session{id: id, cfg: cfg, lease: LeaseFor(cfg.TTL, cfg.DriftPPM, cfg.Margin),
		connected: true, openNext: now, calls: map[CallID]callRef{},
		resolved: map[spec.RequestID]bool{}, locks: map[string]*lock{}}, nil
}

// ID returns the session id.
func (s *Session) ID() spec.SessionID { return s.id }

// Config returns the configuration with defaults applied.
func (s *Session) Config() Config { return s.cfg }

// Lease returns how long a lease lasts from its base, by the local clock.
func (s *Session) Lease() time.Duration { return s.lease }

// Status returns the session's status at now (a lease that ran out by now
// counts as lost even before the next Tick).
func (s *Session) Status(now spec.Time) Status {
	if d, ok := s.LeaseDeadline(); ok && now >= d {
		return StatusLost
	}
	return s.status
}

// Closing reports whether Close was called.
func (s *Session) Closing() bool { return s.closing }

// ---- the application's calls ----

// AcquireOptions are the options of Acquire (see spec.Input).
type AcquireOptions struct {
	NoQueue     bool
	WaitTimeout time.Duration // required unless NoQueue
	LockDelay   time.Duration
	// Permits of a counting semaphore of Limit permits (in mode PR); both
	// 0 for a lock.
	Permits, Limit uint32
}

// Acquire asks for a lock on resource in mode. It fails at once if the
// session is not open or already has a lock or a request on resource.
func (s *Session) Acquire(now spec.Time, resource string, mode spec.Mode, opt AcquireOptions) (spec.RequestID, error) {
	if err := s.usable(now); err != nil {
		return 0, err
	}
	if s.locks[resource] != nil {
		return 0, ErrBusy
	}
	in := spec.Input{Op: spec.OpAcquire, Resource: resource, Mode: mode, NoQueue: opt.NoQueue,
		WaitTimeout: opt.WaitTimeout, LockDelay: opt.LockDelay, Permits: opt.Permits, Limit: opt.Limit}
	if err := s.check(in); err != nil {
		return 0, err
	}
	id := s.request(now, in)
	s.locks[resource] = &lock{resource: resource, acquire: id, permits: opt.Permits}
	return id, nil
}

// ConvertOptions are the options of Convert.
type ConvertOptions struct {
	NoQueue     bool
	WaitTimeout time.Duration // required unless NoQueue
	WriteValue  bool          // a down-conversion from PW or EX may write the value block
	Value       []byte
}

// Convert changes the mode of a held lock. A down-conversion lowers what
// the client believes it holds at once; an up-conversion raises it only
// when granted; a sideways one (PR to CW or back) is believed as CR, the
// strongest mode weaker than both, until answered. A refusal restores the
// old mode, which the node kept.
func (s *Session) Convert(now spec.Time, resource string, mode spec.Mode, opt ConvertOptions) (spec.RequestID, error) {
	l, err := s.heldLock(now, resource)
	if err != nil {
		return 0, err
	}
	in := spec.Input{Op: spec.OpConvert, Resource: resource, Mode: mode, NoQueue: opt.NoQueue,
		WaitTimeout: opt.WaitTimeout, WriteValue: opt.WriteValue, Value: spec.CloneValue(opt.Value)}
	if err := s.check(in); err != nil {
		return 0, err
	}
	id := s.request(now, in)
	l.op = id
	r := s.reqs[len(s.reqs)-1]
	r.from = l.mode
	// Until the answer, believe only what both modes allow: the node may
	// apply the conversion at any moment. Down: the new mode at once. Up:
	// the old mode until granted. Sideways (PR<->CW): their meet, CR.
	l.mode = meet(l.mode, mode)
	return id, nil
}

// meet is the strongest mode weaker than both a and b.
func meet(a, b spec.Mode) spec.Mode {
	for m := spec.Mode(spec.ModeCount - 1); m > spec.NL; m-- {
		if spec.Weaker(m, a) && spec.Weaker(m, b) {
			return m
		}
	}
	return spec.NL
}

// ReleaseOptions are the options of Release.
type ReleaseOptions struct {
	WriteValue bool // a PW or EX holder may write the value block
	Value      []byte
}

// Release gives a held lock up. The client stops believing it holds the
// lock at once.
func (s *Session) Release(now spec.Time, resource string, opt ReleaseOptions) (spec.RequestID, error) {
	l, err := s.heldLock(now, resource)
	if err != nil {
		return 0, err
	}
	in := spec.Input{Op: spec.OpRelease, Resource: resource, WriteValue: opt.WriteValue, Value: spec.CloneValue(opt.Value)}
	if err := s.check(in); err != nil {
		return 0, err
	}
	id := s.request(now, in)
	l.op, l.held = id, false
	return id, nil
}

// Cancel asks the node to cancel a queued acquire on resource.
func (s *Session) Cancel(now spec.Time, resource string) (spec.RequestID, error) {
	if err := s.usable(now); err != nil {
		return 0, err
	}
	l := s.locks[resource]
	if l == nil || l.acquire == 0 && l.op == 0 {
		return 0, ErrNoLock
	}
	if l.cancel != 0 {
		return 0, ErrBusy
	}
	id := s.request(now, spec.Input{Op: spec.OpCancel, Resource: resource})
	l.cancel = id
	return id, nil
}

// Close ends the session: every lock stops being believed at once, and the
// core sends Close until the node answers (SessionClosed). A lost session
// may be closed too, so that the node frees its locks early.
func (s *Session) Close(now spec.Time) error {
	if s.closing || s.status == StatusClosed {
		return ErrClosing
	}
	s.expireIfDue(now)
	s.closing, s.closeNext = true, now
	for _, l := range s.sortedLocks() {
		l.held = false
	}
	return nil
}

func (s *Session) usable(now spec.Time) error {
	s.expireIfDue(now)
	switch {
	case s.closing:
		return ErrClosing
	case s.status != StatusOpen:
		return ErrNotOpen
	}
	return nil
}

func (s *Session) heldLock(now spec.Time, resource string) (*lock, error) {
	if err := s.usable(now); err != nil {
		return nil, err
	}
	l := s.locks[resource]
	switch {
	case l == nil || !l.held:
		return nil, ErrNoLock
	case l.op != 0 || l.acquire != 0:
		return nil, ErrBusy
	}
	return l, nil
}

// check refuses, before anything is sent or changed, an input the node
// would refuse on sight (a name or a value over its bound, a bad mode or
// wait timeout), with the node's code and detail: such a request could
// never succeed, so it never travels.
func (s *Session) check(in spec.Input) error {
	in.Session, in.Request, in.Acked = s.id, s.nextReq+1, s.acked
	if r, ok := spec.Validate(&in, &s.cfg.Limits); !ok {
		return &spec.Error{Code: r.Code, Detail: r.Detail}
	}
	return nil
}

// request numbers a new mutating request and queues it for sending.
func (s *Session) request(now spec.Time, in spec.Input) spec.RequestID {
	s.nextReq++
	in.Session, in.Request, in.Acked = s.id, s.nextReq, s.acked
	// Ids increase, so s.reqs stays sorted (findReq searches it) and no id
	// is used twice in the session.
	assert(in.Request > s.acked && (len(s.reqs) == 0 || s.reqs[len(s.reqs)-1].in.Request < in.Request),
		"request ids increase")
	s.reqs = append(s.reqs, &request{in: in, next: now})
	return in.Request
}

// ---- what the application can read ----

// LockInfo is what the client believes of its lock on one resource.
type LockInfo struct {
	Resource   string
	State      Belief
	Mode       spec.Mode  // the mode believed held (Held, AtRisk)
	Token      spec.Token // its fencing token
	Grant      spec.RequestID
	Permits    uint32 // of a semaphore (0: a lock)
	Value      []byte // the value block as of the grant
	ValueValid bool
	Busy       bool // a request on the resource is unresolved
}

// Lock returns what the client believes of its lock on resource at now.
func (s *Session) Lock(now spec.Time, resource string) LockInfo {
	l := s.locks[resource]
	if l == nil {
		return LockInfo{Resource: resource}
	}
	return s.info(now, l)
}

// Locks returns every lock and request the session tracks, by resource.
func (s *Session) Locks(now spec.Time) []LockInfo {
	var out []LockInfo
	for _, l := range s.sortedLocks() {
		out = append(out, s.info(now, l))
	}
	return out
}

// Holds reports the mode and token of the lock on resource if the client
// believes it holds it at now.
func (s *Session) Holds(now spec.Time, resource string) (LockInfo, bool) {
	info := s.Lock(now, resource)
	return info, info.State.Believed()
}

func (s *Session) info(now spec.Time, l *lock) LockInfo {
	st := s.lockState(now, l)
	info := LockInfo{Resource: l.resource, State: st, Busy: l.acquire != 0 || l.op != 0 || l.cancel != 0}
	if l.held || st == Lost {
		info.Mode, info.Token, info.Grant, info.Permits = l.mode, l.token, l.grant, l.permits
		info.Value, info.ValueValid = l.value, l.valueValid
	}
	return info
}

func (s *Session) sortedLocks() []*lock {
	out := make([]*lock, 0, len(s.locks))
	for _, l := range s.locks {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *lock) int { return strings.Compare(a.resource, b.resource) })
	return out
}

// Unresolved returns the ids of the requests whose outcome is not known yet.
func (s *Session) Unresolved() []spec.RequestID {
	out := make([]spec.RequestID, len(s.reqs))
	for i, r := range s.reqs {
		out[i] = r.in.Request
	}
	return out
}

// Updates returns what the application learned since the last call, in
// order. The slice is the caller's.
func (s *Session) Updates() []Update {
	u := s.updates
	s.updates = nil
	return u
}

func (s *Session) findReq(id spec.RequestID) (int, *request) {
	i, ok := slices.BinarySearchFunc(s.reqs, id, func(r *request, id spec.RequestID) int {
		switch {
		case r.in.Request < id:
			return -1
		case r.in.Request > id:
			return 1
		}
		return 0
	})
	if !ok {
		return i, nil
	}
	return i, s.reqs[i]
}
