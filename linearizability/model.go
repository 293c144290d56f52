package linearizability

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/bouncer-dlm/bouncer/spec"
)

// The per-resource model: the rules of spec/model.go for one resource,
// written for Porcupine. It is a nondeterministic model (a step returns
// every state the rules allow), because a resource's history alone cannot
// decide three things:
//
//   - Deadlock depends on other resources' queues: wherever spec refuses
//     with Deadlock (a request that would queue, a conversion granted in
//     place), the model allows both the refusal and the normal course; the
//     spec model, replayed by the simulator on the same inputs, checks the
//     choice exactly. A queued request is never refused with Deadlock later:
//     granting the head of a queue adds no wait-for edge.
//   - LimitExceeded depends on global counts: any request may be refused
//     with it, changing nothing.
//   - A lock-delay ends at an instant the model does not see: while one may
//     be running, every step may first end it (and grant what it held up).
//
// Time-driven changes are operations of the history: a session's expiry is
// an Expire operation (see Entry); a wait timeout happens at the linearization
// point of the request's outcome. Tokens are checked against the tokens the
// model has seen: each grant's token must exceed every token observed for
// the resource before the grant.
//
// Operations: each request is applied once (opApply, linearized where the
// node stepped it) and, if it may wait (acquire, convert), ends once
// (opOutcome, where the node completed it). Close and Expire end a session.

type opKind uint8

const (
	opApply opKind = iota + 1
	opOutcome
	opClose
	opExpire
)

// input is a Porcupine operation's input.
type input struct {
	kind       opKind
	session    int32
	request    spec.RequestID
	op         spec.Op // opApply
	mode       spec.Mode
	noQueue    bool
	permits    uint32 // of a semaphore of limit (both 0: a lock)
	limit      uint32
	lockDelay  bool
	writeValue bool
	value      string
	resource   string
	name       string // the session, for people
}

// output is what the client observed of an operation. For an opApply:
// Pending (the node said so), or known (the immediate result), or final
// (res is the request's final result, which may have come at once or after
// a wait), or nothing. For the other operations: known, or nothing.
type output struct {
	known   bool
	pending bool
	final   bool
	res     spec.Result
}

// expect is what the client observed as a queued request's final outcome:
// the code, or -1 if it never learned it. The model uses it only to drop
// branches early that the request's opOutcome would reject anyway.
type expect int8

const unknownOutcome expect = -1

func (out *output) expect() expect {
	if out.final || out.known && !out.pending {
		return expect(out.res.Code)
	}
	return unknownOutcome
}

func (e expect) allows(c spec.Code) bool { return e == unknownOutcome || e == expect(c) }

type holder struct {
	s       int32
	mode    spec.Mode
	want    spec.Mode      // == mode unless a conversion is queued
	conv    spec.RequestID // the queued conversion, 0 if none
	expect  expect         // the queued conversion's observed outcome
	floor   spec.Token     // its token exceeds this
	delay   bool           // taken with a lock-delay
	permits uint32         // of a semaphore
}

type waiter struct {
	s       int32
	mode    spec.Mode
	req     spec.RequestID
	expect  expect
	delay   bool
	permits uint32
}

// outcome is a request's result recorded by the model but not yet
// observed by its opOutcome.
type outcome struct {
	s     int32
	req   spec.RequestID
	code  spec.Code
	mode  spec.Mode
	floor spec.Token // a grant: its token exceeds this
	value string
	valid bool
	grant bool // a grant: mode, token, value
	ended bool // refused because the session had ended: UnknownSession also fits
}

type ended struct {
	s      int32
	closed bool
}

// state is the model's state of one resource. States are never changed
// once built: steps copy them.
type state struct {
	holders  []holder // in order of first grant
	conv     []int32  // sessions with a queued conversion, FIFO
	waiting  []waiter // FIFO
	value    string
	valid    bool
	delayed  bool   // a lock-delay may still run
	limit    uint32 // a semaphore's, while the resource is in use; 0: a lock
	tokenMax spec.Token
	ended    []ended   // by session
	done     []outcome // by session, request
	key      string    // canonical encoding, computed on demand
}

func initState() *state { return &state{valid: true} }

func (s *state) clone() *state {
	c := *s
	c.holders = slices.Clone(s.holders)
	c.conv = slices.Clone(s.conv)
	c.waiting = slices.Clone(s.waiting)
	c.ended = slices.Clone(s.ended)
	c.done = slices.Clone(s.done)
	c.key = ""
	return &c
}

