package spec

import (
	"bytes"
	"slices"
)

// Equality of spec values. The claim that the engine equals the model rests
// on one definition, used by the engine's tests, the model checker and the
// simulator alike: every field is compared, and a nil value block equals an
// empty one (the store cannot tell them apart, and neither can a client).
// Slices of states compare by their elements, so nil and empty lists are
// equal too. TestEqualNoticesEveryField fails when a field is added that
// these methods do not compare.

// Equal reports whether s and t are the same state.
func (s *State) Equal(t *State) bool {
	return s.Now == t.Now && s.TokenMax == t.TokenMax &&
		slices.EqualFunc(s.Sessions, t.Sessions, func(a, b SessionState) bool { return a.Equal(&b) }) &&
		slices.EqualFunc(s.Resources, t.Resources, func(a, b ResourceState) bool { return a.Equal(&b) }) &&
		slices.EqualFunc(s.Tombstones, t.Tombstones, Tombstone.Equal)
}

// Equal reports whether s and t are the same session.
func (s *SessionState) Equal(t *SessionState) bool {
	return s.ID == t.ID && s.Label == t.Label && s.TTL == t.TTL && s.Deadline == t.Deadline && s.Acked == t.Acked &&
		slices.EqualFunc(s.Replies, t.Replies, func(a, b Reply) bool { return a.Equal(&b) })
}

// Equal reports whether r and q are the same recorded outcome.
func (r *Reply) Equal(q *Reply) bool {
	return r.Request == q.Request && r.Digest == q.Digest && r.Result.Equal(&q.Result)
}

// Equal reports whether r and q are the same resource.
func (r *ResourceState) Equal(q *ResourceState) bool {
	return r.Name == q.Name && bytes.Equal(r.Value, q.Value) && r.ValueValid == q.ValueValid &&
		r.DelayUntil == q.DelayUntil && r.Limit == q.Limit && slices.EqualFunc(r.Granted, q.Granted, LockState.Equal) &&
		slices.Equal(r.Converting, q.Converting) && slices.EqualFunc(r.Waiting, q.Waiting, LockState.Equal)
}

// Equal reports whether l and k are the same lock.
func (l LockState) Equal(k LockState) bool {
	return l.Session == k.Session && l.Label == k.Label && l.Mode == k.Mode && l.Want == k.Want && l.Permits == k.Permits && l.Token == k.Token &&
		l.Request == k.Request && l.Deadline == k.Deadline && l.LockDelay == k.LockDelay &&
		l.Notified == k.Notified && l.GrantedAt == k.GrantedAt && l.QueuedAt == k.QueuedAt
}

// Equal reports whether t and u remember the same ended session.
func (t Tombstone) Equal(u Tombstone) bool { return t.Session == u.Session && t.Closed == u.Closed }

// Equal reports whether r and q are the same outcome.
func (r *Result) Equal(q *Result) bool {
	return r.Code == q.Code && r.Detail == q.Detail && r.Pending == q.Pending && r.Mode == q.Mode &&
		r.Token == q.Token && bytes.Equal(r.Value, q.Value) && r.ValueValid == q.ValueValid
}

// Equal reports whether e and f are the same event.
func (e *Event) Equal(f *Event) bool {
	return e.Kind == f.Kind && e.Session == f.Session && e.Request == f.Request &&
		e.Resource == f.Resource && e.Mode == f.Mode && e.Result.Equal(&f.Result)
}

// EventsEqual reports whether a and b are the same events in the same order.
func EventsEqual(a, b []Event) bool {
	return slices.EqualFunc(a, b, func(x, y Event) bool { return x.Equal(&y) })
}
