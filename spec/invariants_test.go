package spec

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestInvariantsCheckInstants corrupts the grant and queue instants of a
// valid state one way at a time: each must fail CheckInvariants or
// CheckTransition.
func TestInvariantsCheckInstants(t *testing.T) {
	lim := DefaultLimits()
	m := NewModel(lim)
	a, b := NamedSession("a"), NamedSession("b")
	for _, id := range []SessionID{a, b} {
		r, _ := m.Step(0, Input{Op: OpOpen, Session: id, TTL: 10 * time.Second})
		require.Equal(t, OK, r.Code)
	}
	r, _ := m.Step(Time(time.Second), Input{Op: OpAcquire, Session: a, Request: 1, Resource: "x", Mode: EX, WaitTimeout: time.Minute})
	require.Equal(t, OK, r.Code)
	before := m.State()
	r, _ = m.Step(Time(2*time.Second), Input{Op: OpAcquire, Session: b, Request: 1, Resource: "x", Mode: EX, WaitTimeout: time.Minute})
	require.True(t, r.Pending)
	st := m.State()
	require.NoError(t, CheckInvariants(&st, &lim))
	require.Equal(t, Time(time.Second), st.Resources[0].Granted[0].GrantedAt)
	require.Equal(t, Time(2*time.Second), st.Resources[0].Waiting[0].QueuedAt)

	for name, corrupt := range map[string]func(st *State){
		"granted in the future": func(st *State) { st.Resources[0].Granted[0].GrantedAt = st.Now + 1 },
		"queued in the future":  func(st *State) { st.Resources[0].Waiting[0].QueuedAt = st.Now + 1 },
		"waiter with a grant":   func(st *State) { st.Resources[0].Waiting[0].GrantedAt = 1 },
		"holder queued":         func(st *State) { st.Resources[0].Granted[0].QueuedAt = 1 },
	} {
		bad := m.State()
		corrupt(&bad)
		require.Error(t, CheckInvariants(&bad, &lim), name)
	}
	// A new token whose grant instant lies before the transition began.
	after := m.State()
	after.Resources[0].Granted[0].Token, after.TokenMax = 3, 3
	after.Resources[0].Granted[0].GrantedAt = 0
	before.Now = Time(time.Second + 1)
	require.Error(t, CheckTransition(&before, &after))
}
