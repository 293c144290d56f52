package engine

import "github.com/bouncer-dlm/bouncer/spec"

// onCycle reports whether s lies on a cycle of the wait-for graph (see
// spec/graph.go for the edges), by a depth-first search from s's queued
// requests. A session with no queued request has no edge out, so it is on
// no cycle: the common, uncontended case costs nothing.
func (c *Core) onCycle(s *session) bool {
	if s.pending.n == 0 {
		return false
	}
	c.visit++
	stack := append(c.stack[:0], s)
	found := false
	for len(stack) > 0 && !found {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for p := x.pending.head; p != nil && !found; p = p.link(pendingList).next {
			stack, found = c.blockers(p, s, stack)
		}
	}
	clear(stack)
	c.stack = stack[:0]
	return found
}

// blockers pushes onto stack the unvisited sessions that queued request p
// waits for, by the rules of spec/graph.go, reporting whether target is
// among them. It walks back from p through the requests queued ahead of it
// in serving order (the conversion queue, then the wait queue), keeping the
// modes wanted from each one visited up to p: a request ahead is waited
// for if its mode conflicts with one of those. Then a holder is waited for
// if its mode conflicts with a mode wanted at or ahead of p, its own
// conversion aside. O(queue + holders) for each request searched.
func (c *Core) blockers(p *lock, target *session, stack []*session) ([]*session, bool) {
	push := func(t *session) bool {
		if t == target {
			return true
		}
		if t.visit != c.visit {
			t.visit = c.visit
			stack = append(stack, t)
		}
		return false
	}
	r := p.res
	if bugzooOn && planted("deadlock-ahead-edges") {
		// The rule before it was found wrong: a new request also waits for
		// every conversion and every request ahead of it, compatible or not.
		for h := r.granted.head; h != nil; h = h.link(grantedList).next {
			if h != p && !spec.Compatible(h.mode, p.want) && push(h.sess) {
				return stack, true
			}
		}
		for q := aheadOf(p); q != nil && !p.granted; q = aheadOf(q) {
			if push(q.sess) {
				return stack, true
			}
		}
		return stack, false
	}
	// A request ahead of one already walked in this search waits for a
	// subset of what that one waits for (its prefix is shorter), so it adds
	// nothing: skip it. This keeps a search O(queue + holders) per resource
	// however many of the queue's sessions it visits.
	key := servingKey(p)
	if r.ext.searchVisit == c.visit && key <= r.ext.searchKey {
		return stack, false
	}
	r.ext.searchVisit, r.ext.searchKey = c.visit, key
	if r.ext.limit != 0 {
		return stack, semaphoreBlockers(p, push)
	}
	var wanted [spec.ModeCount]int32 // modes wanted at or ahead of p
	wanted[p.want]++
	behind := modeBit(p.want) // modes wanted from the request visited up to p
	for q := aheadOf(p); q != nil; q = aheadOf(q) {
		if conflictMask[q.want]&behind != 0 && push(q.sess) {
			return stack, true
		}
		behind |= modeBit(q.want)
		wanted[q.want]++
	}
	for h := r.granted.head; h != nil; h = h.link(grantedList).next {
		own := spec.Mode(spec.ModeCount) // the mode of h's own request at or ahead of p, if any
		if h.request != 0 && (!p.granted || h.queueSeq() <= p.queueSeq()) {
			own = h.want
		}
		for m := spec.Mode(0); m < spec.ModeCount; m++ {
			n := wanted[m]
			if m == own {
				n--
			}
			if n > 0 && !spec.Compatible(h.mode, m) {
				if push(h.sess) {
					return stack, true
				}
				break
			}
		}
	}
	return stack, false
}

// semaphoreBlockers is blockers on a semaphore, where two requests
// conflict when their permits add up past the limit: a request ahead is
// waited for if its permits and the most wanted by one visited up to p do,
// and a holder if its permits and the most wanted at or ahead of p do.
// (A semaphore has no conversions, so a holder has no request of its own.)
// push is blockers': it reports whether the session pushed is the target.
func semaphoreBlockers(p *lock, push func(*session) bool) bool {
	r := p.res
	limit := uint64(r.ext.limit)
	most := uint64(p.permits)
	for q := aheadOf(p); q != nil; q = aheadOf(q) {
		if uint64(q.permits)+most > limit && push(q.sess) {
			return true
		}
		most = max(most, uint64(q.permits))
	}
	for h := r.granted.head; h != nil; h = h.link(grantedList).next {
		if uint64(h.permits)+most > limit && push(h.sess) {
			return true
		}
	}
	return false
}

// servingKey orders a resource's queued requests as they are served: the
// conversion queue, then the wait queue, each in queue order.
func servingKey(q *lock) uint64 {
	if q.granted {
		return q.queueSeq()
	}
	return 1<<63 | q.queueSeq()
}

// aheadOf returns the request served just before q: the one ahead of it in
// its queue, or, for the head of the wait queue, the tail of the
// conversion queue.
func aheadOf(q *lock) *lock {
	if prev := q.link(queueList).prev; prev != nil || q.granted {
		return prev
	}
	return q.res.ext.converting.tail
}

func modeBit(m spec.Mode) uint8 { return 1 << m }

// conflictMask[m] has the bit of every mode that conflicts with m.
var conflictMask = func() (masks [spec.ModeCount]uint8) {
	for a := spec.Mode(0); a < spec.ModeCount; a++ {
		for b := spec.Mode(0); b < spec.ModeCount; b++ {
			if !spec.Compatible(a, b) {
				masks[a] |= modeBit(b)
			}
		}
	}
	return masks
}()
