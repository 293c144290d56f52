package peer

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// wait bounds every wait of these tests.
const wait = 10 * time.Second

// member is a transport serving its peer port on loopback.
type member struct {
	tr   *Transport
	srv  *grpc.Server
	addr string
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lis net.Listener
	var err error
	// A port just closed may take a moment to bind again.
	for deadline := time.Now().Add(wait); ; time.Sleep(20 * time.Millisecond) {
		if lis, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	require.NoError(t, err)
	return lis
}

// testConfig is a configuration with short backoffs.
func testConfig(id uint64, addrs map[uint64]string) Config {
	return Config{ID: id, ClusterID: "test", Peers: addrs,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, DialTimeout: time.Second}
}

func start(t *testing.T, cfg Config, lis net.Listener) *member {
	t.Helper()
	tr, err := New(cfg)
	require.NoError(t, err)
	srv := grpc.NewServer(tr.ServerOptions()...)
	tr.Register(srv)
	go srv.Serve(lis) //nolint:errcheck // ends with Stop
	m := &member{tr: tr, srv: srv, addr: lis.Addr().String()}
	t.Cleanup(m.stop)
	return m
}

func (m *member) stop() {
	m.tr.Close()
	m.srv.Stop()
}

// cluster starts n members with ids 1..n, each configured by edit.
func cluster(t *testing.T, n int, edit func(*Config)) []*member {
	t.Helper()
	addrs := map[uint64]string{}
	var liss []net.Listener
	for i := range n {
		lis := listen(t, "")
		liss = append(liss, lis)
		addrs[uint64(i+1)] = lis.Addr().String()
	}
	var ms []*member
	for i := range n {
		cfg := testConfig(uint64(i+1), addrs)
		if edit != nil {
			edit(&cfg)
		}
		ms = append(ms, start(t, cfg, liss[i]))
	}
	return ms
}

func recvN(t *testing.T, tr *Transport, n int) []*raftpb.Message {
	t.Helper()
	var got []*raftpb.Message
	timeout := time.After(wait)
	for len(got) < n {
		select {
		case m := <-tr.Recv():
			got = append(got, m)
		case <-timeout:
			t.Fatalf("received %d messages of %d", len(got), n)
		}
	}
	return got
}

func noRecv(t *testing.T, tr *Transport, d time.Duration) {
	t.Helper()
	select {
	case m := <-tr.Recv():
		t.Fatalf("received %v from %d, want nothing", m.GetType(), m.GetFrom())
	case <-time.After(d):
	}
}

// report waits for a report that ok accepts, skipping others.
func report(t *testing.T, tr *Transport, ok func(Report) bool) Report {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case r := <-tr.Reports():
			if ok(r) {
				return r
			}
		case <-timeout:
			t.Fatal("no such report")
		}
	}
}

func unreachable(to uint64) func(Report) bool {
	return func(r Report) bool { return r.To == to && r.Unreachable }
}

func TestExchange(t *testing.T) {
	ms := cluster(t, 3, nil)
	const each = 50
	for i, m := range ms {
		from := uint64(i + 1)
		var out []*raftpb.Message
		for k := range each {
			for to := uint64(1); to <= 3; to++ {
				if to != from {
					out = append(out, msg(raftpb.MsgHeartbeat, from, to, uint64(k)))
				}
			}
		}
		m.tr.Send(out)
	}
	for i, m := range ms {
		got := recvN(t, m.tr, 2*each)
		next := map[uint64]uint64{}
		for _, g := range got {
			require.Equal(t, uint64(i+1), g.GetTo())
			require.Equal(t, next[g.GetFrom()], g.GetIndex(), "in order from %d", g.GetFrom())
			next[g.GetFrom()]++
		}
		require.Len(t, next, 2)
		noRecv(t, m.tr, 50*time.Millisecond)
	}
}

func TestBatching(t *testing.T) {
	ms := cluster(t, 2, nil)
	const n = 3000
	var out []*raftpb.Message
	for k := range n {
		m := msg(raftpb.MsgApp, 1, 2, uint64(k))
		m.Entries = []*raftpb.Entry{{Index: proto.Uint64(uint64(k)), Data: []byte("turn")}}
		out = append(out, m)
	}
	ms[0].tr.Send(out)
	got := recvN(t, ms[1].tr, n)
	for k, g := range got {
		require.Equal(t, uint64(k), g.GetIndex())
		require.True(t, proto.Equal(out[k], g))
	}
	frames := ms[1].tr.framesIn.Load()
	t.Logf("%d messages in %d frames", n, frames)
	// Frames hold at most FrameMessagesMax (1024); while one is written
	// the rest waits and goes in the next.
	require.GreaterOrEqual(t, frames, uint64((n+1023)/1024))
	require.Less(t, frames, uint64(n/10), "messages waiting go in one frame")
}

