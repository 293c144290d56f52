package engine

import (
	"slices"
	"sort"

	"github.com/bouncer-dlm/bouncer/spec"
)

// find returns the position of request id among the session's recorded
// outcomes, or where it would go.
func (s *session) find(id spec.RequestID) (int, bool) {
	i := sort.Search(len(s.replies), func(i int) bool { return s.replies[i].id >= id })
	return i, i < len(s.replies) && s.replies[i].id == id
}

// prunable counts the outcomes an acknowledgement up to acked lets the node
// forget: those at or below it that are not still pending.
func (s *session) prunable(acked spec.RequestID) int {
	n := 0
	for _, r := range s.replies {
		if r.id > acked {
			break
		}
		if !r.res.Pending {
			n++
		}
	}
	return n
}

// prune forgets the outcomes acknowledged up to acked.
func (c *Core) prune(s *session, acked spec.RequestID) {
	if acked != s.acked {
		s.acked = acked
		c.putSession(s)
	}
	kept := s.replies[:0]
	i := 0
	for ; i < len(s.replies) && s.replies[i].id <= acked; i++ {
		if s.replies[i].res.Pending {
			kept = append(kept, s.replies[i])
		} else {
			c.writes.deleteReply(s.id, s.replies[i].id)
		}
	}
	if len(kept) == i {
		return // nothing forgotten
	}
	kept = append(kept, s.replies[i:]...)
	clear(s.replies[len(kept):])
	s.replies = kept
}

// record stores the outcome of request id, replacing a pending one.
func (c *Core) record(s *session, id spec.RequestID, res spec.Result) {
	i, ok := s.find(id)
	if ok {
		s.replies[i].res = res
	} else {
		s.replies = slices.Insert(s.replies, i, reply{id: id, res: res})
	}
	c.writes.putReply(s.id, id, &res)
}

// complete ends a queued request of a live session with res: the outcome is
// recorded for retries and announced in a Completed event.
func (c *Core) complete(s *session, req spec.RequestID, resource string, res spec.Result) {
	c.record(s, req, res)
	c.emit(spec.Event{Kind: spec.Completed, Session: s.id, Request: req, Resource: resource, Result: res})
}

// endSession closes (closed) or expires a session, exactly as the model
// does: queued requests end, locks go (an expired PW/EX holder invalidates
// the value block; an expired holder with a lock-delay starts it), then
// every resource it touched is settled in name order.
func (c *Core) endSession(s *session, closed bool) {
	names := c.names[:0]
	for name := range s.locks {
		names = append(names, name)
	}
	sort.Strings(names) // the order reaches the outputs
	for _, name := range names {
		l := s.locks[name]
		r := l.res
		if l.request != 0 {
			res := spec.Refuse(spec.SessionExpired, spec.DetailSessionExpired)
			if closed {
				res = spec.Refuse(spec.Cancelled, spec.DetailClosedCancelled)
			}
			c.emit(spec.Event{Kind: spec.Completed, Session: s.id, Request: l.request, Resource: name, Result: res})
			c.dequeue(l)
		}
		if l.granted {
			if !closed {
				c.expireHolder(r, l)
			}
			c.ungrant(l)
		}
		c.freeLock(l)
	}
	if !closed {
		c.emit(spec.Event{Kind: spec.Expired, Session: s.id})
	}
	c.timers.stop(&s.expiry)
	for _, r := range s.replies {
		c.writes.deleteReply(s.id, r.id)
	}
	c.writes.deleteSession(s.id)
	delete(c.sessions, s.id)
	c.addTombstone(s.id, closed)
	for _, name := range names {
		c.settle(c.resources[name])
	}
	clear(names)
	c.names = names[:0]
}

// expireHolder applies what the expiry of a holder means for its resource:
// the value block may be stale, and the lock-delay starts.
func (c *Core) expireHolder(r *resource, l *lock) {
	changed := false
	if l.mode.WritesValue() && r.valid {
		r.valid, changed = false, true
	}
	if l.lockDelay > 0 && l.mode != spec.NL {
		if until := c.now.Add(l.lockDelay); until > r.delayUntil {
			r.delayUntil, changed = until, true
			c.timers.set(&r.delay, until)
		}
	}
	if changed {
		c.putResource(r)
	}
}

func (c *Core) addTombstone(id spec.SessionID, closed bool) {
	c.tombSeq++
	t := tombstone{seq: c.tombSeq, session: id, closed: closed}
	c.tombstones = append(c.tombstones, t)
	c.tombIndex[id] = closed
	c.writes.putTombstone(&t)
	if len(c.tombstones) > c.lim.TombstonesMax {
		old := c.tombstones[0]
		c.tombstones = c.tombstones[1:]
		delete(c.tombIndex, old.session)
		c.writes.deleteTombstone(old.seq)
	}
}
