package engine

import "github.com/bouncer-dlm/bouncer/spec"

// onCycle reports whether s lies on a cycle of the wait-for graph (see
// spec/graph.go for the edges). It searches from s's queued requests with
// fewer edges than the model draws but the same reachability: a new request
// behind others on a resource follows only the request just ahead of it,
// which in turn reaches everything further ahead, down to the head, which
// reaches the conversions. A session with no queued request has no edge
// out, so it is on no cycle: the common, uncontended case costs nothing.
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
		for p := x.pending.head; p != nil && !found; p = p.links[pendingList].next {
			stack, found = c.blockers(p, s, stack)
		}
	}
	clear(stack)
	c.stack = stack[:0]
	return found
}

// blockers pushes onto stack the unvisited sessions that queued request p
// waits for, reporting whether target is among them.
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
	for h := r.granted.head; h != nil; h = h.links[grantedList].next {
		if h != p && !spec.Compatible(h.mode, p.want) && push(h.sess) {
			return stack, true
		}
	}
	if p.granted {
		return stack, false // a conversion waits only for incompatible holders
	}
	if ahead := p.links[queueList].prev; ahead != nil {
		return stack, push(ahead.sess)
	}
	for q := r.converting.head; q != nil; q = q.links[queueList].next {
		if push(q.sess) {
			return stack, true
		}
	}
	return stack, false
}
