package sim

import (
	"slices"
	"time"

	"github.com/bouncer-dlm/bouncer/client/protocol"
	"github.com/bouncer-dlm/bouncer/linearizability"
	"github.com/bouncer-dlm/bouncer/spec"
)

// sessRec is one session as the simulator sees it: its client core, and
// what its client observed, in true time, for the history and the checkers.
type sessRec struct {
	id     spec.SessionID
	client int
	proto  *protocol.Session
	ttl    time.Duration

	calls     map[protocol.CallID]callRec
	openSent  bool
	openFirst spec.Time // true time of the first open sent
	opened    bool
	base      spec.Time // true send time of the last answered keepalive (or first open)

	resources []string // every resource named, sorted
	order     []spec.RequestID
	reqs      map[spec.RequestID]*linearizability.Entry

	closeCall   bool
	closeAt     spec.Time
	closeKnown  bool
	closeReturn spec.Time
	closeResult spec.Result
	endKnown    bool      // the client learned the node had ended the session
	endAt       spec.Time // when
	closed      bool      // the close was answered: nothing more arrives

	beliefs []belief // locks believed held now, by resource
}

type callRec struct {
	op spec.Op
	at spec.Time
}

// sent records a call the session's core sent.
func (r *sessRec) sent(now spec.Time, s protocol.Send) {
	if r.calls == nil {
		r.calls = map[protocol.CallID]callRec{}
	}
	r.calls[s.Call] = callRec{op: s.Input.Op, at: now}
	if s.Input.Op == spec.OpOpen && !r.openSent {
		r.openSent, r.openFirst = true, now
	}
}

// observeReply learns from a reply what the node says of the session: an
// answered open or keepalive proves it was live when it was stepped, so
// the node cannot expire it before the call's send time plus the TTL.
func (r *sessRec) observeReply(now spec.Time, call protocol.CallID, res *spec.Result) {
	c, ok := r.calls[call]
	if !ok {
		return
	}
	switch {
	case res.Code == spec.OK && c.op == spec.OpOpen && !r.opened:
		r.opened, r.base = true, max(r.base, r.openFirst)
	case res.Code == spec.OK && c.op == spec.OpKeepAlive && r.opened:
		r.base = max(r.base, c.at)
	case res.Code == spec.SessionExpired || res.Code == spec.UnknownSession:
		r.nodeEnded(now)
	}
}

func (r *sessRec) observeEvent(now spec.Time, e *spec.Event) {
	if e.Kind == spec.Expired {
		r.nodeEnded(now)
	}
}

func (r *sessRec) nodeEnded(now spec.Time) {
	if !r.endKnown {
		r.endKnown, r.endAt = true, now
	}
}

// called records a request the workload made.
func (r *sessRec) called(now spec.Time, id spec.RequestID, in spec.Input) {
	in.Session, in.Request, in.Value = r.id, id, spec.CloneValue(in.Value)
	e := &linearizability.Entry{Client: r.client, Input: in, Call: now, Return: linearizability.Never}
	r.reqs[id] = e
	r.order = append(r.order, id)
	if i, found := slices.BinarySearch(r.resources, in.Resource); !found {
		r.resources = slices.Insert(r.resources, i, in.Resource)
	}
}

func (r *sessRec) requestResource(id spec.RequestID) string {
	if e := r.reqs[id]; e != nil {
		return e.Input.Resource
	}
	return ""
}

func (r *sessRec) queued(now spec.Time, id spec.RequestID) {
	if e := r.reqs[id]; e != nil && !e.Queued {
		e.Queued, e.Pending = true, now
	}
}

func (r *sessRec) finished(now spec.Time, u protocol.Update) {
	if e := r.reqs[u.Request]; e != nil && !u.Unknown {
		e.Known, e.Return, e.Output = true, now, u.Result
	}
}

func (r *sessRec) lost(now spec.Time, byNode bool) {
	if byNode {
		r.nodeEnded(now)
	}
}

func (r *sessRec) closeCalled(now spec.Time) {
	if !r.closeCall {
		r.closeCall, r.closeAt = true, now
	}
}

func (r *sessRec) closeAnswered(now spec.Time, res spec.Result) {
	r.closeKnown, r.closeReturn, r.closeResult = true, now, res
	r.closed = true
	r.nodeEnded(now)
}

// history is what every client observed, as linearizability entries.
func (s *Sim) history() []linearizability.Entry {
	n := 0
	for _, r := range s.sessions {
		n += len(r.order) + 2 // its requests, a close, an expiry
	}
	h := make([]linearizability.Entry, 0, n)
	for _, r := range s.sessions {
		if len(r.resources) == 0 {
			continue
		}
		for _, id := range r.order {
			e := *r.reqs[id]
			r.bound(&e)
			if s.cluster != nil && e.Input.WaitTimeout > 0 {
				// A new leader's clock may be ahead of the old one's by up
				// to the skew plus what their rates drifted apart since
				// the start: the log's time jumps, and a wait times out
				// that much early in true time.
				apart := s.opts.SkewMax + time.Duration((int64(e.Call)*s.opts.DriftPPM+million-1)/million)
				e.Input.WaitTimeout = max(0, e.Input.WaitTimeout-s.nodeFast(e.Input.WaitTimeout)-apart)
			}
			h = append(h, e)
		}
		if r.closeCall {
			e := linearizability.Entry{Client: r.client, Input: spec.Input{Op: spec.OpClose, Session: r.id},
				Resources: r.resources, Call: r.closeAt, Return: linearizability.Never}
			if r.closeKnown {
				e.Known, e.Return, e.Output = true, r.closeReturn, r.closeResult
			}
			r.bound(&e)
			h = append(h, e)
		}
		if r.opened && !(r.closeKnown && r.closeResult.Code == spec.OK) {
			e := linearizability.Entry{Client: r.client, Input: spec.Input{Session: r.id},
				Resources: r.resources, Call: r.base.Add(r.ttl - s.nodeFast(r.ttl)), Return: linearizability.Never}
			if r.endKnown {
				e.Known, e.Return = true, r.endAt
			}
			h = append(h, e)
		}
	}
	return h
}

// nodeFast is how much earlier in true time than d a span of d on the
// node's clock may end: in a cluster, a replica's clock runs up to half
// the drift bound fast (the clients' the other half). One node keeps true
// time.
func (s *Sim) nodeFast(d time.Duration) time.Duration {
	if s.cluster == nil {
		return 0
	}
	return time.Duration((int64(d)*(s.opts.DriftPPM/2) + million - 1) / million)
}

// bound ends an unknown outcome where the client learned its session had
// ended (no earlier than the call: a request called after that took effect
// at once or never).
func (r *sessRec) bound(e *linearizability.Entry) {
	if !e.Known && r.endKnown {
		e.Return = max(r.endAt, e.Call)
	}
}
