package spec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"time"
)

// Explore is an exhaustive, breadth-first model checker for the Model: from
// the empty lock service it takes every action a few well-behaved clients
// could take (open, keepalive, close, acquire, convert, release, cancel, one
// tick of time, a restart, a failover), in every order, and checks CheckInvariants on
// every distinct state it reaches and CheckTransition (with four checks of
// its own: see checkStep) on every transition it takes. Within its Bounds it visits
// every reachable state: it is a proof for small configurations, where the
// rapid tests and the simulator only sample large ones.
//
// The state space is made finite without a time horizon by normalising each
// state before it is hashed, in four ways that these clients cannot observe:
//   - time: every instant is taken relative to Now (deadlines as time left);
//   - fencing tokens: only their order matters, so they are renumbered
//     1, 2, ... in order, TokenMax included;
//   - recorded outcomes: these clients never retry, so what an outcome
//     says can only ever be read back by a retry; instead, each reply is
//     checked against the state when it is given (checkStep). What can
//     matter is which outcomes the node still keeps, because they count
//     against RepliesPerSessionMax: a client acknowledges every outcome it
//     has, which lets the node forget all of them below its oldest pending
//     request at its next request. So the normal form keeps, from the
//     oldest pending request on, whether each kept outcome is pending;
//   - request ids: only which queued request is which matters, so they are
//     renumbered by rank among the outcomes kept.
// Two states with the same normal form have the same futures up to that
// renaming (and to what recorded outcomes say), so the first one found
// stands for both. The number of sessions
// is bounded because each client opens one session, once (a client whose
// session ended stays away; ids are never reused).
//
// Actions happen on a grid of whole seconds: inputs are applied at the
// model's current instant and time moves by Tick(now+1s), a restart or a
// failover, so an expiry or a timeout only ever happens in a step that applies no input.
// That is what makes the checker's own value-block check exact (below).
//
// The clients are well behaved: they release, convert and cancel only what
// they hold or wait for, and never retry (a retry changes no state: the
// exactly-once rule answers it from the recorded outcome).

// Bounds say how much of the model Explore covers. Durations are in whole
// ticks of one second.
type Bounds struct {
	Sessions    int    // clients a, b, c, ...; each opens one session, once
	Resources   int    // resources r1, r2, ...
	Modes       []Mode // the modes Acquire and Convert ask for
	TTL         int    // every session's lease
	WaitTimeout int    // every queued request's wait timeout
	LockDelay   int    // if positive, Acquire may also ask for this lock-delay
	NoQueue     bool   // Acquire and Convert may also be tries (NoQueue)
	WriteValue  bool   // PW/EX holders may write the value block on release or down-conversion
	Close       bool   // clients may close their sessions
	// Semaphore: if positive, Acquire may also ask for 1 or 2 permits of a
	// semaphore of this limit, on any resource (so a resource may be
	// asked for as a lock and as a semaphore).
	Semaphore uint32
	Crashes   int // restarts (Model.Recover) per run
	Failovers int // changes of leader (Model.Failover, grace TTL) per run
	Downtime  int // a restart or a failover takes 0 ticks or this many (past due timers)
	StatesMax int // give up (Report.Complete false) past this many distinct states

	bugs bugs // planted bugs; only this package's tests set them
}

// Report is what Explore found.
type Report struct {
	States      int  // distinct states, after normalisation
	Transitions int  // transitions taken, including those to states already seen
	Depth       int  // breadth-first levels: the longest shortest path from the empty state
	Complete    bool // every reachable state was visited (StatesMax was not hit)
	// Violation is the first broken property found, with a shortest path to
	// it; nil if none.
	Violation *Counterexample
}

func (r Report) String() string {
	s := fmt.Sprintf("%d distinct states, %d transitions, depth %d", r.States, r.Transitions, r.Depth)
	if !r.Complete {
		s += " (incomplete: StatesMax reached)"
	}
	if r.Violation != nil {
		s += "; violation: " + r.Violation.Err.Error()
	}
	return s
}

// Counterexample is a shortest run from the empty lock service to a broken
// property: each step names its action and shows the reply, the events and
// the state after it.
type Counterexample struct {
	Err   error
	Steps []TraceStep
}

