package spec

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
)

// State returns the model's canonical snapshot.
func (m *Model) State() State {
	st := State{Now: m.now, TokenMax: m.tokenMax, Tombstones: append([]Tombstone(nil), m.tombstones...)}
	if len(m.sessions) > 0 {
		st.Sessions = make([]SessionState, 0, len(m.sessions))
	}
	for _, s := range m.sessions {
		ss := SessionState{ID: s.id, Label: s.label, TTL: s.ttl, Deadline: s.deadline, Acked: s.acked}
		if len(s.replies) > 0 {
			ss.Replies = make([]Reply, 0, len(s.replies))
		}
		for id, r := range s.replies {
			ss.Replies = append(ss.Replies, Reply{Request: id, Digest: s.digests[id], Result: r})
		}
		slices.SortFunc(ss.Replies, func(a, b Reply) int { return cmp.Compare(a.Request, b.Request) })
		st.Sessions = append(st.Sessions, ss)
	}
	slices.SortFunc(st.Sessions, func(a, b SessionState) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	if len(m.resources) > 0 {
		st.Resources = make([]ResourceState, 0, len(m.resources))
	}
	for _, r := range m.resources {
		st.Resources = append(st.Resources, r.state())
	}
	slices.SortFunc(st.Resources, func(a, b ResourceState) int { return strings.Compare(a.Name, b.Name) })
	return st
}

func (r *mResource) state() ResourceState {
	rs := ResourceState{Name: r.name, Value: r.value, ValueValid: r.valid, DelayUntil: r.delayUntil, Limit: r.limit}
	if len(r.granted) > 0 {
		rs.Granted = make([]LockState, len(r.granted))
		for i, l := range r.granted {
			rs.Granted[i] = l.state()
		}
	}
	if len(r.converting) > 0 {
		rs.Converting = make([]SessionID, len(r.converting))
		for i, l := range r.converting {
			rs.Converting[i] = l.session
		}
	}
	if len(r.waiting) > 0 {
		rs.Waiting = make([]LockState, len(r.waiting))
		for i, l := range r.waiting {
			rs.Waiting[i] = l.state()
		}
	}
	return rs
}

func (l *mLock) state() LockState {
	return LockState{Session: l.session, Label: l.label, Mode: l.mode, Want: l.want, Permits: l.permits, Token: l.token,
		Request: l.request, Deadline: l.deadline, LockDelay: l.lockDelay, Notified: l.notified,
		GrantedAt: l.grantedAt, QueuedAt: l.queuedAt}
}

// Matches reports whether st is the model's state: m.State().Equal(st),
// without building the model's snapshot (the simulator compares after
// every turn). Like Equal, it requires st's lists in the canonical order:
// sessions by id, their replies by request id, resources by name.
func (m *Model) Matches(st *State) bool {
	if st.Now != m.now || st.TokenMax != m.tokenMax ||
		!slices.EqualFunc(st.Tombstones, m.tombstones, Tombstone.Equal) ||
		len(st.Sessions) != len(m.sessions) || len(st.Resources) != len(m.resources) {
		return false
	}
	// As many entries as the model's, each one of the model's, in strictly
	// increasing order: the model's sorted list, entry for entry.
	for i := range st.Sessions {
		ss := &st.Sessions[i]
		if i > 0 && bytes.Compare(st.Sessions[i-1].ID[:], ss.ID[:]) >= 0 {
			return false
		}
		if s := m.sessions[ss.ID]; s == nil || !s.matches(ss) {
			return false
		}
	}
	for i := range st.Resources {
		rs := &st.Resources[i]
		if i > 0 && st.Resources[i-1].Name >= rs.Name {
			return false
		}
		if r := m.resources[rs.Name]; r == nil || !r.matches(rs) {
			return false
		}
	}
	return true
}

// matches reports whether ss is s's entry in the model's State.
func (s *mSession) matches(ss *SessionState) bool {
	if ss.ID != s.id || ss.Label != s.label || ss.TTL != s.ttl || ss.Deadline != s.deadline || ss.Acked != s.acked ||
		len(ss.Replies) != len(s.replies) {
		return false
	}
	for i := range ss.Replies {
		got := &ss.Replies[i]
		if i > 0 && ss.Replies[i-1].Request >= got.Request {
			return false
		}
		r, ok := s.replies[got.Request]
		want := Reply{Request: got.Request, Digest: s.digests[got.Request], Result: r}
		if !ok || !want.Equal(got) {
			return false
		}
	}
	return true
}

// matches reports whether rs is r's entry in the model's State.
func (r *mResource) matches(rs *ResourceState) bool {
	return rs.Name == r.name && bytes.Equal(rs.Value, r.value) && rs.ValueValid == r.valid &&
		rs.DelayUntil == r.delayUntil && rs.Limit == r.limit &&
		slices.EqualFunc(rs.Granted, r.granted, func(a LockState, l *mLock) bool { return a.Equal(l.state()) }) &&
		slices.EqualFunc(rs.Converting, r.converting, func(id SessionID, l *mLock) bool { return id == l.session }) &&
		slices.EqualFunc(rs.Waiting, r.waiting, func(a LockState, l *mLock) bool { return a.Equal(l.state()) })
}
