package spec

import (
	"bytes"
	"slices"
	"strings"
)

// The wait-for graph has a node per session and an edge S->T when a queued
// request of S cannot be granted until T acts (releases, converts down,
// cancels). On a resource, the queued requests are served in one order:
// the conversion queue, then the wait queue. A request is granted only
// after every request ahead of it, and together with those ahead that are
// compatible with it: a compatible request ahead is granted with you, not
// before you, so you wait for what it waits for, not for it. So a queued
// request p of S waits for T when, on p's resource:
//   - T holds a granted mode that conflicts with the mode wanted by p or by
//     a request queued ahead of p (other than T's own), since each of those
//     must be granted first; or
//   - T has a request queued ahead of p whose wanted mode conflicts with
//     the mode wanted by p or by a request queued between the two, since
//     once granted T's lock must go again before those can be granted.
// The first rule counts a holder's granted mode even against requests
// queued behind its own conversion: that conversion may time out or be
// cancelled, leaving the mode in place. It matters only for sideways
// conversions (PR<->CW), where the check is therefore conservative.
// A conversion whose own granted mode conflicts with a conversion queued
// ahead of it waits for its own session: the DLM's conversion deadlock.
// A request that would put its session on a cycle, by queueing or by being
// granted a stronger mode in place, is refused with Deadlock; so the graph
// is acyclic after every step.
//
// On a semaphore, two locks conflict when their permits add up to more than
// its limit: then neither can be granted while the other holds, which is
// all an edge claims, so every cycle is a real deadlock. A semaphore's
// waiter held up only by the sum of several holders waits for any of them,
// not for each: it gets no edge to them, so a deadlock that needs such a
// wait is not seen by the graph, and ends when a wait timeout runs out
// (stuck.go says which deadlocks the invariants therefore rule out).

// WaitsFor computes the wait-for graph of a state.
func WaitsFor(st *State) map[SessionID][]SessionID { return waitsFor(st, 0) }

func waitsFor(st *State, b bugs) map[SessionID][]SessionID {
	g := map[SessionID][]SessionID{}
	edge := func(from, to SessionID) {
		if !slices.Contains(g[from], to) {
			g[from] = append(g[from], to)
		}
	}
	for ri := range st.Resources {
		r := &st.Resources[ri]
		queue := servingOrder(r)
		for i, p := range queue {
			waits := waitedFor(r, queue[:i+1])
			if b.has(bugDeadlockAheadEdges) {
				waits = waitedForAll(r, queue[:i+1])
			}
			for _, t := range waits {
				edge(p.session, t)
			}
		}
	}
	for _, to := range g {
		// map order: each list is sorted alone.
		slices.SortFunc(to, compareIDs)
	}
	return g
}

// queued is a request in a resource's serving order.
type queued struct {
	session    SessionID
	want       Mode
	permits    uint32
	converting bool
}

// conflicts reports whether two locks on r, in modes a and b with permits
// pa and pb, cannot be granted together.
func conflicts(r *ResourceState, a Mode, pa uint32, b Mode, pb uint32) bool {
	if r.Limit != 0 {
		return uint64(pa)+uint64(pb) > uint64(r.Limit)
	}
	return !Compatible(a, b)
}

// servingOrder lists r's queued requests in the order they are served: the
// conversion queue, then the wait queue.
func servingOrder(r *ResourceState) []queued {
	var q []queued
	for _, id := range r.Converting {
		for _, l := range r.Granted {
			if l.Session == id {
				q = append(q, queued{id, l.Want, l.Permits, true})
			}
		}
	}
	for _, l := range r.Waiting {
		q = append(q, queued{l.Session, l.Mode, l.Permits, false})
	}
	return q
}

