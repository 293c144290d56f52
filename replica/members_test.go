package replica_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/replica"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func (g *group) leader() *replica.Replica {
	for _, r := range g.reps {
		if r.IsLeader() {
			return r
		}
	}
	g.tb.Fatal("no leader")
	return nil
}

func (g *group) propose(in ...spec.Input) {
	g.tb.Helper()
	if _, err := g.leader().Propose(g.now, in); err != nil {
		g.tb.Fatal(err)
	}
	g.settle(3)
}

// agree requires every replica in ids to have applied the leader's log
// with the leader's state, and to know voters.
func (g *group) agree(voters []uint64, ids ...uint64) {
	g.tb.Helper()
	l := g.leader()
	for _, id := range ids {
		r := g.reps[id]
		if r.Applied() != l.Applied() || r.StateHash() != l.StateHash() {
			g.tb.Fatalf("replica %d at %d (hash %x), the leader %d at %d (%x)", id, r.Applied(), r.StateHash(),
				l.ID(), l.Applied(), l.StateHash())
		}
		if got := r.Voters(); !slices.Equal(got, voters) {
			g.tb.Fatalf("replica %d has voters %v, want %v", id, got, voters)
		}
	}
}

// TestMembership: a group of three takes a fourth member, which catches up
// from a snapshot and votes; then loses its leader by a removal (the others
// elect a new one and go on); hands its leadership over on request; and a
// member restarted from its disk keeps the configuration it had applied.
// Bad changes are refused.
func TestMembership(t *testing.T) {
	g := &group{tb: t, fs: vfs.NewMem(), reps: map[uint64]*replica.Replica{}}
	for id := uint64(1); id <= 3; id++ {
		g.open(g.config(id, []uint64{1, 2, 3}, false))
	}
	g.settle(40)
	s := spec.SessionID{7}
	g.propose(spec.Input{Op: spec.OpOpen, Session: s, TTL: 30 * time.Second})
	for i := range 20 { // enough entries to compact the log: the newcomer needs a snapshot
		g.propose(spec.Input{Op: spec.OpAcquire, Session: s, Resource: "x", Mode: spec.EX, Request: spec.RequestID(2*i + 1), WaitTimeout: time.Second},
			spec.Input{Op: spec.OpRelease, Session: s, Resource: "x", Request: spec.RequestID(2*i + 2)})
	}

	l := g.leader()
	if err := l.AddMember(2); err == nil {
		t.Fatal("adding a voter again was accepted")
	}
	if err := l.RemoveMember(9); err == nil {
		t.Fatal("removing a stranger was accepted")
	}
	var follower *replica.Replica
	for _, r := range g.reps {
		if !r.IsLeader() {
			follower = r
		}
	}
	var nl *replica.NotLeader
	if err := follower.AddMember(4); !errors.As(err, &nl) || nl.Leader != l.ID() {
		t.Fatalf("a follower's AddMember: %v, want NotLeader naming %d", err, l.ID())
	}

	g.open(g.config(4, nil, true))
	if err := l.AddMember(4); err != nil {
		t.Fatal(err)
	}
	g.settle(20)
	g.propose(spec.Input{Op: spec.OpAcquire, Session: s, Resource: "y", Mode: spec.PR, Request: 100, WaitTimeout: time.Second})
	g.agree([]uint64{1, 2, 3, 4}, 1, 2, 3, 4)

	old := g.leader().ID()
	if err := g.leader().RemoveMember(old); err != nil {
		t.Fatal(err)
	}
	g.settle(60)
	if g.reps[old].IsLeader() {
		t.Fatalf("replica %d still leads after its removal", old)
	}
	delete(g.reps, old) // a removed member is shut down
	g.propose(spec.Input{Op: spec.OpRelease, Session: s, Resource: "y", Request: 101})
	var rest []uint64
	for id := uint64(1); id <= 4; id++ {
		if id != old {
			rest = append(rest, id)
		}
	}
	g.agree(rest, rest...)

	to := rest[0]
	if to == g.leader().ID() {
		to = rest[1]
	}
	g.leader().TransferLeader(to)
	g.settle(20)
	if !g.reps[to].IsLeader() {
		t.Fatalf("leadership was not transferred to %d", to)
	}

	// A restart keeps the applied configuration (the newcomer's included).
	applied := g.reps[4].Applied()
	if err := g.reps[4].Close(); err != nil {
		t.Fatal(err)
	}
	g.open(g.config(4, nil, false))
	if r := g.reps[4]; r.Applied() != applied || !slices.Equal(r.Voters(), rest) {
		t.Fatalf("replica 4 reopened at %d with voters %v, was at %d with %v", r.Applied(), r.Voters(), applied, rest)
	}
	g.settle(20)
	g.propose(spec.Input{Op: spec.OpClose, Session: s, Request: 102})
	g.agree(rest, rest...)
	if st := g.leader().Core().State(); len(st.Sessions) != 0 {
		t.Fatalf("the session is still open:\n%v", st.String())
	}
	for _, r := range g.reps {
		_ = r.Close()
	}
}