// TraceStep is one action of a counterexample and what it did.
type TraceStep struct {
	Action string
	Reply  Result // for an input
	Events []Event
	State  State
	input  bool
}

func (c *Counterexample) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "violation: %v\n", c.Err)
	for i, s := range c.Steps {
		fmt.Fprintf(&b, "%2d. %s\n", i+1, s.Action)
		if s.input {
			fmt.Fprintf(&b, "      reply: %s\n", s.Reply.String())
		}
		for _, e := range s.Events {
			fmt.Fprintf(&b, "      event: %s\n", e.String())
		}
		for _, line := range strings.Split(strings.TrimSuffix(s.State.String(), "\n"), "\n") {
			fmt.Fprintf(&b, "      | %s\n", line)
		}
	}
	return b.String()
}

// Validate reports the first bound that is out of range.
func (b *Bounds) Validate() error {
	switch {
	case b.Sessions < 1 || b.Sessions > 8:
		return fmt.Errorf("bounds: Sessions %d outside [1, 8]", b.Sessions)
	case b.Resources < 1 || b.Resources > 8:
		return fmt.Errorf("bounds: Resources %d outside [1, 8]", b.Resources)
	case len(b.Modes) == 0:
		return errors.New("bounds: Modes is empty")
	case b.TTL < 1 || b.WaitTimeout < 1 || b.LockDelay < 0 || b.Crashes < 0 || b.Failovers < 0 || b.Downtime < 0:
		return errors.New("bounds: TTL and WaitTimeout must be positive, the rest not negative")
	case b.Downtime > 60:
		return fmt.Errorf("bounds: Downtime %d above 60 ticks", b.Downtime)
	case b.Crashes > 60 || b.Failovers > 60:
		return fmt.Errorf("bounds: Crashes %d or Failovers %d above 60", b.Crashes, b.Failovers)
	case b.StatesMax < 1:
		return errors.New("bounds: StatesMax must be positive")
	case b.Semaphore > 8:
		return fmt.Errorf("bounds: Semaphore %d above 8", b.Semaphore)
	}
	for _, m := range b.Modes {
		if !m.Valid() {
			return fmt.Errorf("bounds: %v is not a mode", m)
		}
	}
	return nil
}

// Limits returns the limits Explore runs the model with. The capacity
// bounds are large enough that these clients never meet them, except
// RepliesPerSessionMax: a client that keeps making requests on other
// resources while one waits piles up outcomes it cannot acknowledge yet,
// and is refused (LimitExceeded) when it reaches the bound, as it should be.
func (b *Bounds) Limits() Limits {
	tick := time.Second
	return Limits{
		NameBytesMax: 8, ValueBytesMax: 4,
		SessionsMax: b.Sessions, ResourcesMax: b.Resources,
		LocksPerSessionMax: b.Resources, WaitersPerResourceMax: b.Sessions,
		RepliesPerSessionMax: b.Resources + 2, TombstonesMax: b.Sessions,
		TTLMin: tick, TTLMax: time.Duration(b.TTL) * tick,
		WaitTimeoutMin: tick, WaitTimeoutMax: time.Duration(b.WaitTimeout) * tick,
		LockDelayMax:      time.Duration(max(b.LockDelay, 1)) * tick,
		InputsPerBatchMax: 8,
	}
}

// ---- actions ----

type actionKind uint8

const (
	actInput    actionKind = iota // Step with an input at the current instant
	actTick                       // Tick one second on
	actRecover                    // Recover after a downtime, then Tick at once
	actFailover                   // Failover after a gap, grace TTL, then Tick at once
)

type action struct {
	kind      actionKind
	op        Op
	session   uint8
	resource  uint8
	mode      Mode
	noQueue   bool
	lockDelay bool
	write     bool
	permits   uint8 // Acquire of a semaphore's permits (limit Bounds.Semaphore)
	ticks     uint8 // actTick, actRecover, actFailover: how far the clock moves
}

// exploreValue is the only value clients write: whether the block is valid,
// not what it says, is what the checks are about.
var exploreValue = []byte("v")

func sessionName(i int) SessionID { return NamedSession(string(rune('a' + i))) }
func resourceName(i int) string   { return fmt.Sprintf("r%d", i+1) }