// step returns every state that in can lead to from s with out observed.
func step(s *state, in *input, out *output) []*state {
	var next []*state
	for _, t := range s.undelay() {
		switch in.kind {
		case opApply:
			next = append(next, t.apply(in, out)...)
		case opOutcome:
			next = append(next, t.outcome(in, out)...)
		case opClose:
			next = append(next, t.close(in, out)...)
		case opExpire:
			next = append(next, t.expire(in)...)
		}
	}
	return next
}

// undelay returns copies of s: as it is, and, if a lock-delay may be
// running, with it ended.
func (s *state) undelay() []*state {
	if !s.delayed {
		return []*state{s.clone()}
	}
	t := s.clone()
	t.delayed = false
	return append(t.settle(), s.clone())
}

// ---- requests ----

func (s *state) apply(in *input, out *output) []*state {
	if r, ok := s.endedResult(in); ok {
		return s.finish(in, out, r)
	}
	// LimitExceeded depends on counts beyond this resource; it changes nothing.
	var branches []*state
	if !out.known && !out.final && !out.pending || out.known && out.res.Code == spec.LimitExceeded {
		branches = s.clone().finish(in, out, outcome{code: spec.LimitExceeded})
	}
	switch in.op {
	case spec.OpAcquire:
		return append(branches, s.acquire(in, out)...)
	case spec.OpConvert:
		return append(branches, s.convert(in, out)...)
	case spec.OpRelease:
		return append(branches, s.release(in, out)...)
	case spec.OpCancel:
		return append(branches, s.cancel(in, out)...)
	}
	return branches
}

func (s *state) acquire(in *input, out *output) []*state {
	if s.holder(in.session) >= 0 || s.waiter(in.session) >= 0 {
		return s.finish(in, out, outcome{code: spec.AlreadyHeld})
	}
	inUse := len(s.holders) > 0 || len(s.waiting) > 0 || s.delayed
	if inUse && s.limit != in.limit {
		return s.finish(in, out, outcome{code: spec.InvalidArgument})
	}
	s.limit = in.limit
	// Strict FIFO: granted at once only if nothing waits.
	if len(s.conv) == 0 && len(s.waiting) == 0 && !s.delayed && s.fits(in.mode, in.permits) {
		s.holders = append(s.holders, holder{s: in.session, mode: in.mode, want: in.mode, floor: s.tokenMax,
			delay: in.lockDelay, permits: in.permits})
		return s.finish(in, out, s.grant(in.mode, s.tokenMax))
	}
	if in.noQueue {
		return s.finish(in, out, outcome{code: spec.WouldBlock})
	}
	refused := s.clone().finish(in, out, outcome{code: spec.Deadlock})
	s.waiting = append(s.waiting, waiter{s: in.session, mode: in.mode, req: in.request, expect: out.expect(),
		delay: in.lockDelay, permits: in.permits})
	return append(refused, s.queued(in, out)...)
}

func (s *state) convert(in *input, out *output) []*state {
	i := s.holder(in.session)
	if i < 0 {
		return s.finish(in, out, outcome{code: spec.NotHeld})
	}
	h := &s.holders[i]
	if h.conv != 0 {
		return s.finish(in, out, outcome{code: spec.AlreadyHeld})
	}
	if s.limit != 0 {
		return s.finish(in, out, outcome{code: spec.InvalidArgument}) // permits are never converted
	}
	down := spec.Weaker(in.mode, h.mode)
	if in.writeValue && (!h.mode.WritesValue() || !down) {
		return s.finish(in, out, outcome{code: spec.InvalidArgument})
	}
	if down { // in place, keeping the token
		h.mode, h.want = in.mode, in.mode
		if in.writeValue {
			s.value, s.valid = in.value, true
		}
		r := s.grant(h.mode, h.floor)
		return finishAll(s.settle(), in, out, r)
	}
	refused := s.clone().finish(in, out, outcome{code: spec.Deadlock})
	if !s.delayed && s.compatible(in.mode, in.session) {
		h.mode, h.want, h.floor = in.mode, in.mode, s.tokenMax
		r := s.grant(in.mode, s.tokenMax)
		return append(refused, finishAll(s.settle(), in, out, r)...)
	}
	if in.noQueue {
		return s.finish(in, out, outcome{code: spec.WouldBlock})
	}
	h.want, h.conv, h.expect = in.mode, in.request, out.expect()
	s.conv = append(s.conv, in.session)
	return append(refused, s.queued(in, out)...)
}