func TestSnapshotChunked(t *testing.T) {
	ms := cluster(t, 2, func(c *Config) { c.ChunkBytes = 64 << 10 })
	data := make([]byte, 3<<20+12345)
	rand.Read(data)
	snap := msg(raftpb.MsgSnap, 1, 2, 0)
	snap.Snapshot = &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(77), Term: proto.Uint64(3),
		ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}}}}
	// A heartbeat alongside goes on the message stream.
	ms[0].tr.Send([]*raftpb.Message{snap, msg(raftpb.MsgHeartbeat, 1, 2, 0)})
	got := recvN(t, ms[1].tr, 2)
	var gotSnap *raftpb.Message
	for _, g := range got {
		if g.GetType() == raftpb.MsgSnap {
			gotSnap = g
		}
	}
	require.NotNil(t, gotSnap)
	require.True(t, bytes.Equal(data, gotSnap.GetSnapshot().GetData()))
	require.True(t, proto.Equal(snap, gotSnap))
	require.Equal(t, uint64((proto.Size(snap)+64<<10-1)/(64<<10)), ms[1].tr.chunksIn.Load(), "chunks of 64 KiB")
	r := report(t, ms[0].tr, func(r Report) bool { return r.Snapshot })
	require.Equal(t, Report{To: 2, Snapshot: true}, r)
}

func TestSnapshotTooLargeFails(t *testing.T) {
	ms := cluster(t, 2, func(c *Config) {
		c.ChunkBytes = 64 << 10
		if c.ID == 2 {
			c.SnapshotBytesMax = 1 << 20 // the receiver takes less than the sender sends
		}
	})
	snap := msg(raftpb.MsgSnap, 1, 2, 0)
	snap.Snapshot = &raftpb.Snapshot{Data: make([]byte, 2<<20), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(1)}}
	ms[0].tr.Send([]*raftpb.Message{snap})
	r := report(t, ms[0].tr, func(r Report) bool { return r.Snapshot })
	require.Equal(t, Report{To: 2, Snapshot: true, Failed: true}, r)
	noRecv(t, ms[1].tr, 100*time.Millisecond)
}

func TestPeerDownThenReconnect(t *testing.T) {
	ms := cluster(t, 2, nil)
	a, b := ms[0], ms[1]
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 1)})
	recvN(t, b.tr, 1)

	b.stop()
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 2)})
	report(t, a.tr, unreachable(2))
	// A snapshot to a member that is down fails.
	snap := msg(raftpb.MsgSnap, 1, 2, 0)
	snap.Snapshot = &raftpb.Snapshot{Data: []byte("state"), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(1)}}
	a.tr.Send([]*raftpb.Message{snap})
	require.Equal(t, Report{To: 2, Snapshot: true, Failed: true},
		report(t, a.tr, func(r Report) bool { return r.Snapshot }))

	// Member 2 comes back at the same address: raft's retransmissions get
	// through again once the sender's backoff is over.
	b2 := start(t, testConfig(2, map[uint64]string{1: a.addr, 2: b.addr}), listen(t, b.addr))
	deadline := time.After(wait)
	for delivered := false; !delivered; {
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 3)})
		select {
		case m := <-b2.tr.Recv():
			require.Equal(t, uint64(1), m.GetFrom())
			delivered = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("nothing delivered after the peer came back")
		}
	}
}

// rawStream opens a stream of method to addr with metadata md, sends
// frames and returns the status the receiver ended it with.
func rawStream(t *testing.T, addr string, desc int, md map[string]string, frames ...[]byte) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.CallContentSubtype(codecName)))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), metadata.New(md)), wait)
	defer cancel()
	method := methodStream
	if desc == 1 {
		method = methodSnapshot
	}
	cs, err := conn.NewStream(ctx, &serviceDesc.Streams[desc], method)
	require.NoError(t, err)
	for _, f := range frames {
		if cs.SendMsg(f) != nil {
			break // the status comes from RecvMsg
		}
	}
	require.NoError(t, cs.CloseSend())
	var b []byte
	if err := cs.RecvMsg(&b); !errors.Is(err, io.EOF) {
		return err // nil: a snapshot's answer
	}
	return nil // a message stream ended without error
}