func (x *explorer) describe(a action) string {
	switch a.kind {
	case actTick:
		return fmt.Sprintf("tick +%ds", a.ticks)
	case actRecover:
		return fmt.Sprintf("crash and restart after %ds", a.ticks)
	case actFailover:
		return fmt.Sprintf("failover after %ds, grace %ds", a.ticks, x.b.TTL)
	}
	s := fmt.Sprintf("%v %s", a.op, ShortID(sessionName(int(a.session))))
	switch a.op {
	case OpOpen:
		return fmt.Sprintf("%s ttl=%ds", s, x.b.TTL)
	case OpKeepAlive, OpClose:
		return s
	}
	s += " " + resourceName(int(a.resource))
	if a.permits != 0 {
		s += fmt.Sprintf(" %d of %d permits", a.permits, x.b.Semaphore)
	}
	if a.op == OpAcquire || a.op == OpConvert {
		s += " " + a.mode.String()
		if a.noQueue {
			s += " try"
		} else {
			s += fmt.Sprintf(" wait=%ds", x.b.WaitTimeout)
		}
	}
	if a.lockDelay {
		s += fmt.Sprintf(" lock-delay=%ds", x.b.LockDelay)
	}
	if a.write {
		s += fmt.Sprintf(" value=%s", exploreValue)
	}
	return s
}

// actions lists what the clients may do in st, in a fixed order.
func (x *explorer) actions(st *State, crashes, failovers int, out []action) []action {
	out = out[:0]
	for i := 0; i < x.b.Sessions; i++ {
		id := sessionName(i)
		live := slices.ContainsFunc(st.Sessions, func(s SessionState) bool { return s.ID == id })
		ended := slices.ContainsFunc(st.Tombstones, func(t Tombstone) bool { return t.Session == id })
		s := uint8(i)
		if !live {
			if !ended {
				out = append(out, action{op: OpOpen, session: s})
			}
			continue
		}
		if x.renews(st, id) {
			out = append(out, action{op: OpKeepAlive, session: s})
		}
		if x.b.Close {
			out = append(out, action{op: OpClose, session: s})
		}
		for j := 0; j < x.b.Resources; j++ {
			out = x.lockActions(st, id, s, uint8(j), out)
		}
	}
	out = append(out, action{kind: actTick, ticks: 1})
	if crashes < x.b.Crashes {
		out = append(out, action{kind: actRecover})
		if x.b.Downtime > 0 {
			out = append(out, action{kind: actRecover, ticks: uint8(x.b.Downtime)})
		}
	}
	if failovers < x.b.Failovers {
		out = append(out, action{kind: actFailover})
		if x.b.Downtime > 0 {
			out = append(out, action{kind: actFailover, ticks: uint8(x.b.Downtime)})
		}
	}
	return out
}

func (x *explorer) lockActions(st *State, id SessionID, s, r uint8, out []action) []action {
	l, granted := findLock(st, resourceName(int(r)), id)
	base := action{session: s, resource: r}
	with := func(op Op, mode Mode, noQueue, lockDelay, write bool) action {
		a := base
		a.op, a.mode, a.noQueue, a.lockDelay, a.write = op, mode, noQueue, lockDelay, write
		return a
	}
	switch {
	case l == nil:
		for _, m := range x.b.Modes {
			out = append(out, with(OpAcquire, m, false, false, false))
			if x.b.LockDelay > 0 {
				out = append(out, with(OpAcquire, m, false, true, false))
			}
			if x.b.NoQueue {
				out = append(out, with(OpAcquire, m, true, false, false))
			}
		}
		for p := uint32(1); p <= min(2, x.b.Semaphore); p++ {
			a := with(OpAcquire, PR, false, false, false)
			a.permits = uint8(p)
			out = append(out, a)
		}
	case !granted:
		out = append(out, with(OpCancel, 0, false, false, false))
	default:
		writes := x.b.WriteValue && l.Mode.WritesValue()
		if l.Request != 0 {
			out = append(out, with(OpCancel, 0, false, false, false))
		} else {
			for _, m := range x.b.Modes {
				if m == l.Mode {
					continue
				}
				out = append(out, with(OpConvert, m, false, false, false))
				if x.b.NoQueue {
					out = append(out, with(OpConvert, m, true, false, false))
				}
				if writes && Weaker(m, l.Mode) {
					out = append(out, with(OpConvert, m, false, false, true))
				}
			}
		}
		out = append(out, with(OpRelease, 0, false, false, false))
		if writes {
			out = append(out, with(OpRelease, 0, false, false, true))
		}
	}
	return out
}