// waitedFor returns the sessions the last request of prefix (a prefix of
// r's serving order) waits for, by the two rules above.
func waitedFor(r *ResourceState, prefix []queued) []SessionID {
	var out []SessionID
	for _, h := range r.Granted {
		for _, x := range prefix {
			if x.session != h.Session && conflicts(r, h.Mode, h.Permits, x.want, x.permits) {
				out = append(out, h.Session)
				break
			}
		}
	}
	for j, e := range prefix[:len(prefix)-1] {
		for _, x := range prefix[j+1:] {
			if conflicts(r, e.want, e.permits, x.want, x.permits) {
				out = append(out, e.session)
				break
			}
		}
	}
	return out
}

// waitedForAll is the rule before it was found wrong (bugDeadlockAheadEdges):
// a queued conversion waits for the conflicting holders only, and a new
// request for the conflicting holders, every conversion and every request
// queued ahead of it, compatible or not.
func waitedForAll(r *ResourceState, prefix []queued) []SessionID {
	p := prefix[len(prefix)-1]
	var out []SessionID
	for _, h := range r.Granted {
		if h.Session != p.session && conflicts(r, h.Mode, h.Permits, p.want, p.permits) {
			out = append(out, h.Session)
		}
	}
	if p.converting {
		return out
	}
	for _, e := range prefix[:len(prefix)-1] {
		out = append(out, e.session)
	}
	return out
}

// OnCycle reports whether session s lies on a cycle of g.
func OnCycle(g map[SessionID][]SessionID, s SessionID) bool {
	seen := map[SessionID]bool{}
	stack := slices.Clone(g[s])
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == s {
			return true
		}
		if !seen[n] {
			seen[n] = true
			stack = append(stack, g[n]...)
		}
	}
	return false
}

// FindCycle returns the sessions of some cycle of g, or nil if g is acyclic.
func FindCycle(g map[SessionID][]SessionID) []SessionID {
	if acyclic(g) {
		return nil // the usual case, known after one pass
	}
	nodes := make([]SessionID, 0, len(g))
	for n := range g {
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, compareIDs)
	for _, n := range nodes {
		if OnCycle(g, n) {
			return cycleThrough(g, n)
		}
	}
	return nil
}

// acyclic reports whether g has no cycle, by depth-first search: g has a
// cycle exactly when the search follows an edge back to a node on its
// current path.
func acyclic(g map[SessionID][]SessionID) bool {
	const onPath, finished = 1, 2
	mark := make(map[SessionID]int8, len(g))
	var visit func(n SessionID) bool // false: a cycle was found
	visit = func(n SessionID) bool {
		mark[n] = onPath
		for _, next := range g[n] {
			if mark[next] == onPath || mark[next] == 0 && !visit(next) {
				return false
			}
		}
		mark[n] = finished
		return true
	}
	for n := range g {
		// map order: whether a cycle exists does not depend on it.
		if mark[n] == 0 && !visit(n) {
			return false
		}
	}
	return true
}

// cycleThrough returns a path n -> ... -> n in g (n must be on a cycle).
func cycleThrough(g map[SessionID][]SessionID, n SessionID) []SessionID {
	parent := map[SessionID]SessionID{}
	queue := []SessionID{n}
	seen := map[SessionID]bool{n: true}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		for _, y := range g[x] {
			if y == n {
				path := []SessionID{x}
				for x != n {
					x = parent[x]
					path = append(path, x)
				}
				slices.Reverse(path)
				return path
			}
			if !seen[y] {
				seen[y] = true
				parent[y] = x
				queue = append(queue, y)
			}
		}
	}
	return nil
}

func (m *Model) onCycle(s SessionID) bool {
	// Every edge starts at a queued request: the resources with one are
	// all the graph needs.
	st := State{Now: m.now}
	for _, r := range m.resources {
		if len(r.converting) > 0 || len(r.waiting) > 0 {
			st.Resources = append(st.Resources, r.state())
		}
	}
	slices.SortFunc(st.Resources, func(a, b ResourceState) int { return strings.Compare(a.Name, b.Name) })
	return OnCycle(waitsFor(&st, m.bugs), s)
}

func compareIDs(a, b SessionID) int { return bytes.Compare(a[:], b[:]) }
