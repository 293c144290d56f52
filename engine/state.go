package engine

import (
	"bytes"
	"slices"
	"sort"
	"strings"

	"github.com/bouncer-dlm/bouncer/spec"
)

// State returns the core's canonical snapshot, comparable with the model's.
// It walks everything: for tests, invariant checks and inspection, not for
// hot paths.
func (c *Core) State() spec.State {
	st := spec.State{Now: c.now, TokenMax: c.tokenMax}
	if len(c.sessions) > 0 {
		st.Sessions = make([]spec.SessionState, 0, len(c.sessions))
	}
	for _, t := range c.tombstones {
		st.Tombstones = append(st.Tombstones, spec.Tombstone{Session: t.session, Closed: t.closed})
	}
	for _, s := range c.sessions {
		ss := spec.SessionState{ID: s.id, TTL: s.ttl, Deadline: s.expiry.at, Acked: s.acked}
		for _, r := range s.replies.live() {
			ss.Replies = append(ss.Replies, spec.Reply{Request: r.id, Digest: r.digest, Result: r.res})
		}
		st.Sessions = append(st.Sessions, ss)
	}
	slices.SortFunc(st.Sessions, func(a, b spec.SessionState) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	for _, r := range c.resources {
		if !r.idle {
			st.Resources = append(st.Resources, r.state())
		}
	}
	slices.SortFunc(st.Resources, func(a, b spec.ResourceState) int { return strings.Compare(a.Name, b.Name) })
	return st
}

func (r *resource) state() spec.ResourceState {
	rs := spec.ResourceState{Name: r.name, Value: r.ext.value, ValueValid: r.valid, DelayUntil: r.ext.delayUntil}
	for l := r.granted.head; l != nil; l = l.link(grantedList).next {
		rs.Granted = append(rs.Granted, l.state())
	}
	for l := r.ext.converting.head; l != nil; l = l.link(queueList).next {
		rs.Converting = append(rs.Converting, l.sess.id)
	}
	for l := r.ext.waiting.head; l != nil; l = l.link(queueList).next {
		rs.Waiting = append(rs.Waiting, l.state())
	}
	return rs
}

func (l *lock) state() spec.LockState {
	ls := spec.LockState{Session: l.sess.id, Mode: l.mode, Want: l.want, Token: l.token,
		Request: l.request, LockDelay: l.lockDelay, Notified: l.notified}
	if l.request != 0 {
		ls.Deadline = l.q.timeout.at
	}
	return ls
}

// Resource returns the state of the resource named name, if it is in use.
func (c *Core) Resource(name string) (spec.ResourceState, bool) {
	r := c.resources[name]
	if r == nil || r.idle {
		return spec.ResourceState{}, false
	}
	return r.state(), true
}

// ResourceNames returns, in order, at most limit names of resources in use
// that start with prefix and sort after after. It sorts every matching
// name: an operator's listing, not a hot path.
func (c *Core) ResourceNames(prefix, after string, limit int) []string {
	var names []string
	for name, r := range c.resources {
		if !r.idle && strings.HasPrefix(name, prefix) && name > after {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names[:min(limit, len(names))]
}

// Stats counts what the core holds.
type Stats struct {
	Sessions  int
	Resources int
	Locks     int // granted
	Queued    int // queued acquires and conversions
	TokenMax  spec.Token
}

// Stats returns the core's counts in O(1).
func (c *Core) Stats() Stats {
	return Stats{Sessions: len(c.sessions), Resources: c.live, Locks: c.grantedTotal,
		Queued: c.queuedTotal, TokenMax: c.tokenMax}
}
