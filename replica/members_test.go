package replica_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/replica"
	"github.com/bouncer-dlm/bouncer/spec"
)

// leader returns the replica that leads (among those not cut off).
func (g *group) leader() *replica.Replica {
	for id, r := range g.reps {
		if r.IsLeader() && !g.cut[id] {
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
	g := newEmptyGroup(t)
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
	if err := l.AddMember(2, nil); err == nil {
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
	if err := follower.AddMember(4, nil); !errors.As(err, &nl) || nl.Leader != l.ID() {
		t.Fatalf("a follower's AddMember: %v, want NotLeader naming %d", err, l.ID())
	}

	g.open(g.config(4, nil, true))
	if err := l.AddMember(4, make([]byte, 2000)); err == nil {
		t.Fatal("oversized member data was accepted")
	}
	if err := l.AddMember(4, []byte("peer=4:7410")); err != nil {
		t.Fatal(err)
	}
	g.settle(20)
	g.propose(spec.Input{Op: spec.OpAcquire, Session: s, Resource: "y", Mode: spec.PR, Request: 100, WaitTimeout: time.Second})
	g.agree([]uint64{1, 2, 3, 4}, 1, 2, 3, 4)
	for id, r := range g.reps { // the newcomer got the data in its snapshot
		if got := string(r.Members()[4]); got != "peer=4:7410" {
			t.Fatalf("replica %d keeps %q for member 4", id, got)
		}
	}

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
	if r := g.reps[4]; r.Applied() != applied || !slices.Equal(r.Voters(), rest) || string(r.Members()[4]) != "peer=4:7410" {
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

// TestReadIndex: the leader answers a read once a quorum confirmed its
// leadership; a follower refuses; a leader cut off from the others, which
// still believes it leads while a new leader commits, never answers (it
// cannot confirm), and the new leader's reads see the new writes.
func TestReadIndex(t *testing.T) {
	g := newGroup(t, 3, spec.DefaultLimits())
	s := spec.SessionID{1}
	g.propose(spec.Input{Op: spec.OpOpen, Session: s, TTL: 30 * time.Second})
	if err := g.reps[1].Read(10); err != nil {
		t.Fatal(err)
	}
	g.quiet()
	if got := g.reads[1]; !slices.Equal(got, []uint64{10}) {
		t.Fatalf("the leader answered reads %v, want [10]", got)
	}
	var nl *replica.NotLeader
	if err := g.reps[2].Read(11); !errors.As(err, &nl) || nl.Leader != 1 {
		t.Fatalf("a follower's Read: %v, want NotLeader naming 1", err)
	}

	g.cut[1] = true
	for i := 0; !g.reps[2].IsLeader() && !g.reps[3].IsLeader(); i++ {
		if i > 200 {
			t.Fatal("no new leader")
		}
		g.settle(1)
	}
	g.propose(spec.Input{Op: spec.OpAcquire, Session: s, Resource: "x", Mode: spec.EX, Request: 1, WaitTimeout: time.Second})
	if !g.reps[1].IsLeader() {
		t.Fatal("the cut-off leader should still believe it leads (it has not ticked)")
	}
	if err := g.reps[1].Read(12); err != nil {
		t.Fatal(err)
	}
	g.quiet()
	if got := g.reads[1]; len(got) != 1 {
		t.Fatalf("the deposed leader answered reads %v", got)
	}
	l := g.leader()
	if err := l.Read(13); err != nil {
		t.Fatal(err)
	}
	g.quiet()
	if got := g.reads[l.ID()]; !slices.Equal(got, []uint64{13}) {
		t.Fatalf("the new leader answered reads %v, want [13]", got)
	}
	if _, ok := l.Core().Resource("x"); !ok {
		t.Fatal("the new leader's read does not see the lock")
	}
}
