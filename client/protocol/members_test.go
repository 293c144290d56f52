package protocol

import (
	"fmt"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

func TestMembersFollowHintsAndSilence(t *testing.T) {
	m, err := NewMembers([]string{"a", "b", "c"}, time.Second)
	require.NoError(t, err)
	require.Equal(t, "a", m.Current())

	// A hint naming a member moves there; one naming nobody, or the
	// current member itself, moves to the next; one naming a member the
	// client does not know (added since it started) is learned.
	require.Equal(t, "c", m.NotLeader("c"))
	require.Equal(t, "a", m.NotLeader(""))
	require.Equal(t, "b", m.NotLeader("b"))
	require.Equal(t, "c", m.NotLeader("c"), "a hint of the current member is no hint")
	require.Equal(t, "d", m.NotLeader("d"), "a new member is learned")
	require.Equal(t, "a", m.NotLeader(""), "and is one of the ring")
	require.Equal(t, 6, m.Moves())

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
	require.Equal(t, "b", next)
	_, ok = m.NextDeadline()
	require.False(t, ok, "a move starts afresh")

	m.Sent(spec.Time(3 * time.Second))
	m.Heard()
	_, due = m.Due(spec.Time(time.Hour))
	require.False(t, due, "an answer ends the wait")
}

func TestMembersUpdate(t *testing.T) {
	m, err := NewMembers([]string{"a", "b", "c"}, time.Second)
	require.NoError(t, err)
	m.NotLeader("b")
	cur, moved, err := m.Update([]string{"b", "c", "d"})
	require.NoError(t, err)
	require.Equal(t, "b", cur)
	require.False(t, moved, "b is still a member")
	require.Equal(t, "d", m.NotLeader("d"))
	cur, moved, err = m.Update([]string{"e", "b"})
	require.NoError(t, err)
	require.True(t, moved, "d was removed")
	require.Equal(t, "e", cur)
	_, _, err = m.Update(nil)
	require.Error(t, err)
	require.Equal(t, "e", m.Current(), "a refused update changes nothing")
	require.Equal(t, "b", m.NotLeader(""))
	require.Equal(t, "e", m.NotLeader(""))
}

func TestMembersRefusesBadInput(t *testing.T) {
	_, err := NewMembers(nil, time.Second)
	require.Error(t, err)
	_, err = NewMembers([]string{"a", "a"}, time.Second)
	require.Error(t, err)
	_, err = NewMembers([]string{"a"}, 0)
	require.Error(t, err)
	many := make([]string, MembersMax+1)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	_, err = NewMembers(many, time.Second)
	require.Error(t, err, "more than MembersMax")
	full, err := NewMembers(many[:MembersMax], time.Second)
	require.NoError(t, err)
	require.Equal(t, "1", full.NotLeader("new"), "a full list learns no more: the next member")
	one, err := NewMembers([]string{"a"}, time.Second)
	require.NoError(t, err)
	one.Sent(0)
	_, due := one.Due(spec.Time(time.Hour))
	require.False(t, due, "a lone member has nowhere to go")
}
