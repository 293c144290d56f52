package sim

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bouncer-dlm/bouncer/client/protocol"
	"github.com/bouncer-dlm/bouncer/spec"
)

// ---- client-view mutual exclusion ----
//
// A client believes it holds a lock in a mode from the moment its core
// learns of the grant until it releases it, converts it down, closes the
// session, or its lease deadline (by its own drifting clock) passes,
// whichever comes first: a pause does not stop its clock. The claim: no two
// sessions ever believe at the same true instant that they hold
// conflicting modes on one resource.

// belief is a lock a session believes it holds, since start, until (at the
// latest) deadline, in true time.
type belief struct {
	resource string
	mode     spec.Mode
	permits  uint32 // of a semaphore
	start    spec.Time
	deadline spec.Time
}

// segment is a closed belief: [start, end) in true time.
type segment struct {
	session    spec.SessionID
	client     int
	mode       spec.Mode
	permits    uint32
	start, end spec.Time
}

// sampleBeliefs compares what the client's sessions believe now with what
// they believed, closing and opening belief segments.
func (c *simClient) sampleBeliefs() {
	s := c.s
	local := c.local()
	for _, rec := range c.sessions() {
		var now []belief
		if d, ok := rec.proto.LeaseDeadline(); ok {
			deadline := c.clk.trueAt(d)
			for _, l := range rec.proto.Locks(local) {
				if l.State.Believed() && l.Mode != spec.NL {
					now = append(now, belief{resource: l.Resource, mode: l.Mode, permits: l.Permits, start: s.now, deadline: deadline})
				}
			}
		}
		for _, b := range rec.beliefs {
			if i := findBelief(now, b.resource); i >= 0 && now[i].mode == b.mode {
				now[i].start = b.start
				if now[i].deadline != b.deadline {
					// The lease moved: the belief so far ends at the old
					// deadline if that passed first.
					if b.deadline < s.now {
						s.closeBelief(rec, b)
						now[i].start = s.now
					}
				}
				continue
			}
			s.closeBelief(rec, b)
		}
		if s.tr != nil {
			for _, b := range now {
				if i := findBelief(rec.beliefs, b.resource); i < 0 || rec.beliefs[i].mode != b.mode {
					s.tr.ev(s.now, "holds").int("c", int64(c.idx)).str("s", short(rec.id)).str("res", b.resource).
						str("mode", b.mode.String()).int("until", int64(b.deadline)).end()
				}
			}
		}
		rec.beliefs = now
	}
}

func findBelief(bs []belief, resource string) int {
	for i := range bs {
		if bs[i].resource == resource {
			return i
		}
	}
	return -1
}

func (s *Sim) closeBelief(rec *sessRec, b belief) {
	end := min(s.now, b.deadline)
	if end <= b.start {
		return
	}
	if s.tr != nil {
		s.tr.ev(s.now, "held").int("c", int64(rec.client)).str("s", short(rec.id)).str("res", b.resource).
			str("mode", b.mode.String()).int("from", int64(b.start)).int("to", int64(end)).end()
	}
	i := s.resIndex[b.resource]
	s.mutex[i] = append(s.mutex[i], segment{session: rec.id, client: rec.client, mode: b.mode, permits: b.permits,
		start: b.start, end: end})
}

func (s *Sim) segmentCount() int {
	n := 0
	for _, segs := range s.mutex {
		n += len(segs)
	}
	return n
}

// checkMutex closes the beliefs still open and looks for two sessions whose
// beliefs in conflicting modes overlap.
func (s *Sim) checkMutex() {
	for _, rec := range s.sessions {
		for _, b := range rec.beliefs {
			s.closeBelief(rec, b)
		}
		rec.beliefs = nil
	}
	for i, segs := range s.mutex {
		sort.SliceStable(segs, func(a, b int) bool { return segs[a].start < segs[b].start })
		if s.limits[i] != 0 {
			if msg := overLimit(segs, s.limits[i]); msg != "" {
				s.fail(Mutex, fmt.Sprintf("on %q, a semaphore of %d permits, %s", s.resources[i], s.limits[i], msg))
				return
			}
			continue
		}
		for a := range segs {
			for b := a + 1; b < len(segs) && segs[b].start < segs[a].end; b++ {
				x, y := &segs[a], &segs[b]
				if x.session != y.session && !spec.Compatible(x.mode, y.mode) {
					s.fail(Mutex, fmt.Sprintf("on %q client %d (session %s) believed it held %v from %v to %v, "+
						"and client %d (session %s) believed it held %v from %v to %v",
						s.resources[i], x.client, short(x.session), x.mode, x.start, x.end,
						y.client, short(y.session), y.mode, y.start, y.end))
					return
				}
			}
		}
	}
}

