package engine

import (
	"cmp"
	"encoding/binary"
	"slices"
	"sort"
	"strings"

	"github.com/bouncer-dlm/bouncer/spec"
)

// State returns the core's canonical snapshot, comparable with the model's.
// It walks everything: for tests, invariant checks and inspection, not for
// hot paths. It allocates a few arrays, each sized by a first count (the
// core's counters are only hints here: a state is built right even from a
// core whose counts are broken), and shares them out among the sessions'
// replies and the resources' locks; each share is capped at its length, so
// appending to one never writes into the next.
func (c *Core) State() spec.State {
	var b StateBuf
	return *c.build(&b, false)
}

// StateBuf holds a state built by StateIn and its arrays, for the next.
type StateBuf struct {
	State      spec.State
	sessions   []spec.SessionState
	resources  []spec.ResourceState
	tombstones []spec.Tombstone
	replies    []spec.Reply
	bufs       stateBufs
}

// StateIn builds the same state as State in b, reusing the arrays of the
// state b held, which it overwrites: a caller that keeps one state while it
// builds the next alternates two buffers. It returns &b.State. Like State,
// it is not for hot paths.
func (c *Core) StateIn(b *StateBuf) *spec.State { return c.build(b, true) }

// reserve returns buf emptied with room for n; a reused buffer grows with
// slack, so that a slowly growing state does not reallocate at every build.
func reserve[T any](buf []T, n int, reuse bool) []T {
	if cap(buf) >= n {
		return buf[:0]
	}
	if reuse {
		n += n / 4
	}
	return make([]T, 0, n)
}

func (c *Core) build(b *StateBuf, reuse bool) *spec.State {
	st := &b.State
	*st = spec.State{Now: c.now, TokenMax: c.tokenMax}
	if len(c.tombstones) > 0 {
		b.tombstones = reserve(b.tombstones, len(c.tombstones), reuse)
		for _, t := range c.tombstones {
			b.tombstones = append(b.tombstones, spec.Tombstone{Session: t.session, Closed: t.closed})
		}
		st.Tombstones = b.tombstones
	}
	if len(c.sessions) > 0 {
		b.sessions = reserve(b.sessions, len(c.sessions), reuse)
		n := 0
		for _, s := range c.sessions {
			// map order: a sum
			n += s.replies.len()
		}
		replies := b.replies[:0]
		if n > 0 {
			replies = reserve(replies, n, reuse)
		}
		for _, s := range c.sessions {
			ss := spec.SessionState{ID: s.id, Label: s.label, TTL: s.ttl, Deadline: s.expiry.at, Acked: s.acked}
			if live := s.replies.live(); len(live) > 0 {
				from := len(replies)
				for i := range live {
					r := &live[i]
					replies = append(replies, spec.Reply{Request: r.id, Digest: r.digest, Result: r.res})
				}
				ss.Replies = replies[from:len(replies):len(replies)]
			}
			b.sessions = append(b.sessions, ss)
		}
		b.replies = replies
		slices.SortFunc(b.sessions, func(a, b spec.SessionState) int { return compareIDs(&a.ID, &b.ID) })
		st.Sessions = b.sessions
	}
	if c.live > 0 {
		b.resources = reserve(b.resources, c.live, reuse)
	} else {
		b.resources = b.resources[:0]
	}
	if n := c.grantedTotal + c.queuedTotal; n > 0 {
		b.bufs.locks = reserve(b.bufs.locks, n, reuse)
	}
	b.bufs.locks, b.bufs.ids = b.bufs.locks[:0], b.bufs.ids[:0]
	for _, r := range c.resources {
		if !r.idle {
			b.resources = append(b.resources, r.stateIn(&b.bufs))
		}
	}
	if len(b.resources) > 0 {
		slices.SortFunc(b.resources, func(a, b spec.ResourceState) int { return strings.Compare(a.Name, b.Name) })
		st.Resources = b.resources
	}
	return st
}

// compareIDs orders session ids as bytes.Compare does, in two loads.
func compareIDs(a, b *spec.SessionID) int {
	if c := cmp.Compare(binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])); c != 0 {
		return c
	}
	return cmp.Compare(binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:]))
}

// stateBufs are the arrays that the resources of one State share.
type stateBufs struct {
	locks []spec.LockState
	ids   []spec.SessionID
}

func (r *resource) state() spec.ResourceState {
	var b stateBufs
	if n := r.granted.n + r.ext.waiting.n; n > 0 {
		b.locks = make([]spec.LockState, 0, n)
	}
	return r.stateIn(&b)
}

// stateIn builds r's state with its locks in b's arrays.
func (r *resource) stateIn(b *stateBufs) spec.ResourceState {
	rs := spec.ResourceState{Name: r.name, Value: r.ext.value, ValueValid: r.valid, DelayUntil: r.ext.delayUntil,
		Limit: r.ext.limit}
	from := len(b.locks)
	for l := r.granted.head; l != nil; l = l.link(grantedList).next {
		b.locks = append(b.locks, l.state())
	}
	if to := len(b.locks); to > from {
		rs.Granted = b.locks[from:to:to]
	}
	if r.ext.converting.head != nil {
		if b.ids == nil {
			b.ids = make([]spec.SessionID, 0, max(r.ext.converting.n, 4))
		}
		from := len(b.ids)
		for l := r.ext.converting.head; l != nil; l = l.link(queueList).next {
			b.ids = append(b.ids, l.sess.id)
		}
		to := len(b.ids)
		rs.Converting = b.ids[from:to:to]
	}
	from = len(b.locks)
	for l := r.ext.waiting.head; l != nil; l = l.link(queueList).next {
		b.locks = append(b.locks, l.state())
	}
	if to := len(b.locks); to > from {
		rs.Waiting = b.locks[from:to:to]
	}
	return rs
}

func (l *lock) state() spec.LockState {
	ls := spec.LockState{Session: l.sess.id, Label: l.sess.label, Mode: l.mode, Want: l.want, Permits: l.permits, Token: l.token,
		Request: l.request, LockDelay: l.lockDelay, Notified: l.notified, GrantedAt: l.grantedAt}
	if l.request != 0 {
		ls.Deadline, ls.QueuedAt = l.q.timeout.at, l.q.at
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

// QueuedResources returns the states of the resources with a queued
// request (a waiter or a queued conversion), in name order: what the
// wait-for graph is made of. It walks the sessions' queued requests, not
// the resources: O(sessions + queued requests + their resources' locks),
// and nothing when no request is queued.
func (c *Core) QueuedResources() []spec.ResourceState {
	if c.queuedTotal == 0 {
		return nil
	}
	seen := map[*resource]bool{}
	var rs []*resource
	for _, s := range c.sessions {
		// map order: the resources are sorted below.
		for l := s.pending.head; l != nil; l = l.link(pendingList).next {
			if !seen[l.res] {
				seen[l.res] = true
				rs = append(rs, l.res)
			}
		}
	}
	slices.SortFunc(rs, func(a, b *resource) int { return strings.Compare(a.name, b.name) })
	var b stateBufs
	out := make([]spec.ResourceState, len(rs))
	for i, r := range rs {
		out[i] = r.stateIn(&b)
	}
	return out
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
