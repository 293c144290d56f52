package protocol

import (
	"github.com/bouncer-dlm/bouncer/spec"
)

// Sends returns what to hand to the transport now: the open (until
// answered), keepalives on their schedule, new requests, resends of
// unanswered ones after RetryInterval, polls of queued ones after
// PollInterval, and the close (until answered). Nothing is sent while
// disconnected. The slice is reused by the next call.
func (s *Session) Sends(now spec.Time) []Send {
	s.expireIfDue(now)
	s.sends = s.sends[:0]
	if !s.connected || s.status == StatusClosed {
		return s.sends
	}
	if s.closing {
		if now >= s.closeNext {
			s.send(now, callClose, 0, spec.Input{Op: spec.OpClose, Session: s.id})
			s.closeNext = now.Add(s.cfg.RetryInterval)
		}
		return s.sends
	}
	switch s.status {
	case StatusOpening:
		if now >= s.openNext {
			if !s.openSent {
				s.openFirst, s.openSent = now, true
			}
			s.send(now, callOpen, 0, spec.Input{Op: spec.OpOpen, Session: s.id, TTL: s.cfg.TTL})
			s.openNext = now.Add(s.cfg.RetryInterval)
		}
		return s.sends
	case StatusLost:
		return s.sends
	}
	if now >= s.kaNext {
		s.send(now, callKeepAlive, 0, spec.Input{Op: spec.OpKeepAlive, Session: s.id})
		// Until answered, try again after RetryInterval; an answer moves
		// the next one to KeepAliveInterval after this send.
		s.kaNext = now.Add(min(s.cfg.RetryInterval, s.cfg.KeepAliveInterval))
	}
	for _, r := range s.reqs {
		if r.sent && now < r.next {
			continue
		}
		if r.sent && r.queued && bugzooOn && planted("client-no-poll") {
			continue
		}
		s.send(now, callRequest, r.in.Request, r.in)
		r.sent = true
		if r.queued {
			r.next = now.Add(s.cfg.PollInterval)
		} else {
			r.next = now.Add(s.cfg.RetryInterval)
		}
	}
	return s.sends
}

func (s *Session) send(now spec.Time, kind callKind, req spec.RequestID, in spec.Input) {
	s.nextCall++
	s.calls[s.nextCall] = callRef{kind: kind, req: req, sentAt: now}
	s.sends = append(s.sends, Send{Call: s.nextCall, Input: in})
}

// NextDeadline returns when the session next needs a Tick (or Sends): a
// resend, a keepalive, a poll, the lease running out. (A lock turning
// AtRisk needs no call: Lock and Locks compute it from now.)
func (s *Session) NextDeadline() (spec.Time, bool) {
	var at spec.Time
	ok := false
	take := func(t spec.Time) {
		if !ok || t < at {
			at, ok = t, true
		}
	}
	if s.status == StatusClosed {
		return 0, false
	}
	if d, live := s.LeaseDeadline(); live && !s.closing {
		take(d)
	}
	if !s.connected {
		return at, ok
	}
	switch {
	case s.closing:
		take(s.closeNext)
	case s.status == StatusOpening:
		take(s.openNext)
	case s.status == StatusOpen:
		take(s.kaNext)
		for _, r := range s.reqs {
			if r.queued && bugzooOn && planted("client-no-poll") {
				continue
			}
			take(r.next)
		}
	}
	return at, ok
}

// Tick lets time pass: the lease may run out.
func (s *Session) Tick(now spec.Time) { s.expireIfDue(now) }

// Disconnected tells the session the connection is down: nothing is sent
// until Connected, and every call in flight counts as lost (answers that
// still arrive are used).
func (s *Session) Disconnected(now spec.Time) {
	s.expireIfDue(now)
	s.connected = false
	for _, r := range s.reqs {
		r.sent = false
	}
}

// Connected tells the session a connection is up: everything unanswered is
// sent again at once, with a keepalive.
func (s *Session) Connected(now spec.Time) {
	s.expireIfDue(now)
	s.connected = true
	s.openNext, s.closeNext, s.kaNext = now, now, now
	for _, r := range s.reqs {
		r.sent, r.next = false, now
	}
}

// Reply hands the session the node's answer to call.
func (s *Session) Reply(now spec.Time, call CallID, res spec.Result) {
	s.expireIfDue(now)
	c, ok := s.calls[call]
	if !ok || s.status == StatusClosed {
		return
	}
	delete(s.calls, call)
	switch c.kind {
	case callOpen:
		s.openReply(now, res)
	case callKeepAlive:
		s.keepAliveReply(now, c, res)
	case callClose:
		s.closeReply(res)
	case callRequest:
		s.requestReply(now, c.req, res)
	}
}

func (s *Session) openReply(now spec.Time, res spec.Result) {
	if s.status != StatusOpening {
		return
	}
	if res.Code != spec.OK {
		s.lose(now, true, res)
		return
	}
	// The node created the session on receiving the first open to arrive,
	// which was sent no earlier than the first attempt.
	s.status, s.opened, s.base = StatusOpen, true, s.openFirst
	if bugzooOn && planted("client-lease-from-receive") {
		s.base = now
	}
	s.kaNext = s.base.Add(s.cfg.KeepAliveInterval)
	s.updates = append(s.updates, Update{Kind: Opened})
	s.expireIfDue(now)
}