func (s *state) release(in *input, out *output) []*state {
	i := s.holder(in.session)
	if i < 0 {
		return s.finish(in, out, outcome{code: spec.NotHeld})
	}
	if in.writeValue && !s.holders[i].mode.WritesValue() {
		return s.finish(in, out, outcome{code: spec.InvalidArgument})
	}
	if s.holders[i].conv != 0 {
		s.unqueue(in.session, spec.Cancelled)
		i = s.holder(in.session)
	}
	s.holders = slices.Delete(s.holders, i, i+1)
	if in.writeValue {
		s.value, s.valid = in.value, true
	}
	return finishAll(s.settle(), in, out, outcome{code: spec.OK})
}

func (s *state) cancel(in *input, out *output) []*state {
	if !s.isQueued(in.session) {
		return s.finish(in, out, outcome{code: spec.NotHeld})
	}
	s.unqueue(in.session, spec.Cancelled)
	return finishAll(s.settle(), in, out, outcome{code: spec.OK})
}

// endedResult is the refusal of a request of an ended session.
func (s *state) endedResult(in *input) (outcome, bool) {
	for _, e := range s.ended {
		if e.s == in.session {
			code := spec.SessionExpired
			if e.closed {
				code = spec.UnknownSession
			}
			return outcome{code: code, ended: true}, true
		}
	}
	return outcome{}, false
}

// grant is the result of a grant in mode now.
func (s *state) grant(mode spec.Mode, floor spec.Token) outcome {
	return outcome{code: spec.OK, mode: mode, floor: floor, value: s.value, valid: s.valid, grant: true}
}

// finish ends an applied request at once with r: the observed output must
// match, or r is recorded for the request's opOutcome.
func (s *state) finish(in *input, out *output, r outcome) []*state {
	if out.pending {
		return nil
	}
	if out.known {
		if !s.matches(&out.res, &r) {
			return nil
		}
		return []*state{s}
	}
	if out.final && !s.clone().matches(&out.res, &r) {
		return nil
	}
	if in.op == spec.OpAcquire || in.op == spec.OpConvert { // they have an opOutcome
		r.s, r.req = in.session, in.request
		s.record(r)
	}
	return []*state{s}
}

func finishAll(states []*state, in *input, out *output, r outcome) []*state {
	var next []*state
	for _, t := range states {
		next = append(next, t.finish(in, out, r)...)
	}
	return next
}

// queued: the request waits; the node answered Pending, if anything, and
// the final outcome, if known, is one a wait can end with.
func (s *state) queued(in *input, out *output) []*state {
	if out.known {
		return nil
	}
	if out.final {
		switch out.res.Code {
		case spec.OK, spec.Timeout, spec.Cancelled, spec.SessionExpired:
		default:
			return nil
		}
	}
	return []*state{s}
}

// matches reports whether an observed result fits a recorded one, and
// learns its token.
func (s *state) matches(res *spec.Result, r *outcome) bool {
	if res.Code != r.code {
		return r.ended && res.Code == spec.UnknownSession
	}
	if r.code != spec.OK || !r.grant {
		return true
	}
	if res.Mode != r.mode || string(res.Value) != r.value || res.ValueValid != r.valid || res.Token <= r.floor {
		return false
	}
	s.tokenMax = max(s.tokenMax, res.Token)
	return true
}

// ---- outcomes and the ends of sessions ----

func (s *state) outcome(in *input, out *output) []*state {
	if i := s.doneIndex(in.session, in.request); i >= 0 {
		r := s.done[i]
		s.done = slices.Delete(s.done, i, i+1)
		if out.known && !s.matches(&out.res, &r) {
			return nil
		}
		return []*state{s}
	}
	if !s.queuedRequest(in.session, in.request) {
		return nil // not applied yet
	}
	// Still queued: only a wait timeout (or an unknown end) takes it out.
	if out.known && out.res.Code != spec.Timeout {
		return nil
	}
	s.unqueue(in.session, spec.Timeout)
	i := s.doneIndex(in.session, in.request)
	s.done = slices.Delete(s.done, i, i+1)
	return s.settle()
}