func frameOf(t *testing.T, msgs ...*raftpb.Message) []byte {
	var bufs [][]byte
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		require.NoError(t, err)
		bufs = append(bufs, b)
	}
	return encodeFrame(bufs)
}

func md(cluster string, from, to uint64) map[string]string {
	return map[string]string{mdCluster: cluster, mdFrom: strconv.FormatUint(from, 10), mdTo: strconv.FormatUint(to, 10)}
}

func requireCode(t *testing.T, want codes.Code, err error) {
	t.Helper()
	require.Equal(t, want, status.Code(err), "status %v", err)
}

func TestWrongClusterRefused(t *testing.T) {
	ms := cluster(t, 2, func(c *Config) {
		if c.ID == 2 {
			c.ClusterID = "another"
		}
	})
	ms[0].tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 1)})
	report(t, ms[0].tr, unreachable(2))
	noRecv(t, ms[1].tr, 200*time.Millisecond)

	hb := frameOf(t, msg(raftpb.MsgHeartbeat, 1, 2, 1))
	err := rawStream(t, ms[1].addr, 0, md("test", 1, 2), hb)
	requireCode(t, codes.PermissionDenied, err)
	require.Contains(t, err.Error(), `cluster "test"`)
	requireCode(t, codes.PermissionDenied, rawStream(t, ms[1].addr, 0, nil, hb))
	// Wrong receiver, unknown sender, itself as sender.
	requireCode(t, codes.FailedPrecondition, rawStream(t, ms[1].addr, 0, md("another", 1, 3), hb))
	requireCode(t, codes.PermissionDenied, rawStream(t, ms[1].addr, 0, md("another", 9, 2), hb))
	requireCode(t, codes.PermissionDenied, rawStream(t, ms[1].addr, 0, md("another", 2, 2), hb))
	noRecv(t, ms[1].tr, 50*time.Millisecond)
}

func TestGarbageRefused(t *testing.T) {
	ms := cluster(t, 2, nil)
	b := ms[1]
	hb := frameOf(t, msg(raftpb.MsgHeartbeat, 1, 2, 1))
	// A good frame, then garbage: the good one is delivered, the stream is
	// ended at the garbage.
	err := rawStream(t, b.addr, 0, md("test", 1, 2), hb, []byte("\x01\x05garbage bytes"), hb)
	requireCode(t, codes.InvalidArgument, err)
	require.Contains(t, err.Error(), "does not parse")
	require.Len(t, recvN(t, b.tr, 1), 1)
	noRecv(t, b.tr, 100*time.Millisecond)

	garbage := make([]byte, 4096)
	rand.Read(garbage)
	requireCode(t, codes.InvalidArgument, rawStream(t, b.addr, 0, md("test", 1, 2), garbage))
	// A frame whose second message does not parse: nothing of it is delivered.
	bad := encodeFrame([][]byte{hb[2:], {0xff, 0xff}})
	requireCode(t, codes.InvalidArgument, rawStream(t, b.addr, 0, md("test", 1, 2), bad))
	noRecv(t, b.tr, 100*time.Millisecond)

	// A message whose From is not the stream's sender is dropped; the
	// stream goes on.
	require.NoError(t, rawStream(t, b.addr, 0, md("test", 1, 2),
		frameOf(t, msg(raftpb.MsgHeartbeat, 3, 2, 1), msg(raftpb.MsgHeartbeat, 1, 2, 2))))
	got := recvN(t, b.tr, 1)
	require.Equal(t, uint64(2), got[0].GetIndex())
	noRecv(t, b.tr, 100*time.Millisecond)

	// Snapshot streams: garbage chunks, a chunk out of order, a short
	// snapshot, a snapshot that is not a MsgSnap.
	snap := msg(raftpb.MsgSnap, 1, 2, 0)
	snap.Snapshot = &raftpb.Snapshot{Data: []byte("state")}
	sb, err := proto.Marshal(snap)
	require.NoError(t, err)
	for name, frames := range map[string][][]byte{
		"garbage":      {garbage},
		"out of order": {encodeChunk(1, len(sb), sb)},
		"short":        {encodeChunk(0, len(sb)+1, sb)},
		"no chunk":     {},
		"heartbeat":    {encodeChunk(0, len(hb)-3, hb[3:])},
	} {
		requireCode(t, codes.InvalidArgument, rawStream(t, b.addr, 1, md("test", 1, 2), frames...))
		_ = name
	}
	noRecv(t, b.tr, 100*time.Millisecond)
	// And the good one, by hand, in two chunks.
	require.NoError(t, rawStream(t, b.addr, 1, md("test", 1, 2),
		encodeChunk(0, len(sb), sb[:4]), encodeChunk(1, len(sb), sb[4:])))
	require.True(t, proto.Equal(snap, recvN(t, b.tr, 1)[0]))
}

