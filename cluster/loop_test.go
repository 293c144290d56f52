package cluster_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/cluster"
	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/replica"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

// memNet connects members in one process: each has an inbox; a message to
// a member that is cut off or has no inbox is dropped.
type memNet struct {
	mu    sync.Mutex
	boxes map[uint64]chan *raftpb.Message
	cut   map[uint64]bool
}

type memTransport struct {
	net *memNet
	id  uint64
}

func (t memTransport) Send(msgs []*raftpb.Message) {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	for _, m := range msgs {
		box, ok := t.net.boxes[m.GetTo()]
		if !ok || t.net.cut[m.GetTo()] || t.net.cut[t.id] {
			continue
		}
		select {
		case box <- m:
		default: // full: raft sends again
		}
	}
}

func (t memTransport) Recv() <-chan *raftpb.Message {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	return t.net.boxes[t.id]
}

type member struct {
	loop *cluster.Loop
	fs   vfs.FS
}

func start(t *testing.T, net *memNet, id uint64, fs vfs.FS, peers []uint64, addrs map[uint64]cluster.Addrs) *member {
	t.Helper()
	r, err := replica.New(replica.Config{ID: id, Peers: peers, Join: peers == nil, Limits: spec.DefaultLimits(), FS: fs, Dir: "m",
		ElectionTick: 10, HeartbeatTick: 1, CompactAfter: 8})
	if err != nil {
		t.Fatal(err)
	}
	net.mu.Lock()
	net.boxes[id] = make(chan *raftpb.Message, 1024)
	net.mu.Unlock()
	l := cluster.Start(r, memTransport{net: net, id: id}, spec.DefaultLimits(),
		cluster.Options{Tick: 10 * time.Millisecond, Members: addrs})
	return &member{loop: l, fs: fs}
}

func leader(t *testing.T, ms map[uint64]*member) uint64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for id, m := range ms {
			if m != nil && m.loop.Leading() == nil {
				return id
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no leader within 5s")
	return 0
}

// TestMemberLoop: three members in one process elect a leader, which
// serves; the others refuse naming it; the leader's reads are
// linearizable; when the leader stops, another takes over within the
// election bound and a retry of an applied request gets its first outcome
// there, the session (whose TTL covers the gap) still alive.
func TestMemberLoop(t *testing.T) {
	net := &memNet{boxes: map[uint64]chan *raftpb.Message{}, cut: map[uint64]bool{}}
	peers := []uint64{1, 2, 3}
	addrs := map[uint64]cluster.Addrs{1: {Peer: "a:11", Client: "a:1"}, 2: {Peer: "b:11", Client: "b:2"}, 3: {Peer: "c:11", Client: "c:3"}}
	ms := map[uint64]*member{}
	for _, id := range peers {
		ms[id] = start(t, net, id, vfs.NewMem(), peers, addrs)
	}
	defer func() {
		for _, m := range ms {
			if m != nil {
				_ = m.loop.Stop()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	lead := leader(t, ms)
	for id, m := range ms {
		if id == lead {
			continue
		}
		_, err := m.loop.Submit(ctx, spec.Input{Op: spec.OpOpen, Session: spec.SessionID{1}, TTL: 10 * time.Second})
		var nl *cluster.NotLeader
		if !errors.As(err, &nl) {
			t.Fatalf("member %d (not the leader) took a submission: %v", id, err)
		}
		if nl.Addr != "" && nl.Addr != addrs[lead].Client {
			t.Fatalf("member %d names the leader at %q, want %q", id, nl.Addr, addrs[lead].Client)
		}
	}
	s := spec.SessionID{7}
	submit := func(l *cluster.Loop, in spec.Input) spec.Result {
		t.Helper()
		r, err := l.Submit(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := submit(ms[lead].loop, spec.Input{Op: spec.OpOpen, Session: s, TTL: 10 * time.Second}); r.Code != spec.OK {
		t.Fatalf("open: %v", r)
	}
	acq := spec.Input{Op: spec.OpAcquire, Session: s, Resource: "x", Mode: spec.EX, Request: 1, NoQueue: true}
	first := submit(ms[lead].loop, acq)
	if first.Code != spec.OK || first.Token == 0 {
		t.Fatalf("acquire: %v", first)
	}
	var held bool
	if err := ms[lead].loop.Inspect(ctx, func(c *engine.Core) { _, held = c.Resource("x") }); err != nil || !held {
		t.Fatalf("a read on the leader: %v, held %v", err, held)
	}

	// The leader stops; the others elect and serve the retry from the
	// replicated reply table.
	if err := ms[lead].loop.Stop(); err != nil {
		t.Fatal(err)
	}
	ms[lead] = nil
	began := time.Now()
	next := leader(t, ms)
	t.Logf("member %d leads %v after member %d stopped", next, time.Since(began).Round(time.Millisecond), lead)
	again := submit(ms[next].loop, acq)
	if again.Code != spec.OK || again.Token != first.Token {
		t.Fatalf("the retry at the new leader got %v, the first outcome was %v", again, first)
	}
	if r := submit(ms[next].loop, spec.Input{Op: spec.OpKeepAlive, Session: s}); r.Code != spec.OK {
		t.Fatalf("the session did not survive the failover: %v", r)
	}
	rel := submit(ms[next].loop, spec.Input{Op: spec.OpRelease, Session: s, Resource: "x", Request: 2})
	if rel.Code != spec.OK {
		t.Fatalf("release: %v", rel)
	}
	acq2 := submit(ms[next].loop, spec.Input{Op: spec.OpAcquire, Session: s, Resource: "x", Mode: spec.EX, Request: 3, NoQueue: true})
	if acq2.Token <= first.Token {
		t.Fatalf("token %d after failover is not above %d", acq2.Token, first.Token)
	}

	// A fresh member joins through the leader, catches up (from a
	// snapshot: the log is compacted every 8 entries), and takes over the
	// leadership; the old members know its addresses from the log.
	ms[4] = start(t, net, 4, vfs.NewMem(), nil, nil)
	voters, err := ms[next].loop.AddMember(ctx, 4, cluster.Addrs{Peer: "d:11", Client: "d:4"})
	if err != nil || !slices.Contains(voters, 4) {
		t.Fatalf("AddMember: %v, voters %v", err, voters)
	}
	if _, err := ms[next].loop.TransferLeader(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if leader(t, ms) != 4 {
		t.Fatal("member 4 does not lead after the transfer")
	}
	st, err := ms[4].loop.Status(ctx)
	if err != nil || st.Lead != 4 || len(st.Members) != 4 {
		t.Fatalf("status on member 4: %v %+v", err, st)
	}
	for _, m := range st.Members {
		if m.ID == 4 && m.Addrs.Client != "d:4" {
			t.Fatalf("member 4's addresses: %+v", m.Addrs)
		}
	}
	if r := submit(ms[4].loop, spec.Input{Op: spec.OpRelease, Session: s, Resource: "x", Request: 4}); r.Code != spec.OK {
		t.Fatalf("release on the new member: %v", r)
	}
	var nl *cluster.NotLeader
	if _, err := ms[next].loop.Submit(ctx, spec.Input{Op: spec.OpKeepAlive, Session: s}); !errors.As(err, &nl) || nl.Addr != "d:4" {
		t.Fatalf("the old leader's refusal: %v, want one naming d:4", err)
	}
	voters, err = ms[4].loop.RemoveMember(ctx, next)
	if err != nil || slices.Contains(voters, next) || len(voters) != 3 {
		t.Fatalf("RemoveMember(%d): %v, voters %v", next, err, voters)
	}
}
