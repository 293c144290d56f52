package protocol

import (
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

func TestMembersFollowHintsAndSilence(t *testing.T) {
	m, err := NewMembers([]string{"a", "b", "c"}, time.Second)
	require.NoError(t, err)
	require.Equal(t, "a", m.Current())

	// A hint naming a member moves there; one naming nobody known, or the
	// current member itself, moves to the next.
	require.Equal(t, "c", m.NotLeader("c"))
	require.Equal(t, "a", m.NotLeader("zz"))
	require.Equal(t, "b", m.NotLeader("b"))
	require.Equal(t, "c", m.NotLeader("c"), "a hint of the current member is no hint")
	require.Equal(t, 4, m.Moves())

	// Silence: only an unanswered request counts, from its first send.
	_, due := m.Due(spec.Time(10 * time.Second))
	require.False(t, due, "nothing was sent")
	m.Sent(spec.Time(time.Second))
	m.Sent(spec.Time(1500 * time.Millisecond))
	at, ok := m.NextDeadline()
	require.True(t, ok)
	require.Equal(t, spec.Time(2*time.Second), at)
	_, due = m.Due(spec.Time(2*time.Second) - 1)
	require.False(t, due)
	next, due := m.Due(spec.Time(2 * time.Second))
	require.True(t, due)
	require.Equal(t, "a", next)
	_, ok = m.NextDeadline()
	require.False(t, ok, "a move starts afresh")

	m.Sent(spec.Time(3 * time.Second))
	m.Heard()
	_, due = m.Due(spec.Time(time.Hour))
	require.False(t, due, "an answer ends the wait")
}

func TestMembersRefusesBadInput(t *testing.T) {
	_, err := NewMembers(nil, time.Second)
	require.Error(t, err)
	_, err = NewMembers([]string{"a", "a"}, time.Second)
	require.Error(t, err)
	_, err = NewMembers([]string{"a"}, 0)
	require.Error(t, err)
	one, err := NewMembers([]string{"a"}, time.Second)
	require.NoError(t, err)
	one.Sent(0)
	_, due := one.Due(spec.Time(time.Hour))
	require.False(t, due, "a lone member has nowhere to go")
}
