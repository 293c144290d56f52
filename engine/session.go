package engine

import (
	"slices"
	"sort"

	"github.com/bouncer-dlm/bouncer/spec"
)

// replyTable holds a session's recorded outcomes, sorted by request id.
// Clients mostly send ids in order and acknowledge in order, so outcomes
// are appended at the end and forgotten from the front: the live entries
// are buf[start:], and both ends cost O(1) without allocating. An
// out-of-order id or a pending outcome among forgotten ones shifts entries.
type replyTable struct {
	buf   []reply
	start int
}

func (t *replyTable) live() []reply { return t.buf[t.start:] }

func (t *replyTable) len() int { return len(t.buf) - t.start }

// find returns the position of request id among the live outcomes, or
// where it would go.
func (t *replyTable) find(id spec.RequestID) (int, bool) {
	live := t.live()
	i := sort.Search(len(live), func(i int) bool { return live[i].id >= id })
	return i, i < len(live) && live[i].id == id
}

// put records the outcome of request id, replacing a pending one (whose
// digest stays); it returns the entry and whether it was there before.
func (t *replyTable) put(id spec.RequestID, digest uint64, res spec.Result) (*reply, bool) {
	i, ok := t.find(id)
	if ok {
		assert(t.buf[t.start+i].res.Pending, "an outcome is recorded twice (only a pending one is replaced)")
		t.buf[t.start+i].res = res
		return &t.buf[t.start+i], true
	}
	if t.start > 0 && len(t.buf) == cap(t.buf) { // reuse the forgotten front
		n := copy(t.buf, t.buf[t.start:])
		clear(t.buf[n:])
		t.buf, t.start = t.buf[:n], 0
	}
	t.buf = slices.Insert(t.buf, t.start+i, reply{id: id, digest: digest, res: res})
	return &t.buf[t.start+i], false
}

// prunable counts the outcomes an acknowledgement up to acked lets the node
// forget: those at or below it that are not still pending.
func (t *replyTable) prunable(acked spec.RequestID) int {
	n := 0
	for _, r := range t.live() {
		if r.id > acked {
			break
		}
		if !r.res.Pending {
			n++
		}
	}
	return n
}

// prune forgets the outcomes acknowledged up to acked, calling forget for
// each, and keeps pending ones.
func (t *replyTable) prune(acked spec.RequestID, forget func(*reply)) {
	live := t.live()
	k, pending := 0, false
	for ; k < len(live) && live[k].id <= acked; k++ {
		if live[k].res.Pending {
			pending = true
		} else {
			forget(&live[k])
		}
	}
	if !pending { // the common case: drop a prefix
		clear(live[:k])
		t.start += k
		return
	}
	kept := live[:0]
	for _, r := range live[:k] {
		if r.res.Pending {
			kept = append(kept, r)
		}
	}
	n := len(kept) + copy(live[len(kept):], live[k:])
	clear(live[n:])
	t.buf = t.buf[:t.start+n]
}

// prune forgets the outcomes acknowledged up to acked. The new floor is
// not written on its own: it rides in the reply record that every request
// writes right after (see putReply), which saves a write per request.
func (c *Core) prune(s *session, acked spec.RequestID) {
	s.acked = acked
	s.replies.prune(acked, func(r *reply) { c.deleteReply(s, r) })
}

// record stores the outcome of request id (whose input has digest),
// replacing a pending one.
func (c *Core) record(s *session, id spec.RequestID, digest uint64, res spec.Result) {
	if bugzooOn && c.noReplies {
		return
	}
	r, existed := s.replies.put(id, digest, res)
	c.putReply(s, r, existed)
}

// complete ends a queued request of a live session with res: the outcome is
// recorded for retries and announced in a Completed event.
func (c *Core) complete(s *session, req spec.RequestID, resource string, res spec.Result) {
	c.record(s, req, 0, res) // pending until now: its digest is recorded
	c.emit(spec.Event{Kind: spec.Completed, Session: s.id, Request: req, Resource: resource, Result: res})
}

// endSession closes (closed) or expires a session, exactly as the model
// does: queued requests end, locks go (an expired PW/EX holder invalidates
// the value block; an expired holder with a lock-delay starts it), then
// every resource it touched is settled in name order.
func (c *Core) endSession(s *session, closed bool) {
	locks := c.ending[:0]
	for l := s.locks.head; l != nil; l = l.link(sessionList).next {
		locks = append(locks, l)
	}
	// The order reaches the outputs: by resource name, as the model does.
	sort.Slice(locks, func(i, j int) bool { return locks[i].res.name < locks[j].res.name })
	names := c.names[:0]
	for _, l := range locks {
		names = append(names, l.res.name)
	}
	clear(locks)
	c.ending = locks[:0]
	for _, name := range names {
		r := c.resources[name]
		l := r.lockOf(s)
		if bugzooOn && !closed && l.granted && planted("expiry-keeps-locks") {
			continue
		}
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
	live := s.replies.live()
	for i := range live {
		c.deleteReply(s, &live[i])
	}
	c.deleteSession(s)
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
		if until := c.now.Add(l.lockDelay); until > r.ext.delayUntil {
			x := c.extOf(r)
			x.delayUntil, changed = until, true
			c.timers.set(&x.delay, until)
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
	c.putTombstone(&t)
	if len(c.tombstones) > c.lim.TombstonesMax {
		old := c.tombstones[0]
		c.tombstones = c.tombstones[1:]
		delete(c.tombIndex, old.session)
		c.deleteTombstone(old.seq)
	}
}