func TestRemovedPeerRefused(t *testing.T) {
	ms := cluster(t, 3, nil)
	a, b, c := ms[0], ms[1], ms[2]
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 1)})
	recvN(t, b.tr, 1)

	// Member 2 learns that 1 was removed: 1's open stream is ended at its
	// next frame, and every stream after it refused.
	b.tr.RemovePeer(1)
	for range 3 {
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 2)})
		time.Sleep(50 * time.Millisecond)
	}
	report(t, a.tr, unreachable(2))
	noRecv(t, b.tr, 200*time.Millisecond)
	err := rawStream(t, b.addr, 0, md("test", 1, 2), frameOf(t, msg(raftpb.MsgHeartbeat, 1, 2, 3)))
	requireCode(t, codes.PermissionDenied, err)
	require.Contains(t, err.Error(), "removed")
	requireCode(t, codes.PermissionDenied, rawStream(t, b.addr, 1, md("test", 1, 2)))
	// Member 3 is still welcome.
	c.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 3, 2, 1)})
	require.Equal(t, uint64(3), recvN(t, b.tr, 1)[0].GetFrom())

	// A removed destination: Send drops and reports it.
	a.tr.RemovePeer(3)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 3, 1)})
	report(t, a.tr, unreachable(3))
	noRecv(t, c.tr, 100*time.Millisecond)

	// Added again (SetPeer), it is a member again.
	a.tr.SetPeer(3, c.addr)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 3, 2)})
	require.Equal(t, uint64(2), recvN(t, c.tr, 1)[0].GetIndex())
}

func TestConfig(t *testing.T) {
	for _, cfg := range []Config{
		{ClusterID: "c"},
		{ID: 1},
		{ID: 1, ClusterID: "c", Peers: map[uint64]string{2: ""}},
		{ID: 1, ClusterID: "c", Peers: map[uint64]string{0: "x:1"}},
		{ID: 1, ClusterID: "c", MessageBytesMax: 100, FrameBytesMax: 100},
		{ID: 1, ClusterID: "c", BackoffMin: time.Second, BackoffMax: time.Millisecond},
	} {
		_, err := New(cfg)
		require.Error(t, err, "%+v", cfg)
	}
	tr, err := New(Config{ID: 1, ClusterID: "c"})
	require.NoError(t, err)
	require.NoError(t, tr.Close())
	require.NoError(t, tr.Close())
	tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 1)}) // after Close: nothing
}

func TestSendNeverBlocks(t *testing.T) {
	dead := listen(t, "")
	addr := dead.Addr().String()
	require.NoError(t, dead.Close()) // nothing listens there now
	cfg := testConfig(1, map[uint64]string{2: addr})
	cfg.QueueMax = 4
	tr, err := New(cfg)
	require.NoError(t, err)
	defer tr.Close()
	var out []*raftpb.Message
	for k := range 10000 {
		out = append(out, msg(raftpb.MsgHeartbeat, 1, 2, uint64(k)))
	}
	const snaps = 5
	for range snaps {
		s := msg(raftpb.MsgSnap, 1, 2, 0)
		s.Snapshot = &raftpb.Snapshot{Data: []byte("state")}
		out = append(out, s)
	}
	begin := time.Now()
	tr.Send(out)
	require.Less(t, time.Since(begin), time.Second, "Send returns at once, dropping what does not fit")
	report(t, tr, unreachable(2))
	// Every MsgSnap is reported failed: those that found no room at once,
	// the others when they could not be sent.
	for range snaps {
		require.Equal(t, Report{To: 2, Snapshot: true, Failed: true},
			report(t, tr, func(r Report) bool { return r.Snapshot }))
	}
	select {
	case r := <-tr.Reports():
		require.False(t, r.Snapshot, "no more snapshot reports than snapshots: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
}
