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
		ss := SessionState{ID: s.id, TTL: s.ttl, Deadline: s.deadline, Acked: s.acked}
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
		rs := ResourceState{Name: r.name, Value: r.value, ValueValid: r.valid, DelayUntil: r.delayUntil}
		for _, l := range r.granted {
			rs.Granted = append(rs.Granted, l.state())
		}
		for _, l := range r.converting {
			rs.Converting = append(rs.Converting, l.session)
		}
		for _, l := range r.waiting {
			rs.Waiting = append(rs.Waiting, l.state())
		}
		st.Resources = append(st.Resources, rs)
	}
	slices.SortFunc(st.Resources, func(a, b ResourceState) int { return strings.Compare(a.Name, b.Name) })
	return st
}

func (l *mLock) state() LockState {
	return LockState{Session: l.session, Mode: l.mode, Want: l.want, Token: l.token,
		Request: l.request, Deadline: l.deadline, LockDelay: l.lockDelay, Notified: l.notified}
}