// overLimit looks for an instant at which the sessions of segs (sorted by
// start) believed they held more permits than limit together: a sweep over
// the segments' ends and starts, an end first at equal instants (segments
// are half-open). It describes the first such instant, or returns "".
func overLimit(segs []segment, limit uint32) string {
	type edge struct {
		at    spec.Time
		delta int64
		seg   int
	}
	edges := make([]edge, 0, 2*len(segs))
	for i, g := range segs {
		edges = append(edges, edge{g.start, int64(g.permits), i}, edge{g.end, -int64(g.permits), i})
	}
	sort.SliceStable(edges, func(a, b int) bool {
		if edges[a].at != edges[b].at {
			return edges[a].at < edges[b].at
		}
		return edges[a].delta < edges[b].delta
	})
	var held int64
	for _, e := range edges {
		held += e.delta
		if held > int64(limit) {
			var who []string
			for _, g := range segs {
				if g.start <= e.at && e.at < g.end {
					who = append(who, fmt.Sprintf("client %d (session %s) %d from %v to %v", g.client, short(g.session), g.permits, g.start, g.end))
				}
			}
			return fmt.Sprintf("at %v its holders believed they held %d permits: %s", e.at, held, strings.Join(who, "; "))
		}
	}
	return ""
}

// ---- the fenced resource ----
//
// Each resource guards a simulated storage service that rejects any write
// whose token is lower than the highest it has seen. Clients write to it
// under a PW or EX lock they believe they hold (a paused client writes on
// resuming, without looking again). The checker knows the true order of
// grants on each resource (the order the node sent them in): a write must
// be applied if and only if no write under a later grant was applied before
// it. A stale write applied breaks the fencing promise; a write of the
// latest grant rejected means tokens do not follow the order of grants.

type write struct {
	client   int
	session  spec.SessionID
	resource string
	token    spec.Token
	grant    spec.RequestID // the request whose grant gave the token
	at       spec.Time      // when it leaves the client
}

type fenceRes struct {
	maxToken spec.Token
	maxSeq   uint64 // the latest grant whose write was applied
	seqNext  uint64
	applied  int
}

type grantKey struct {
	session spec.SessionID
	request spec.RequestID
	token   spec.Token
}

func (s *Sim) sendWrite(w *write) {
	s.stats.Writes++
	s.schedule(event{at: s.delay(), kind: evFence, w: w})
}

func (s *Sim) fenceWrite(w *write) {
	f := &s.fence[s.resIndex[w.resource]]
	seq, known := s.grants[grantKey{w.session, w.grant, w.token}]
	accepted := w.token >= f.maxToken
	if s.tr != nil {
		s.tr.ev(s.now, "write").int("c", int64(w.client)).str("s", short(w.session)).str("res", w.resource).
			int("token", int64(w.token)).int("grant", int64(seq)).bool("applied", accepted).end()
	}
	if !known {
		s.fail(Fencing, fmt.Sprintf("client %d wrote to %q under request %d of session %s, which the node never granted",
			w.client, w.resource, w.grant, short(w.session)))
		return
	}
	stale := seq < f.maxSeq
	switch {
	case accepted && stale:
		s.fail(Fencing, fmt.Sprintf("at %v %q applied a stale write: client %d's token %d from grant #%d, after a write under grant #%d (highest token %d)",
			s.now, w.resource, w.client, w.token, seq, f.maxSeq, f.maxToken))
	case !accepted && !stale:
		s.fail(Fencing, fmt.Sprintf("at %v %q rejected client %d's write under the latest grant #%d: its token %d is below %d, the token of an earlier grant",
			s.now, w.resource, w.client, seq, w.token, f.maxToken))
	}
	if accepted {
		f.maxToken = max(f.maxToken, w.token)
		f.maxSeq = max(f.maxSeq, seq)
		f.applied++
	}
}

