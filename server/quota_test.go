package server_test

import (
	"context"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
)

// bearer presents a token on every call, over plaintext loopback.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// clients starts a node with two tokens, so two clients over 127.0.0.1:
// an abuser and a well-behaved one.
func clients(t *testing.T, opts server.Options) (abuser, good pb.LocksClient, n *servertest.Node) {
	t.Helper()
	opts.AuthTokens = []string{"abuser", "good"}
	n = servertest.StartOn(t, vfs.NewMem(), "127.0.0.1:0", opts)
	dial := func(token string) pb.LocksClient {
		conn, err := grpc.NewClient(n.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(bearer(token)))
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return pb.NewLocksClient(conn)
	}
	return dial("abuser"), dial("good"), n
}

// served shows the well-behaved client opening a session and taking a
// lock within a bound.
func served(t *testing.T, good pb.LocksClient, resource string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id := open(t, ctx, good, "good")
	_, err := good.Acquire(ctx, &pb.AcquireRequest{SessionId: id, RequestId: 1, Resource: []byte(resource), Mode: pb.Mode_MODE_EX, NoQueue: true})
	require.NoError(t, err, "the well-behaved client is served")
}

// TestSessionQuotaPerClient: a client that opens sessions as fast as it can
// is refused at its quota, not the node's; others go on opening; a closed
// or expired session gives its place back.
func TestSessionQuotaPerClient(t *testing.T) {
	ctx := testCtx(t)
	const quota = 20
	abuser, good, _ := clients(t, server.Options{SessionsPerClientMax: quota})
	var ids [][]byte
	for range quota {
		r, err := abuser.OpenSession(ctx, &pb.OpenSessionRequest{Ttl: durationpb.New(time.Second)})
		require.NoError(t, err)
		ids = append(ids, r.SessionId)
	}
	_, err := abuser.OpenSession(ctx, &pb.OpenSessionRequest{})
	require.Equal(t, pb.Code_CODE_LIMIT_EXCEEDED, code(t, err))
	require.Contains(t, err.Error(), "SessionsPerClientMax")
	served(t, good, "r")

	_, err = abuser.CloseSession(ctx, &pb.CloseSessionRequest{SessionId: ids[0]})
	require.NoError(t, err)
	_, err = abuser.OpenSession(ctx, &pb.OpenSessionRequest{})
	require.NoError(t, err, "a closed session gives its place back")

	// An expired session gives its place back before the client hears of it.
	events, err := abuser.Events(ctx, &pb.EventsRequest{SessionId: ids[1]})
	require.NoError(t, err)
	for {
		e, err := events.Recv()
		require.NoError(t, err)
		if e.GetExpired() != nil {
			break
		}
	}
	_, err = abuser.OpenSession(ctx, &pb.OpenSessionRequest{})
	require.NoError(t, err, "an expired session gives its place back")
}

// TestRequestQuotaPerClient: a client with its quota of calls in flight
// (queued acquires) is refused more at once; others are served.
func TestRequestQuotaPerClient(t *testing.T) {
	ctx := testCtx(t)
	const quota = 3
	abuser, good, _ := clients(t, server.Options{RequestsPerClientMax: quota, StreamsPerClientMax: 16})
	holder := open(t, ctx, good, "holder")
	names := []string{"r0", "r1", "r2"}
	for i, name := range names {
		_, err := good.Acquire(ctx, &pb.AcquireRequest{SessionId: holder, RequestId: uint64(i + 1), Resource: []byte(name), Mode: pb.Mode_MODE_EX})
		require.NoError(t, err)
	}
	a := open(t, ctx, abuser, "abuser")
	done := make(chan error, quota)
	for i, name := range names {
		go func() {
			_, err := abuser.Acquire(ctx, &pb.AcquireRequest{SessionId: a, RequestId: uint64(i + 1), Resource: []byte(name), Mode: pb.Mode_MODE_EX})
			done <- err
		}()
	}
	for _, name := range names { // each acquire is queued: its call is in flight
		w, err := good.Watch(ctx, &pb.WatchRequest{Resource: []byte(name)})
		require.NoError(t, err)
		for {
			st, err := w.Recv()
			require.NoError(t, err)
			if len(st.GetResource().GetWaiting()) == 1 {
				break
			}
		}
	}
	_, err := abuser.Describe(ctx, &pb.DescribeRequest{Resource: []byte("r0")})
	require.Equal(t, pb.Code_CODE_LIMIT_EXCEEDED, code(t, err))
	require.Contains(t, err.Error(), "RequestsPerClientMax")
	served(t, good, "other")

	_, err = good.CloseSession(ctx, &pb.CloseSessionRequest{SessionId: holder})
	require.NoError(t, err)
	for range quota {
		require.NoError(t, <-done)
	}
	_, err = abuser.Describe(ctx, &pb.DescribeRequest{Resource: []byte("r0")})
	require.NoError(t, err, "answered calls give their places back")
}

// TestStreamQuotaPerClient: a client with its quota of streams open is
// refused another; others open theirs.
func TestStreamQuotaPerClient(t *testing.T) {
	ctx := testCtx(t)
	const quota = 3
	abuser, good, _ := clients(t, server.Options{StreamsPerClientMax: quota})
	watch := func(c pb.LocksClient) error {
		w, err := c.Watch(ctx, &pb.WatchRequest{Resource: []byte("w")})
		if err == nil {
			_, err = w.Recv()
		}
		return err
	}
	for range quota {
		require.NoError(t, watch(abuser))
	}
	err := watch(abuser)
	require.Equal(t, pb.Code_CODE_LIMIT_EXCEEDED, code(t, err))
	require.Contains(t, err.Error(), "StreamsPerClientMax")
	require.NoError(t, watch(good))
	served(t, good, "r")
}