func (s *state) close(in *input, out *output) []*state {
	for _, e := range s.ended {
		if e.s != in.session {
			continue
		}
		want := spec.SessionExpired
		if e.closed {
			want = spec.OK // a retried close
		}
		if out.known && out.res.Code != want && out.res.Code != spec.UnknownSession {
			return nil
		}
		return []*state{s}
	}
	var branches []*state
	if !out.known {
		branches = append(branches, s.clone()) // it never reached the node
	} else if out.res.Code != spec.OK {
		return nil
	}
	return append(branches, s.endSession(in.session, true)...)
}

func (s *state) expire(in *input) []*state {
	for _, e := range s.ended {
		if e.s == in.session {
			return []*state{s}
		}
	}
	return s.endSession(in.session, false)
}

// endSession ends a session as spec's endSession does for this resource:
// its queued request ends, its lock goes (an expired PW/EX holder
// invalidates the value block; an expired holder with a lock-delay starts
// it), then the resource is settled.
func (s *state) endSession(id int32, closed bool) []*state {
	if s.isQueued(id) {
		code := spec.SessionExpired
		if closed {
			code = spec.Cancelled
		}
		s.unqueue(id, code)
	}
	if i := s.holder(id); i >= 0 {
		h := s.holders[i]
		if !closed && h.mode.WritesValue() {
			s.valid = false
		}
		if !closed && h.delay && h.mode != spec.NL {
			s.delayed = true
		}
		s.holders = slices.Delete(s.holders, i, i+1)
	}
	i, _ := slices.BinarySearchFunc(s.ended, id, func(e ended, id int32) int { return int(e.s - id) })
	s.ended = slices.Insert(s.ended, i, ended{s: id, closed: closed})
	return s.settle()
}

// ---- the grant rules ----

// settle grants what the rules allow, as spec's settle: the head of the
// conversion queue while it fits, then new requests from the head of the
// wait queue; an unused resource drops its value block.
func (s *state) settle() []*state {
	for !s.delayed && len(s.conv) > 0 {
		h := &s.holders[s.holder(s.conv[0])]
		if !s.compatible(h.want, s.conv[0]) {
			break
		}
		if !h.expect.allows(spec.OK) {
			return nil // the rules grant it now, but it was not granted
		}
		h.mode, h.floor = h.want, s.tokenMax
		s.endConversion(0, s.grant(h.want, s.tokenMax))
	}
	for len(s.conv) == 0 && len(s.waiting) > 0 && !s.delayed && s.fits(s.waiting[0].mode, s.waiting[0].permits) {
		w := s.waiting[0]
		if !w.expect.allows(spec.OK) {
			return nil // the rules grant it now, but it was not granted
		}
		s.waiting = s.waiting[1:]
		s.holders = append(s.holders, holder{s: w.s, mode: w.mode, want: w.mode, floor: s.tokenMax, delay: w.delay,
			permits: w.permits})
		r := s.grant(w.mode, s.tokenMax)
		r.s, r.req = w.s, w.req
		s.record(r)
	}
	if len(s.holders) == 0 && len(s.waiting) == 0 && !s.delayed {
		s.value, s.valid, s.limit = "", true, 0
	}
	return []*state{s}
}

// endConversion takes the i-th queued conversion off the queue with r.
func (s *state) endConversion(i int, r outcome) {
	h := &s.holders[s.holder(s.conv[i])]
	r.s, r.req = h.s, h.conv
	h.want, h.conv, h.expect = h.mode, 0, 0
	s.conv = slices.Delete(s.conv, i, i+1)
	s.record(r)
}

// unqueue ends the queued request of session id with code.
func (s *state) unqueue(id int32, code spec.Code) {
	if i := s.waiter(id); i >= 0 {
		w := s.waiting[i]
		s.waiting = slices.Delete(s.waiting, i, i+1)
		s.record(outcome{s: id, req: w.req, code: code})
		return
	}
	s.endConversion(slices.Index(s.conv, id), outcome{code: code})
}

// fits reports whether a new lock in mode with permits could be granted
// beside the holders: compatible with them, and on a semaphore within its
// limit.
func (s *state) fits(mode spec.Mode, permits uint32) bool {
	if s.limit == 0 {
		return s.compatible(mode, -1)
	}
	held := uint64(permits)
	for _, h := range s.holders {
		held += uint64(h.permits)
	}
	return held <= uint64(s.limit)
}

func (s *state) compatible(mode spec.Mode, except int32) bool {
	for _, h := range s.holders {
		if h.s != except && !spec.Compatible(h.mode, mode) {
			return false
		}
	}
	return true
}

func (s *state) holder(id int32) int {
	return slices.IndexFunc(s.holders, func(h holder) bool { return h.s == id })
}