// ---- tokens ----
//
// Every token the node sends in a new grant must be greater than every
// token it sent before on that resource, across crashes and restarts, and
// no token may go to two sessions. (A retried request is answered with its
// recorded grant, perhaps sent for the first time if a crash kept the
// original answer in; a down-conversion keeps its token: so a token may
// come again, late, to the same session.)

type tokenRes struct {
	max   spec.Token
	owner map[spec.Token]spec.SessionID
}

type grantOut struct {
	res     int
	token   spec.Token
	session spec.SessionID
	request spec.RequestID
	retried bool // the recorded outcome of a request stepped before
}

// grantsOf lists the grants a turn's outputs carry, by resource and token:
// the node issues tokens from one counter, and replies and events do not
// say how they interleaved.
func (s *Sim) grantsOf(out *turnOut) []grantOut {
	var gs []grantOut
	for i, m := range out.msgs {
		in, r := &m.input, &out.replies[i]
		if (in.Op == spec.OpAcquire || in.Op == spec.OpConvert) && r.Code == spec.OK && r.Token != 0 {
			if ri, ok := s.resIndex[in.Resource]; ok {
				gs = append(gs, grantOut{ri, r.Token, in.Session, in.Request, out.retried != nil && out.retried[i]})
			}
		}
	}
	for _, e := range out.events {
		if e.Kind == spec.Completed && e.Result.Code == spec.OK && e.Result.Token != 0 {
			if ri, ok := s.resIndex[e.Resource]; ok {
				gs = append(gs, grantOut{ri, e.Result.Token, e.Session, e.Request, false})
			}
		}
	}
	sort.SliceStable(gs, func(i, j int) bool {
		if gs[i].res != gs[j].res {
			return gs[i].res < gs[j].res
		}
		return gs[i].token < gs[j].token
	})
	return gs
}

// stepped reports, for each input of a turn, whether the node stepped its
// request id before (in any turn, even one a crash may have undone), and
// remembers them all.
func (s *Sim) stepped(inputs []spec.Input) []bool {
	out := make([]bool, len(inputs))
	for i := range inputs {
		in := &inputs[i]
		if !in.Op.Mutating() {
			continue
		}
		k := grantKey{session: in.Session, request: in.Request}
		out[i] = s.seen[k]
		s.seen[k] = true
	}
	return out
}

// registerGrants learns the order of the grants of a turn the node
// stepped, for the fence: grants are told apart by session, request and
// token (a request a crash undid may be granted again, with another token).
func (s *Sim) registerGrants(out *turnOut) {
	for _, g := range s.grantsOf(out) {
		k := grantKey{g.session, g.request, g.token}
		if _, ok := s.grants[k]; !ok {
			f := &s.fence[g.res]
			f.seqNext++
			s.grants[k] = f.seqNext
		}
	}
}

// observeGrants judges the grants of a turn as they go out.
func (s *Sim) observeGrants(out *turnOut) {
	before := map[int]spec.Token{}
	for _, g := range s.grantsOf(out) {
		t := &s.tokens[g.res]
		if _, ok := before[g.res]; !ok {
			before[g.res] = t.max
		}
		owner, seen := t.owner[g.token]
		switch {
		case seen && owner != g.session:
			s.fail(Tokens, fmt.Sprintf("at %v token %d on %q went to session %s and to session %s",
				s.now, g.token, s.resources[g.res], short(owner), short(g.session)))
		case !seen && !g.retried && g.token <= before[g.res]:
			s.fail(Tokens, fmt.Sprintf("at %v session %s was granted %q with token %d, not above %d, sent before",
				s.now, short(g.session), s.resources[g.res], g.token, before[g.res]))
		}
		if !seen {
			t.owner[g.token] = g.session
		}
		t.max = max(t.max, g.token)
	}
}

// believedLocks is for tests: what client i's current session believes.
func (s *Sim) believedLocks(i int) []protocol.LockInfo {
	c := s.clients[i]
	if c.cur == nil {
		return nil
	}
	return c.believed(c.cur, c.local())
}