// rawConn dials the node over TCP, optionally sending the HTTP/2 preface
// and an empty SETTINGS frame, as a client that then does nothing.
func rawConn(t *testing.T, addr string, preface bool) (net.Conn, *http2.Framer) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	f := http2.NewFramer(c, c)
	if preface {
		_, err = io.WriteString(c, http2.ClientPreface)
		require.NoError(t, err)
		require.NoError(t, f.WriteSettings())
	}
	return c, f
}

// goAway reads frames until a GOAWAY, acking pings if ack, and returns
// it; nil if the connection ended first. The deadline bounds the wait.
func goAway(t *testing.T, c net.Conn, f *http2.Framer, ack bool, within time.Duration) *http2.GoAwayFrame {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(within)))
	for {
		fr, err := f.ReadFrame()
		if err != nil {
			require.NotErrorIs(t, err, os.ErrDeadlineExceeded, "the node left the connection open")
			return nil
		}
		switch fr := fr.(type) {
		case *http2.GoAwayFrame:
			return fr
		case *http2.PingFrame:
			if ack && !fr.IsAck() {
				require.NoError(t, f.WritePing(true, fr.Data))
			}
		}
	}
}

// TestConnectionLimit: a client holding every connection the node allows,
// doing nothing, gets one more refused clearly; its silent connections
// are closed after the handshake timeout, and a well-behaved client is then
// served within a bound.
func TestConnectionLimit(t *testing.T) {
	const limit = 8
	_, good, n := clients(t, server.Options{ConnectionsMax: limit, HandshakeTimeout: time.Second})
	var silent []net.Conn
	for range limit {
		c, _ := rawConn(t, n.Addr, false)
		silent = append(silent, c)
	}
	over, f := rawConn(t, n.Addr, true)
	g := goAway(t, over, f, false, 5*time.Second)
	require.NotNil(t, g, "a refusal, not a silent close")
	require.Contains(t, string(g.DebugData()), "ConnectionsMax (8) reached")

	for _, c := range silent { // closed by the handshake timeout
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		_, err := io.Copy(io.Discard, c)
		require.NoError(t, err, "closed by the node (EOF), not by the deadline")
	}
	served(t, good, "r")
}

// TestIdleHalfOpenAndPingFlood: a connection that stops answering (half
// open) is closed by the keepalive; one that answers but opens no stream is
// closed as idle; one that floods pings is told off and closed.
func TestIdleHalfOpenAndPingFlood(t *testing.T) {
	// gRPC pings no sooner than 1s after the last read.
	_, good, n := clients(t, server.Options{KeepAliveTime: time.Second, KeepAliveTimeout: 500 * time.Millisecond,
		KeepAliveMinTime: time.Minute})
	halfOpen, f := rawConn(t, n.Addr, true)
	require.Nil(t, goAway(t, halfOpen, f, false, 5*time.Second), "closed without a goodbye")

	flood, f := rawConn(t, n.Addr, true)
	for i := range 8 {
		require.NoError(t, f.WritePing(false, [8]byte{byte(i)}))
	}
	g := goAway(t, flood, f, false, 5*time.Second)
	require.NotNil(t, g)
	require.Equal(t, http2.ErrCodeEnhanceYourCalm, g.ErrCode)
	require.Equal(t, "too_many_pings", string(g.DebugData()))
	served(t, good, "r")

	_, _, n = clients(t, server.Options{IdleTimeout: time.Second})
	idle, f := rawConn(t, n.Addr, true)
	g = goAway(t, idle, f, true, 5*time.Second)
	require.NotNil(t, g)
	require.Equal(t, http2.ErrCodeNo, g.ErrCode, "an idle connection is sent away")
	require.Equal(t, "max_idle", string(g.DebugData()))
}

// TestAbuserMemoryReturns: the memory an abuser's connections and sessions
// take is given back when it leaves.
func TestAbuserMemoryReturns(t *testing.T) {
	// 4,000 turns among up to 2,000 sessions: a race build checks every
	// invariant of the whole core after every step, which took 14 to 20 s
	// of testCtx's 20 on a busy 2-core machine.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	abuser, _, n := clients(t, server.Options{})
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	const conns, sessions = 300, 2000
	var raw []net.Conn
	for range conns {
		c, _ := rawConn(t, n.Addr, true)
		raw = append(raw, c)
	}
	var ids [][]byte
	for range sessions {
		r, err := abuser.OpenSession(ctx, &pb.OpenSessionRequest{Ttl: durationpb.New(time.Hour)})
		require.NoError(t, err)
		ids = append(ids, r.SessionId)
	}
	connections(t, n, func(held int) bool { return held >= conns+1 }) // and the abuser's client

	during := heap()
	for _, c := range raw {
		_ = c.Close()
	}
	for _, id := range ids {
		_, err := abuser.CloseSession(ctx, &pb.CloseSessionRequest{SessionId: id})
		require.NoError(t, err)
	}
	connections(t, n, func(held int) bool { return held <= 1 })

	after := heap()
	t.Logf("heap: before %d KiB, during %d KiB, after %d KiB", before>>10, during>>10, after>>10)
	require.Greater(t, during, before+(during-before)/2)
	require.Less(t, after, before+(during-before)/4, "the abuser's memory returns")
}

// connections waits (at most 10s) until the connections the node holds
// satisfy ok: the node closes a connection some time after its peer did.
func connections(t *testing.T, n *servertest.Node, ok func(int) bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for !ok(n.Server.Connections()) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("the node holds %d connections", n.Server.Connections())
		}
	}
}