func (s *state) waiter(id int32) int {
	return slices.IndexFunc(s.waiting, func(w waiter) bool { return w.s == id })
}

func (s *state) isQueued(id int32) bool { return s.waiter(id) >= 0 || slices.Contains(s.conv, id) }

func (s *state) queuedRequest(id int32, req spec.RequestID) bool {
	if i := s.waiter(id); i >= 0 {
		return s.waiting[i].req == req
	}
	i := s.holder(id)
	return i >= 0 && s.holders[i].conv == req
}

func compareOutcome(a outcome, s int32, req spec.RequestID) int {
	if a.s != s {
		return int(a.s - s)
	}
	switch {
	case a.req < req:
		return -1
	case a.req > req:
		return 1
	}
	return 0
}

func (s *state) record(r outcome) {
	i, found := slices.BinarySearchFunc(s.done, r.s, func(a outcome, id int32) int { return compareOutcome(a, id, r.req) })
	if found {
		s.done[i] = r
		return
	}
	s.done = slices.Insert(s.done, i, r)
}

func (s *state) doneIndex(id int32, req spec.RequestID) int {
	i, found := slices.BinarySearchFunc(s.done, id, func(a outcome, id int32) int { return compareOutcome(a, id, req) })
	if !found {
		return -1
	}
	return i
}

// ---- identity, for Porcupine's cache ----

func (s *state) canonical() string {
	if s.key != "" {
		return s.key
	}
	b := make([]byte, 0, 64)
	num := func(v uint64) { b = strconv.AppendUint(b, v, 36); b = append(b, ',') }
	for _, h := range s.holders {
		num(uint64(h.s))
		num(uint64(h.mode)<<8 | uint64(h.want)<<4 | boolBit(h.delay))
		num(uint64(h.expect + 1))
		num(uint64(h.conv))
		num(uint64(h.floor))
		num(uint64(h.permits))
	}
	b = append(b, '|')
	for _, id := range s.conv {
		num(uint64(id))
	}
	b = append(b, '|')
	for _, w := range s.waiting {
		num(uint64(w.s))
		num(uint64(w.mode)<<4 | boolBit(w.delay))
		num(uint64(w.expect + 1))
		num(uint64(w.req))
		num(uint64(w.permits))
	}
	b = append(b, '|')
	num(boolBit(s.valid)<<1 | boolBit(s.delayed))
	num(uint64(s.limit))
	num(uint64(s.tokenMax))
	for _, e := range s.ended {
		num(uint64(e.s)<<1 | boolBit(e.closed))
	}
	b = append(b, '|')
	for _, r := range s.done {
		num(uint64(r.s))
		num(uint64(r.req))
		num(uint64(r.code)<<8 | uint64(r.mode)<<4 | boolBit(r.grant)<<2 | boolBit(r.valid)<<1 | boolBit(r.ended))
		num(uint64(r.floor))
		b = strconv.AppendQuote(b, r.value)
	}
	b = append(b, '|')
	b = strconv.AppendQuote(b, s.value)
	s.key = string(b)
	return s.key
}

func boolBit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func (s *state) hash() uint64 {
	h := fnv.New64a()
	h.Write([]byte(s.canonical()))
	return h.Sum64()
}

// describe renders the state for the visualization.
func (s *state) describe(names []string) string {
	var b strings.Builder
	name := func(id int32) string {
		if int(id) < len(names) {
			return names[id]
		}
		return fmt.Sprintf("s%d", id)
	}
	b.WriteString("granted:")
	for _, h := range s.holders {
		fmt.Fprintf(&b, " %s %v", name(h.s), h.mode)
		if h.conv != 0 {
			fmt.Fprintf(&b, "->%v #%d", h.want, h.conv)
		}
	}
	if len(s.waiting) > 0 {
		b.WriteString("; waiting:")
		for _, w := range s.waiting {
			fmt.Fprintf(&b, " %s %v #%d", name(w.s), w.mode, w.req)
		}
	}
	fmt.Fprintf(&b, "; value %q", s.value)
	if !s.valid {
		b.WriteString(" invalid")
	}
	if s.delayed {
		b.WriteString("; lock-delay may run")
	}
	fmt.Fprintf(&b, "; token > %d", s.tokenMax)
	for _, r := range s.done {
		fmt.Fprintf(&b, "; %s #%d ended %v", name(r.s), r.req, r.code)
	}
	return b.String()
}