// renews reports whether a keepalive of id would move its deadline (one
// sent in the instant of the open or of another keepalive changes nothing).
func (x *explorer) renews(st *State, id SessionID) bool {
	for _, s := range st.Sessions {
		if s.ID == id {
			return s.Deadline != st.Now.Add(s.TTL)
		}
	}
	return false
}

// findLock returns id's lock on the named resource, and whether it is granted.
func findLock(st *State, name string, id SessionID) (*LockState, bool) {
	for i := range st.Resources {
		r := &st.Resources[i]
		if r.Name != name {
			continue
		}
		if l := lockIn(r.Granted, id); l != nil {
			return l, true
		}
		return lockIn(r.Waiting, id), false
	}
	return nil, false
}

// input builds the Input of an input action. Clients number their requests
// 1, 2, ... and acknowledge every outcome they have: all ids below the
// first one still pending.
func (x *explorer) input(st *State, a action) Input {
	tick := time.Second
	in := Input{Op: a.op, Session: sessionName(int(a.session))}
	if a.op == OpOpen {
		in.TTL = time.Duration(x.b.TTL) * tick
		return in
	}
	if !a.op.Mutating() {
		return in
	}
	var ss *SessionState
	for i := range st.Sessions {
		if st.Sessions[i].ID == in.Session {
			ss = &st.Sessions[i]
		}
	}
	last, acked := ss.Acked, RequestID(0)
	for _, r := range ss.Replies {
		last = max(last, r.Request)
		if r.Result.Pending && acked == 0 {
			acked = r.Request - 1
		}
	}
	if acked == 0 {
		acked = last
	}
	in.Request, in.Acked = last+1, acked
	in.Resource = resourceName(int(a.resource))
	in.Mode, in.NoQueue = a.mode, a.noQueue
	if (a.op == OpAcquire || a.op == OpConvert) && !a.noQueue {
		in.WaitTimeout = time.Duration(x.b.WaitTimeout) * tick
	}
	if a.lockDelay {
		in.LockDelay = time.Duration(x.b.LockDelay) * tick
	}
	if a.permits != 0 {
		in.Permits, in.Limit = uint32(a.permits), x.b.Semaphore
	}
	if a.write {
		in.WriteValue, in.Value = true, exploreValue
	}
	return in
}

// ---- the search ----

type explorer struct {
	b     Bounds
	lim   Limits
	seen  map[[16]byte]int32 // normal form hash -> node
	seeds [2]maphash.Seed
	nodes []exNode
	buf   []byte // normal form under construction
	acts  []action
}

type exNode struct {
	parent    int32 // -1 for the empty state
	act       action
	crashes   uint8
	failovers uint8
}

// frontierItem is a state still to expand. Only its model is kept (its
// State is computed again when it is expanded), to keep the frontier small.
type frontierItem struct {
	node  int32
	model *Model
}