func (s *Session) keepAliveReply(now spec.Time, c callRef, res spec.Result) {
	if s.status != StatusOpen {
		return
	}
	if res.Code != spec.OK {
		s.lose(now, true, res)
		return
	}
	sent := c.sentAt
	if bugzooOn && planted("client-lease-from-receive") {
		sent = now
	}
	if sent > s.base {
		s.base = sent
		s.kaNext = sent.Add(s.cfg.KeepAliveInterval)
	}
	s.dropOldKeepAlives(now)
}

// dropOldKeepAlives forgets unanswered keepalives sent more than a lease
// ago: an answer to one could no longer extend the lease.
func (s *Session) dropOldKeepAlives(now spec.Time) {
	for id, c := range s.calls {
		// map order: only which entries are deleted, all of them
		if c.kind == callKeepAlive && c.sentAt.Add(s.lease) <= now {
			delete(s.calls, id)
		}
	}
}

func (s *Session) closeReply(res spec.Result) {
	if !s.closing {
		return
	}
	s.endRequests()
	s.status = StatusClosed
	s.calls = map[CallID]callRef{}
	s.updates = append(s.updates, Update{Kind: SessionClosed, Result: res})
}

func (s *Session) requestReply(now spec.Time, id spec.RequestID, res spec.Result) {
	_, r := s.findReq(id)
	if r == nil || s.status != StatusOpen {
		return
	}
	if res.Pending {
		if !r.queued {
			r.queued, r.next = true, now.Add(s.cfg.PollInterval)
			s.updates = append(s.updates, Update{Kind: Queued, Request: id, Op: r.in.Op, Resource: r.in.Resource})
		}
		return
	}
	s.resolve(id, res)
	if res.Code == spec.SessionExpired || res.Code == spec.UnknownSession {
		s.lose(now, true, res)
	}
}

// Event hands the session an event the node sent it.
func (s *Session) Event(now spec.Time, e spec.Event) {
	s.expireIfDue(now)
	if e.Session != s.id || s.status != StatusOpen {
		return
	}
	switch e.Kind {
	case spec.Completed:
		if _, r := s.findReq(e.Request); r != nil {
			s.resolve(e.Request, e.Result)
		}
	case spec.Blocking:
		if l := s.locks[e.Resource]; l != nil && l.held && !s.closing {
			s.updates = append(s.updates, Update{Kind: Blocking, Resource: e.Resource, Mode: e.Mode})
		}
	case spec.Expired:
		s.lose(now, true, spec.Refuse(spec.SessionExpired, spec.DetailSessionExpired))
	}
}

// resolve ends request id with res: the lock table learns it, the
// application is told, and the acknowledgement floor moves.
func (s *Session) resolve(id spec.RequestID, res spec.Result) {
	i, r := s.findReq(id)
	assert(r != nil && !s.resolved[id] && id > s.acked, "a request is resolved once, while tracked")
	s.reqs = append(s.reqs[:i], s.reqs[i+1:]...)
	for cid, c := range s.calls {
		// map order: only which entries are deleted, all of them
		if c.kind == callRequest && c.req == id {
			delete(s.calls, cid)
		}
	}
	s.learn(r, res)
	s.resolved[id] = true
	for s.resolved[s.acked+1] {
		delete(s.resolved, s.acked+1)
		s.acked++
	}
	s.updates = append(s.updates, Update{Kind: Done, Request: id, Op: r.in.Op, Resource: r.in.Resource, Result: res})
}

// learn applies the outcome of r to the lock table.
func (s *Session) learn(r *request, res spec.Result) {
	l := s.locks[r.in.Resource]
	if l == nil {
		return
	}
	ok := res.Code == spec.OK
	switch r.in.Op {
	case spec.OpAcquire:
		l.acquire = 0
		if ok && !s.closing {
			l.held, l.mode, l.token, l.grant = true, res.Mode, res.Token, r.in.Request
			l.value, l.valueValid = res.Value, res.ValueValid
		}
	case spec.OpConvert:
		l.op = 0
		switch {
		case ok:
			if res.Token != l.token {
				l.grant = r.in.Request
			}
			l.mode, l.token, l.value, l.valueValid = res.Mode, res.Token, res.Value, res.ValueValid
		case res.Code == spec.NotHeld:
			l.held = false
		default: // refused: the node kept the old mode
			l.mode = r.from
		}
	case spec.OpRelease:
		l.op, l.held = 0, false
	case spec.OpCancel:
		l.cancel = 0
	}
	if !l.held && l.acquire == 0 && l.op == 0 && l.cancel == 0 {
		delete(s.locks, l.resource)
	}
}

// lose makes the session lost (terminal): every unresolved request ends
// with an unknown outcome and every lock is lost.
func (s *Session) lose(now spec.Time, byNode bool, why spec.Result) {
	if s.status == StatusLost || s.status == StatusClosed {
		return
	}
	s.status = StatusLost
	s.endRequests()
	for cid, c := range s.calls {
		// map order: only which entries are deleted, all of them
		if c.kind != callClose {
			delete(s.calls, cid)
		}
	}
	s.updates = append(s.updates, Update{Kind: SessionLost, Result: why, ByNode: byNode})
}

// endRequests ends every unresolved request with an unknown outcome.
func (s *Session) endRequests() {
	for _, r := range s.reqs {
		s.updates = append(s.updates, Update{Kind: Done, Request: r.in.Request, Op: r.in.Op,
			Resource: r.in.Resource, Unknown: true, Result: spec.Refuse(spec.SessionExpired, DetailUnknownOutcome)})
	}
	s.reqs = nil
	for _, l := range s.locks {
		// map order: every lock is treated alike
		l.acquire, l.op, l.cancel = 0, 0, 0
	}
}
