package spec

import (
	"bytes"
	"sort"
)

// State returns the model's canonical snapshot.
func (m *Model) State() State {
	st := State{Now: m.now, TokenMax: m.tokenMax, Tombstones: append([]Tombstone(nil), m.tombstones...)}
	for _, s := range m.sessions {
		ss := SessionState{ID: s.id, TTL: s.ttl, Deadline: s.deadline, Acked: s.acked}
		for id, r := range s.replies {
			ss.Replies = append(ss.Replies, Reply{Request: id, Digest: s.digests[id], Result: r})
		}
		sort.Slice(ss.Replies, func(i, j int) bool { return ss.Replies[i].Request < ss.Replies[j].Request })
		st.Sessions = append(st.Sessions, ss)
	}
	sort.Slice(st.Sessions, func(i, j int) bool {
		return bytes.Compare(st.Sessions[i].ID[:], st.Sessions[j].ID[:]) < 0
	})
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
	sort.Slice(st.Resources, func(i, j int) bool { return st.Resources[i].Name < st.Resources[j].Name })
	return st
}

func (l *mLock) state() LockState {
	return LockState{Session: l.session, Mode: l.mode, Want: l.want, Token: l.token,
		Request: l.request, Deadline: l.deadline, LockDelay: l.lockDelay, Notified: l.notified}
}
