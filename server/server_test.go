package server_test

import (
	"context"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// node starts a server on loopback over an in-memory store and returns a
// connected stub. Everything stops with the test.
func node(t *testing.T, opts server.Options, dial ...grpc.DialOption) (pb.LocksClient, *grpc.ClientConn) {
	t.Helper()
	c, conn, _ := nodeServer(t, opts, dial...)
	return c, conn
}

// nodeServer is node, also returning the server.
func nodeServer(t *testing.T, opts server.Options, dial ...grpc.DialOption) (pb.LocksClient, *grpc.ClientConn, *server.Server) {
	t.Helper()
	n := servertest.StartOn(t, vfs.NewMem(), "127.0.0.1:0", opts)
	srv := n.Server
	if len(dial) == 0 {
		dial = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(n.Addr, dial...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return pb.NewLocksClient(conn), conn, srv
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// open opens a session; name only says which, for the reader.
func open(t *testing.T, ctx context.Context, c pb.LocksClient, name string) []byte {
	t.Helper()
	r, err := c.OpenSession(ctx, &pb.OpenSessionRequest{Ttl: durationpb.New(time.Minute)})
	require.NoError(t, err, "open %s", name)
	return r.SessionId
}

// code returns the Bouncer code of an RPC error.
func code(t *testing.T, err error) pb.Code {
	t.Helper()
	require.Error(t, err)
	info, ok := pb.ErrorInfoOf(err)
	require.True(t, ok, "no ErrorInfo in %v", err)
	return info.Code
}

func TestAcquireWaitsForRelease(t *testing.T) {
	ctx := testCtx(t)
	c, _, srv := nodeServer(t, server.Options{})
	a, b := open(t, ctx, c, "a"), open(t, ctx, c, "b")
	g1, err := c.Acquire(ctx, &pb.AcquireRequest{SessionId: a, RequestId: 1, Resource: []byte("r"), Mode: pb.Mode_MODE_EX})
	require.NoError(t, err)
	require.Equal(t, uint64(1), g1.Token)

	// b's try fails at once; its blocking acquire waits for a's release.
	_, err = c.Acquire(ctx, &pb.AcquireRequest{SessionId: b, RequestId: 1, Resource: []byte("r"), Mode: pb.Mode_MODE_PR, NoQueue: true})
	require.Equal(t, pb.Code_CODE_WOULD_BLOCK, code(t, err))
	require.Equal(t, codes.FailedPrecondition, status.Code(err))

	events := subscribe(t, ctx, c, a)
	got := make(chan *pb.LockResponse, 1)
	go func() {
		g, err := c.Acquire(ctx, &pb.AcquireRequest{SessionId: b, RequestId: 2, Acked: 1, Resource: []byte("r"), Mode: pb.Mode_MODE_PR})
		if err != nil {
			t.Error(err)
		}
		got <- g
	}()
	e, err := events.Recv()
	require.NoError(t, err)
	require.Equal(t, pb.Mode_MODE_PR, e.GetBlocking().GetMode(), "a hears that it blocks b")

	// Another session cannot release a's lock.
	_, err = c.Release(ctx, &pb.ReleaseRequest{SessionId: b, RequestId: 3, Resource: []byte("r")})
	require.Equal(t, pb.Code_CODE_NOT_HELD, code(t, err))

	_, err = c.Release(ctx, &pb.ReleaseRequest{SessionId: a, RequestId: 2, Acked: 1, Resource: []byte("r"), WriteValue: true, Value: []byte("v")})
	require.NoError(t, err)
	g2 := <-got
	require.Greater(t, g2.Token, g1.Token)
	require.Equal(t, []byte("v"), g2.Value)

	d, err := c.Describe(ctx, &pb.DescribeRequest{Resource: []byte("r")})
	require.NoError(t, err)
	require.True(t, d.Exists)
	require.Len(t, d.Resource.Holders, 1)
	require.Equal(t, srv.SessionTag(spec.SessionID(b)), d.Resource.Holders[0].SessionTag)
	require.NotContains(t, string(d.Resource.Holders[0].SessionTag), string(b), "ids never leave the node")
}

func TestAcquireHonoursTheCallDeadline(t *testing.T) {
	ctx := testCtx(t)
	c, _ := node(t, server.Options{})
	a, b := open(t, ctx, c, "a"), open(t, ctx, c, "b")
	_, err := c.Acquire(ctx, &pb.AcquireRequest{SessionId: a, RequestId: 1, Resource: []byte("r"), Mode: pb.Mode_MODE_EX})
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 2*time.Second) // the node keeps 200 ms of it for the answer
	defer cancel()
	_, err = c.Acquire(short, &pb.AcquireRequest{SessionId: b, RequestId: 1, Resource: []byte("r"), Mode: pb.Mode_MODE_EX})
	require.Equal(t, pb.Code_CODE_TIMEOUT, code(t, err), "the node answers Timeout before the caller's deadline")
}

func TestBadInputNamesTheField(t *testing.T) {
	ctx := testCtx(t)
	c, _ := node(t, server.Options{})
	a := open(t, ctx, c, "a")
	cases := []struct {
		req  *pb.AcquireRequest
		want string
	}{
		{&pb.AcquireRequest{SessionId: []byte("short"), RequestId: 1, Resource: []byte("r"), Mode: pb.Mode_MODE_EX}, "session_id"},
		{&pb.AcquireRequest{SessionId: a, RequestId: 1, Resource: []byte("r")}, "mode"},
		{&pb.AcquireRequest{SessionId: a, RequestId: 0, Resource: []byte("r"), Mode: pb.Mode_MODE_EX}, "request"},
		{&pb.AcquireRequest{SessionId: a, RequestId: 1, Mode: pb.Mode_MODE_EX}, "resource"},
		{&pb.AcquireRequest{SessionId: a, RequestId: 1, Resource: []byte("r"), Mode: pb.Mode_MODE_EX, LockDelay: durationpb.New(-time.Second)}, "lock_delay"},
		{&pb.AcquireRequest{SessionId: a, RequestId: 1, Resource: make([]byte, 300), Mode: pb.Mode_MODE_EX}, "NameBytesMax"},
	}
	for _, tc := range cases {
		_, err := c.Acquire(ctx, tc.req)
		require.Error(t, err)
		require.Contains(t, status.Convert(err).Message(), tc.want)
		require.Contains(t, []codes.Code{codes.InvalidArgument, codes.ResourceExhausted}, status.Code(err))
	}
	_, err := c.OpenSession(ctx, &pb.OpenSessionRequest{Ttl: durationpb.New(2 * time.Hour)})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = c.List(ctx, &pb.ListRequest{Limit: 5000})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

func TestAuthToken(t *testing.T) {
	ctx := testCtx(t)
	c, conn := node(t, server.Options{AuthToken: "s3cret"})
	_, err := c.OpenSession(ctx, &pb.OpenSessionRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	wrong := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer nope")
	_, err = c.OpenSession(wrong, &pb.OpenSessionRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	_, err = c.Events(wrong, &pb.EventsRequest{})
	if err == nil {
		s, _ := c.Events(wrong, &pb.EventsRequest{SessionId: make([]byte, 16)})
		_, err = s.Recv()
	}
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	pipe, err := c.Pipe(wrong)
	if err == nil {
		_ = pipe.Send(&pb.PipeRequest{Call: 1})
		_, err = pipe.Recv()
	}
	require.Equal(t, codes.Unauthenticated, status.Code(err), "a pipe needs the token too")
	right := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer s3cret")
	r, err := c.OpenSession(right, &pb.OpenSessionRequest{})
	require.NoError(t, err)
	require.Len(t, r.SessionId, 16, "the node chose an id")
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "health checks need no token")
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, h.Status)
}

func TestWatchAndKeepAlive(t *testing.T) {
	ctx := testCtx(t)
	c, _ := node(t, server.Options{})
	a := open(t, ctx, c, "a")
	w, err := c.Watch(ctx, &pb.WatchRequest{Resource: []byte("w")})
	require.NoError(t, err)
	first, err := w.Recv()
	require.NoError(t, err)
	require.False(t, first.Exists)
	_, err = c.Acquire(ctx, &pb.AcquireRequest{SessionId: a, RequestId: 1, Resource: []byte("w"), Mode: pb.Mode_MODE_CW})
	require.NoError(t, err)
	held, err := w.Recv()
	require.NoError(t, err)
	require.True(t, held.Exists)
	require.Equal(t, pb.Mode_MODE_CW, held.Resource.Holders[0].Mode)

	ka, err := c.KeepAlive(ctx)
	require.NoError(t, err)
	require.NoError(t, ka.Send(&pb.KeepAliveRequest{SessionId: a}))
	resp, err := ka.Recv()
	require.NoError(t, err)
	require.Equal(t, pb.Code_CODE_OK, resp.Code)
	nobody := spec.NamedSession("nobody")
	require.NoError(t, ka.Send(&pb.KeepAliveRequest{SessionId: nobody[:]}))
	resp, err = ka.Recv()
	require.NoError(t, err)
	require.Equal(t, pb.Code_CODE_UNKNOWN_SESSION, resp.Code)
	require.NoError(t, ka.CloseSend())

	_, err = c.CloseSession(ctx, &pb.CloseSessionRequest{SessionId: a})
	require.NoError(t, err)
	gone, err := w.Recv()
	require.NoError(t, err)
	require.False(t, gone.Exists, "closing the session released its lock")
}

func TestAsyncAcquire(t *testing.T) {
	ctx := testCtx(t)
	c, _ := node(t, server.Options{})
	a, b := open(t, ctx, c, "a"), open(t, ctx, c, "b")
	_, err := c.Acquire(ctx, &pb.AcquireRequest{SessionId: a, RequestId: 1, Resource: []byte("r"), Mode: pb.Mode_MODE_EX})
	require.NoError(t, err)
	events := subscribe(t, ctx, c, b)
	q, err := c.Acquire(ctx, &pb.AcquireRequest{SessionId: b, RequestId: 1, Resource: []byte("r"), Mode: pb.Mode_MODE_EX, Async: true})
	require.NoError(t, err)
	require.True(t, q.Queued, "an async request that must wait answers queued at once")
	again, err := c.Acquire(ctx, &pb.AcquireRequest{SessionId: b, RequestId: 1, Resource: []byte("r"), Mode: pb.Mode_MODE_EX, Async: true})
	require.NoError(t, err)
	require.True(t, again.Queued, "a retry of a queued request is still queued")
	_, err = c.Release(ctx, &pb.ReleaseRequest{SessionId: a, RequestId: 2, Acked: 1, Resource: []byte("r")})
	require.NoError(t, err)
	e, err := events.Recv()
	require.NoError(t, err)
	require.Equal(t, uint64(1), e.GetCompleted().GetRequestId())
	require.Equal(t, uint64(2), e.GetCompleted().GetGrant().GetToken())
	done, err := c.Acquire(ctx, &pb.AcquireRequest{SessionId: b, RequestId: 1, Resource: []byte("r"), Mode: pb.Mode_MODE_EX, Async: true})
	require.NoError(t, err)
	require.Equal(t, uint64(2), done.Token, "a retry after completion returns the grant")
}

// subscribe opens an Events stream and waits until it is live.
func subscribe(t *testing.T, ctx context.Context, c pb.LocksClient, id []byte) pb.Locks_EventsClient {
	events, err := c.Events(ctx, &pb.EventsRequest{SessionId: id})
	require.NoError(t, err)
	first, err := events.Recv()
	require.NoError(t, err)
	require.NotNil(t, first.GetSubscribed(), "an Events stream starts with Subscribed")
	return events
}

// TestPipe: requests of several sessions on one stream are answered by
// call, exactly as their unary calls would be; bad ones name the field; a
// retried request id gets its original answer; Drain ends the stream.
func TestPipe(t *testing.T) {
	ctx := testCtx(t)
	c, _, srv := nodeServer(t, server.Options{})
	a, b := open(t, ctx, c, "a"), open(t, ctx, c, "b")
	pipe, err := c.Pipe(ctx)
	require.NoError(t, err)
	acquire := func(session []byte, req uint64, m pb.Mode) *pb.PipeRequest_Acquire {
		return &pb.PipeRequest_Acquire{Acquire: &pb.AcquireRequest{SessionId: session, RequestId: req,
			Resource: []byte("r"), Mode: m}}
	}
	// Requests on a pipe are not ordered among themselves: b asks after a's
	// answer.
	require.NoError(t, pipe.Send(&pb.PipeRequest{Call: 1, Op: acquire(a, 1, pb.Mode_MODE_EX)}))
	first, err := pipe.Recv()
	require.NoError(t, err)
	send := []*pb.PipeRequest{
		{Call: 2, Op: acquire(b, 1, pb.Mode_MODE_PR)},
		{Call: 3, Op: acquire(b, 2, pb.Mode(42))},
		{Call: 4},
		{Call: 5, Op: &pb.PipeRequest_Release{Release: &pb.ReleaseRequest{SessionId: b, RequestId: 3, Resource: []byte("x")}}},
	}
	for _, r := range send {
		require.NoError(t, pipe.Send(r))
	}
	got := map[uint64]*pb.PipeReply{1: first}
	for range send {
		r, err := pipe.Recv()
		require.NoError(t, err)
		got[r.Call] = r
	}
	require.Equal(t, pb.Code_CODE_OK, got[1].Code)
	require.Equal(t, pb.Mode_MODE_EX, got[1].Lock.Mode)
	require.NotZero(t, got[1].Lock.Token)
	require.Equal(t, pb.Code_CODE_OK, got[2].Code)
	require.True(t, got[2].Lock.Queued, "b waits behind a")
	require.Equal(t, pb.Code_CODE_INVALID_ARGUMENT, got[3].Code)
	require.Contains(t, got[3].Detail, "mode")
	require.Equal(t, pb.Code_CODE_INVALID_ARGUMENT, got[4].Code)
	require.Contains(t, got[4].Detail, "op")
	require.Equal(t, pb.Code_CODE_NOT_HELD, got[5].Code)

	// A retry of a's request id is answered from its record.
	require.NoError(t, pipe.Send(&pb.PipeRequest{Call: 6, Op: acquire(a, 1, pb.Mode_MODE_EX)}))
	r, err := pipe.Recv()
	require.NoError(t, err)
	require.Equal(t, got[1].Lock.Token, r.Lock.Token)

	srv.Drain()
	_, err = pipe.Recv()
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
}

// TestStreamBounds: Watch and Events streams are bounded node-wide; a
// stream past the bound is refused, and a closed one frees its place.
func TestStreamBounds(t *testing.T) {
	ctx := testCtx(t)
	c, _ := node(t, server.Options{WatchersMax: 1, SubscribersMax: 1})
	a := open(t, ctx, c, "a")
	for _, start := range []func(context.Context) (func() error, error){
		func(ctx context.Context) (func() error, error) {
			w, err := c.Watch(ctx, &pb.WatchRequest{Resource: []byte("r")})
			return func() error { _, err := w.Recv(); return err }, err
		},
		func(ctx context.Context) (func() error, error) {
			e, err := c.Events(ctx, &pb.EventsRequest{SessionId: a})
			return func() error { _, err := e.Recv(); return err }, err
		},
	} {
		first, cancel := context.WithCancel(ctx)
		recv, err := start(first)
		require.NoError(t, err)
		require.NoError(t, recv(), "the first stream is served")
		recv, err = start(ctx)
		require.NoError(t, err)
		require.Equal(t, codes.ResourceExhausted, status.Code(recv()), "the second is past the bound")
		cancel()
		require.Eventually(t, func() bool {
			again, stop := context.WithCancel(ctx)
			defer stop()
			recv, err := start(again)
			return err == nil && recv() == nil
		}, 5*time.Second, 10*time.Millisecond, "a closed stream frees its place")
	}
}
