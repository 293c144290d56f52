package spec

import (
	"bytes"
	"slices"
	"sort"
)

// The wait-for graph has a node per session and an edge S->T when a queued
// request of S cannot be granted until T changes: on the same resource,
//   - a queued conversion of S waits for every other holder T whose granted
//     mode is incompatible with the mode S wants;
//   - a queued new request of S waits for every holder T whose granted mode
//     is incompatible with it, for every T with a queued conversion
//     (conversions are served first), and for every T queued ahead of it
//     (strict FIFO).
// A request that would put its session on a cycle, whether by queueing
// (new edges out of S) or by being granted a stronger mode (new edges into
// S), is refused with Deadlock; so the graph is acyclic after every step.

// WaitsFor computes the wait-for graph of a state.
func WaitsFor(st *State) map[SessionID][]SessionID {
	g := map[SessionID][]SessionID{}
	edge := func(from, to SessionID) {
		if !slices.Contains(g[from], to) {
			g[from] = append(g[from], to)
		}
	}
	for _, r := range st.Resources {
		converting := map[SessionID]Mode{}
		for _, id := range r.Converting {
			for _, l := range r.Granted {
				if l.Session == id {
					converting[id] = l.Want
				}
			}
		}
		for _, id := range r.Converting {
			for _, h := range r.Granted {
				if h.Session != id && !Compatible(h.Mode, converting[id]) {
					edge(id, h.Session)
				}
			}
		}
		for i, w := range r.Waiting {
			for _, h := range r.Granted {
				if !Compatible(h.Mode, w.Mode) {
					edge(w.Session, h.Session)
				}
			}
			for _, id := range r.Converting {
				edge(w.Session, id)
			}
			for _, ahead := range r.Waiting[:i] {
				edge(w.Session, ahead.Session)
			}
		}
	}
	for _, to := range g {
		// map order: each list is sorted alone.
		sort.Slice(to, func(i, j int) bool { return bytes.Compare(to[i][:], to[j][:]) < 0 })
	}
	return g
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
	nodes := make([]SessionID, 0, len(g))
	for n := range g {
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool { return bytes.Compare(nodes[i][:], nodes[j][:]) < 0 })
	for _, n := range nodes {
		if OnCycle(g, n) {
			return cycleThrough(g, n)
		}
	}
	return nil
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
	st := m.State()
	return OnCycle(WaitsFor(&st), s)
}
