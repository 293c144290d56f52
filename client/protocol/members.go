package protocol

import (
	"fmt"
	"slices"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// Members is a client's view of a replicated group: its members, the one
// it talks to, and when to try another. Like Session it is sans-I/O: the
// transport asks Current where to connect, and tells it what happened.
//
// Only the leader answers. A member that is not the leader refuses with a
// hint naming the leader it knows (NotLeader); the client goes there, or to
// the next member if the hint names none it knows. A member that does not
// answer at all (down, cut off, or a leader that lost its majority and
// cannot commit) is left when a request has waited Silence without any
// answer (Due). Switching member is a reconnect for the sessions: the
// transport calls Disconnected and then Connected on each, and they resend
// everything unanswered with the same request ids, which the new leader
// answers from its replicated record if the old one applied them. A lease
// is counted from send time whichever member answers, so a session lives
// through a failover as long as some leader answers a keepalive within its
// TTL.
type Members struct {
	addrs   []string
	cur     int
	silence time.Duration
	waiting bool      // a request went out and no answer came since
	since   spec.Time // when the oldest unanswered request went out
	moves   int
}

// NewMembers returns a view of the members addrs (at least one, distinct),
// starting with the first; silence is how long an unanswered request waits
// before the client tries the next member (> 0).
func NewMembers(addrs []string, silence time.Duration) (*Members, error) {
	if len(addrs) == 0 || len(addrs) > MembersMax {
		return nil, fmt.Errorf("protocol: a group has 1 to MembersMax %d members, got %d", MembersMax, len(addrs))
	}
	if len(slices.Compact(slices.Sorted(slices.Values(addrs)))) != len(addrs) {
		return nil, fmt.Errorf("protocol: members %v: addresses must be distinct", addrs)
	}
	if silence <= 0 {
		return nil, fmt.Errorf("protocol: silence %v: must be positive", silence)
	}
	return &Members{addrs: slices.Clone(addrs), silence: silence}, nil
}

// Current returns the member to talk to.
func (m *Members) Current() string { return m.addrs[m.cur] }

// Len returns the number of members known: those given and those learned.
func (m *Members) Len() int { return len(m.addrs) }

// Moves counts the switches from one member to another.
func (m *Members) Moves() int { return m.moves }

// Sent notes that a request went out to the current member at now.
func (m *Members) Sent(now spec.Time) {
	if !m.waiting {
		m.waiting, m.since = true, now
	}
}

// Heard notes that the current member answered: it is alive and leads.
func (m *Members) Heard() { m.waiting = false }

// MembersMax bounds the members a client knows: those it was given and
// those it learned from hints.
const MembersMax = 16

// NotLeader handles the current member's refusal: it is not the leader,
// and names leader ("" if it knows none). The client moves to the leader if
// it is a member other than the current one, else to the next member. A
// leader it does not know is a member added since the client started: it
// is learned (up to MembersMax members) and the client moves there. It
// returns the new current member.
func (m *Members) NotLeader(leader string) string {
	i := slices.Index(m.addrs, leader)
	if i < 0 && leader != "" && len(m.addrs) < MembersMax {
		m.addrs = append(m.addrs, leader)
		i = len(m.addrs) - 1
	}
	if i >= 0 && i != m.cur {
		m.moveTo(i)
	} else {
		m.moveTo((m.cur + 1) % len(m.addrs))
	}
	return m.Current()
}

// Update replaces the members by addrs (at least one, distinct, at most
// MembersMax), as when the group's membership is published anew (a member
// added, one removed). The client stays on its member if it is still
// one; else it moves to the first, and Update returns it with moved true.
func (m *Members) Update(addrs []string) (cur string, moved bool, err error) {
	n, err := NewMembers(addrs, m.silence)
	if err != nil {
		return m.Current(), false, err
	}
	if i := slices.Index(n.addrs, m.Current()); i >= 0 {
		m.addrs, m.cur = n.addrs, i
		return m.Current(), false, nil
	}
	m.addrs = n.addrs
	m.moveTo(0)
	return m.Current(), true, nil
}

// Due reports whether a request has waited Silence at now without an
// answer; if so the client moves to the next member, which Due returns.
func (m *Members) Due(now spec.Time) (string, bool) {
	if !m.waiting || now < m.since.Add(m.silence) || len(m.addrs) == 1 {
		return "", false
	}
	m.moveTo((m.cur + 1) % len(m.addrs))
	return m.Current(), true
}

// NextDeadline returns when Due may next report a move.
func (m *Members) NextDeadline() (spec.Time, bool) {
	if !m.waiting || len(m.addrs) == 1 {
		return 0, false
	}
	return m.since.Add(m.silence), true
}

func (m *Members) moveTo(i int) {
	m.cur, m.waiting = i, false
	m.moves++
}