// Explore checks every state of the model reachable within b. It stops at
// the first violation, which it reports with a shortest path to it.
func Explore(b Bounds) (Report, error) {
	if err := b.Validate(); err != nil {
		return Report{}, err
	}
	x := &explorer{b: b, lim: b.Limits(), seen: map[[16]byte]int32{},
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	m := NewModel(x.lim)
	m.bugs = b.bugs
	st := m.State()
	x.seen[x.key(&st, 0, 0)] = 0
	x.nodes = append(x.nodes, exNode{parent: -1})
	rep := Report{Complete: true}
	if err := CheckInvariants(&st, &x.lim); err != nil {
		rep.States, rep.Violation = 1, x.counterexample(0, nil, err)
		return rep, nil
	}
	frontier := []frontierItem{{node: 0, model: m}}
	for len(frontier) > 0 {
		var next []frontierItem
		for i := range frontier {
			var err error
			if next, err = x.expand(frontier[i], next, &rep); err != nil {
				rep.States = len(x.nodes)
				return rep, nil
			}
			frontier[i] = frontierItem{} // let the model go
			if len(x.nodes) >= b.StatesMax {
				rep.States, rep.Complete = len(x.nodes), false
				return rep, nil
			}
		}
		if len(next) > 0 {
			rep.Depth++
		}
		frontier = next
	}
	rep.States = len(x.nodes)
	return rep, nil
}

// errViolation stops the search; the violation is in the report.
var errViolation = errors.New("violation")

// expand takes every action from it, appending the states not seen before
// to next. On a violation it fills rep.Violation and returns errViolation.
func (x *explorer) expand(it frontierItem, next []frontierItem, rep *Report) ([]frontierItem, error) {
	before := it.model.State()
	crashes, failovers := int(x.nodes[it.node].crashes), int(x.nodes[it.node].failovers)
	x.acts = x.actions(&before, crashes, failovers, x.acts)
	for _, a := range x.acts {
		rep.Transitions++
		m := it.model.Clone()
		reply, events, mid := x.apply(m, &before, a)
		after := m.State()
		if err := x.checkStep(&before, mid, &after, a, reply, events); err != nil {
			rep.Violation = x.counterexample(it.node, &a, err)
			return next, errViolation
		}
		c := crashes + int(boolUint8(a.kind == actRecover))
		f := failovers + int(boolUint8(a.kind == actFailover))
		k := x.key(&after, c, f)
		if _, ok := x.seen[k]; ok {
			continue
		}
		n := int32(len(x.nodes))
		x.seen[k] = n
		x.nodes = append(x.nodes, exNode{parent: it.node, act: a, crashes: uint8(c), failovers: uint8(f)})
		if err := CheckInvariants(&after, &x.lim); err != nil {
			rep.Violation = x.counterexample(n, nil, err)
			return next, errViolation
		}
		next = append(next, frontierItem{node: n, model: m})
	}
	return next, nil
}

// apply performs a on m (whose state is st). For a restart or a failover it
// also returns the state between Recover or Failover and the Tick that fires
// what fell due.
func (x *explorer) apply(m *Model, st *State, a action) (Result, []Event, *State) {
	tick := time.Second
	switch a.kind {
	case actTick:
		return Result{}, m.Tick(m.Now().Add(time.Duration(a.ticks) * tick)), nil
	case actRecover:
		now := m.Now().Add(time.Duration(a.ticks) * tick)
		m.Recover(now)
		mid := m.State()
		return Result{}, m.Tick(now), &mid
	case actFailover:
		now := m.Now().Add(time.Duration(a.ticks) * tick)
		m.Failover(now, time.Duration(x.b.TTL)*tick)
		mid := m.State()
		return Result{}, m.Tick(now), &mid
	}
	in := x.input(st, a)
	r, events := m.Step(m.Now(), in)
	return r, events, nil
}

// checkStep checks one transition: CheckTransition, and the properties that
// need to know what the step was.
//
// ValueValidity: in a step that applies no input (a tick or a restart),
// nothing writes the value block, so a resource whose PW or EX holder
// expired in it must have its block marked invalid, if it still exists.
//
// NoAckLost: a restart (Recover) or a failover keeps everything but the
// clock and the sessions' deadlines: every lock, queue, value block, token
// and recorded outcome the clients were told of survives it.
//
// FailoverGrace: after a failover at instant T (the clock once moved) with
// grace g, every session's deadline is at least T+g, so no lease a client
// may still believe in runs out on the new leader, and at least what it was
// before, so no session expires earlier than it would have without the
// failover.
//
// A Deadlock refusal is justified by the deadlock oracle (stuck.go), which
// does not use the wait-for graph that decided it; and every reply matches
// the state it leaves (checkReply).
func (x *explorer) checkStep(before, mid, after *State, a action, reply Result, events []Event) error {
	if mid != nil {
		if err := CheckTransition(before, mid); err != nil {
			if a.kind == actFailover {
				return fmt.Errorf("failover: %w", err)
			}
			return fmt.Errorf("restart: %w", err)
		}
		if err := checkRecovered(before, mid); err != nil {
			return err
		}
		if a.kind == actFailover {
			if err := checkFailover(before, mid, time.Duration(x.b.TTL)*time.Second); err != nil {
				return err
			}
		}
		if err := CheckTransition(mid, after); err != nil {
			return err
		}
	} else if err := CheckTransition(before, after); err != nil {
		return err
	}
	if a.kind == actInput {
		in := x.input(before, a)
		if reply.Code == Deadlock {
			if err := CheckDeadlockRefusal(before, in, reply.Detail); err != nil {
				return err
			}
		}
		return checkReply(after, in, reply)
	}
	for _, e := range events {
		if e.Kind != Expired {
			continue
		}
		for _, r := range before.Resources {
			h := lockIn(r.Granted, e.Session)
			if h == nil || !h.Mode.WritesValue() {
				continue
			}
			for _, ra := range after.Resources {
				if ra.Name == r.Name && ra.ValueValid {
					return fmt.Errorf("resource %q: value block still valid after its %v holder %s expired",
						r.Name, h.Mode, ShortID(e.Session))
				}
			}
		}
	}
	return nil
}

// checkReply: the reply to an input is what the state after it says. A
// grant names the lock's mode and token and the resource's value block; a
// pending request is queued under its id; every outcome is recorded, except
// a refusal for too many unacknowledged outcomes (the client may reuse the
// id once it can acknowledge some).
func checkReply(after *State, in Input, r Result) error {
	if !in.Op.Mutating() || r.Code == LimitExceeded && strings.HasPrefix(r.Detail, "request:") {
		return nil
	}
	for _, s := range after.Sessions {
		if s.ID != in.Session {
			continue
		}
		i := slices.IndexFunc(s.Replies, func(rp Reply) bool { return rp.Request == in.Request })
		if i < 0 || !s.Replies[i].Result.Equal(&r) {
			return fmt.Errorf("%v %s request=%d: reply %v is not the recorded outcome", in.Op, ShortID(in.Session), in.Request, r)
		}
	}
	l, granted := findLock(after, in.Resource, in.Session)
	switch {
	case r.Pending:
		if l == nil || l.Request != in.Request {
			return fmt.Errorf("%v %s: reply Pending but request %d is not queued", in.Op, ShortID(in.Session), in.Request)
		}
	case r.Code == OK && r.Token != 0:
		rs := after.Resources[slices.IndexFunc(after.Resources, func(x ResourceState) bool { return x.Name == in.Resource })]
		if !granted || l.Mode != r.Mode || l.Token != r.Token || r.ValueValid != rs.ValueValid || !bytes.Equal(r.Value, rs.Value) {
			return fmt.Errorf("%v %s %s: reply %v does not match the lock and value block", in.Op, ShortID(in.Session), in.Resource, r)
		}
	}
	return nil
}

func checkRecovered(before, mid *State) error {
	b, m := *before, *mid
	b.Now, m.Now = 0, 0
	b.Sessions = slices.Clone(b.Sessions)
	m.Sessions = slices.Clone(m.Sessions)
	for i := range b.Sessions {
		b.Sessions[i].Deadline = 0
	}
	for i := range m.Sessions {
		m.Sessions[i].Deadline = 0
	}
	if !b.Equal(&m) {
		return fmt.Errorf("restart lost or changed acknowledged state:\nbefore:\n%safter:\n%s", b.String(), m.String())
	}
	return nil
}

// checkFailover checks FailoverGrace (see checkStep) on the state mid just
// after a failover with grace from before.
func checkFailover(before, mid *State, grace time.Duration) error {
	for _, s := range mid.Sessions {
		if s.Deadline < mid.Now.Add(grace) {
			return fmt.Errorf("failover at %v with grace %v: session %s has deadline %v, before the grace ends",
				mid.Now, grace, ShortID(s.ID), s.Deadline)
		}
		for _, b := range before.Sessions {
			if b.ID == s.ID && s.Deadline < b.Deadline {
				return fmt.Errorf("failover: session %s's deadline went from %v to %v: it would expire earlier than without the failover",
					ShortID(s.ID), b.Deadline, s.Deadline)
			}
		}
	}
	return nil
}

// counterexample replays the path to node n (then action last, if any)
// from the empty state and records each step.
func (x *explorer) counterexample(n int32, last *action, err error) *Counterexample {
	var path []action
	for i := n; i > 0; i = x.nodes[i].parent {
		path = append(path, x.nodes[i].act)
	}
	slices.Reverse(path)
	if last != nil {
		path = append(path, *last)
	}
	m := NewModel(x.lim)
	m.bugs = x.b.bugs
	st := m.State()
	c := &Counterexample{Err: err}
	for _, a := range path {
		r, events, _ := x.apply(m, &st, a)
		st = m.State()
		c.Steps = append(c.Steps, TraceStep{Action: x.describe(a), Reply: r,
			Events: slices.Clone(events), State: st, input: a.kind == actInput})
	}
	return c
}

// ---- normal form ----

// key hashes the normal form of st (see Explore) with the restarts and
// failovers used,
// with two independently seeded 64-bit hashes. A collision would hide a
// state; with 128 bits it is vanishingly unlikely at the sizes explored here
// (below 2^-70 for ten million states). The seeds are random per run, which
// changes no result: only equality of keys is ever used.
func (x *explorer) key(st *State, crashes, failovers int) [16]byte {
	x.buf = normalForm(st, crashes, failovers, x.buf[:0])
	var k [16]byte
	binary.LittleEndian.PutUint64(k[:8], maphash.Bytes(x.seeds[0], x.buf))
	binary.LittleEndian.PutUint64(k[8:], maphash.Bytes(x.seeds[1], x.buf))
	return k
}

func normalForm(st *State, crashes, failovers int, b []byte) []byte {
	now := st.Now
	rel := func(t Time) int64 {
		if t == 0 {
			return -1 << 62 // "none" stays distinct from every instant
		}
		return int64(t - now)
	}
	var toks []Token
	toks = append(toks, st.TokenMax)
	for _, r := range st.Resources {
		for _, l := range r.Granted {
			toks = append(toks, l.Token)
		}
	}
	slices.Sort(toks)
	toks = slices.Compact(toks)
	rank := func(t Token) uint64 {
		if t == 0 {
			return 0
		}
		i, _ := slices.BinarySearch(toks, t)
		if toks[0] != 0 {
			i++
		}
		return uint64(i)
	}
	reqRank := map[SessionID]map[RequestID]uint64{}
	b = appendUint(b, uint64(crashes), uint64(failovers), rank(st.TokenMax))
	for _, s := range st.Sessions {
		b = append(b, s.ID[:]...)
		b = appendUint(b, uint64(s.TTL), uint64(rel(s.Deadline)))
		// Outcomes from the oldest pending request on, by rank.
		rk := map[RequestID]uint64{}
		reqRank[s.ID] = rk
		first := slices.IndexFunc(s.Replies, func(r Reply) bool { return r.Result.Pending })
		if first >= 0 {
			for i, r := range s.Replies[first:] {
				rk[r.Request] = uint64(i + 1)
				b = appendUint(b, boolUint(r.Result.Pending))
			}
		}
		b = appendUint(b, 2) // end of outcomes
	}
	lock := func(b []byte, l *LockState) []byte {
		req := uint64(0)
		if l.Request != 0 {
			req = reqRank[l.Session][l.Request]
		}
		b = append(b, l.Session[:]...)
		return appendUint(b, uint64(l.Mode), uint64(l.Want), uint64(l.Permits), rank(l.Token), req,
			uint64(rel(l.Deadline)), uint64(l.LockDelay), uint64(l.Notified+1))
	}
	for _, r := range st.Resources {
		b = appendString(b, r.Name)
		b = appendString(b, string(r.Value))
		b = appendUint(b, boolUint(r.ValueValid), uint64(rel(r.DelayUntil)), uint64(r.Limit), uint64(len(r.Granted)),
			uint64(len(r.Converting)), uint64(len(r.Waiting)))
		for i := range r.Granted {
			b = lock(b, &r.Granted[i])
		}
		for _, id := range r.Converting {
			b = append(b, id[:]...)
		}
		for i := range r.Waiting {
			b = lock(b, &r.Waiting[i])
		}
	}
	for _, t := range st.Tombstones {
		b = append(b, t.Session[:]...)
		b = appendUint(b, boolUint(t.Closed))
	}
	return b
}

func appendUint(b []byte, vs ...uint64) []byte {
	for _, v := range vs {
		for v >= 0x80 {
			b = append(b, byte(v)|0x80)
			v >>= 7
		}
		b = append(b, byte(v))
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = appendUint(b, uint64(len(s)))
	return append(b, s...)
}

func boolUint8(v bool) uint8 { return uint8(boolUint(v)) }

func boolUint(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}
