package client_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// fakeGroup is a "group" for the client's leader following: ONE node
// served on several listeners, each a member with its own gRPC server. An
// interceptor in front of each makes every member but the leader refuse as
// a follower does (wire.NotLeaderError naming the leader's address), and
// can make a member silent (it answers nothing). The members share one
// state, as a real group's replicas do, so that a client that moves keeps
// its session and locks: what a failover looks like to a client, without
// raft.
type fakeGroup struct {
	addrs  []string
	leader atomic.Int32 // the member that leads; -1: none known
	silent []atomic.Bool
}

func startGroup(t *testing.T, members int) *fakeGroup {
	t.Helper()
	node, err := engine.OpenNode(engine.NodeOptions{FS: vfs.NewMem(), Dir: "db", Limits: spec.DefaultLimits()}, 0)
	require.NoError(t, err)
	srv := server.New(node, server.Options{Limits: spec.DefaultLimits()})
	g := &fakeGroup{silent: make([]atomic.Bool, members)}
	var servers []*grpc.Server
	for i := range members {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		g.addrs = append(g.addrs, lis.Addr().String())
		opts := append([]grpc.ServerOption{grpc.ChainUnaryInterceptor(g.unary(i)), grpc.ChainStreamInterceptor(g.stream(i))},
			srv.ServerOptions()...)
		gs := grpc.NewServer(opts...)
		srv.Register(gs)
		servers = append(servers, gs)
		go func() { _ = gs.Serve(srv.Listen(lis, false)) }()
	}
	t.Cleanup(func() {
		for _, gs := range servers {
			gs.Stop()
		}
		require.NoError(t, srv.Stop())
	})
	return g
}

// lead makes member i the leader (-1: none); the others refuse naming it.
func (g *fakeGroup) lead(i int) { g.leader.Store(int32(i)) }

// refusal is member i's refusal, nil if it leads.
func (g *fakeGroup) refusal(i int) error {
	l := int(g.leader.Load())
	switch {
	case l == i:
		return nil
	case l < 0:
		return wire.NotLeaderError("")
	}
	return wire.NotLeaderError(g.addrs[l])
}

func (g *fakeGroup) unary(i int) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if g.silent[i].Load() {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		if err := g.refusal(i); err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
}

// stream refuses a stream at its start, and ends a stream it let through
// as soon as a request comes on it after the member stopped leading: the
// request is not handed on, and the stream ends with the refusal.
func (g *fakeGroup) stream(i int) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if g.silent[i].Load() {
			<-ss.Context().Done()
			return ss.Context().Err()
		}
		if err := g.refusal(i); err != nil {
			return err
		}
		ls := &memberStream{ServerStream: ss, g: g, i: i}
		err := h(srv, ls)
		if r := ls.refused.Load(); r != nil {
			return *r
		}
		return err
	}
}

type memberStream struct {
	grpc.ServerStream
	g       *fakeGroup
	i       int
	refused atomic.Pointer[error]
}

func (s *memberStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if s.g.silent[s.i].Load() {
		<-s.Context().Done()
		return s.Context().Err()
	}
	if err := s.g.refusal(s.i); err != nil {
		s.refused.Store(&err)
		return err
	}
	return nil
}

func (s *memberStream) SendMsg(m any) error {
	if s.g.silent[s.i].Load() {
		<-s.Context().Done()
		return s.Context().Err()
	}
	return s.ServerStream.SendMsg(m)
}

// groupCtx bounds a group test.
func groupCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func connectGroup(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.Connect(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// onMember waits until c talks to addr.
func onMember(t *testing.T, c *client.Client, addr string) {
	t.Helper()
	require.Eventually(t, func() bool { return c.Member() == addr }, 10*time.Second, 5*time.Millisecond,
		"the client stays on %s, not %s", c.Member(), addr)
}

func requireLive(t *testing.T, s *client.Session) {
	t.Helper()
	select {
	case <-s.Done():
		t.Fatalf("the session ended: %v", s.Err())
	default:
	}
}

// A client given every member finds the leader, whichever it starts on;
// a client given one follower learns the leader from its refusal. The
// stub of API follows too.
func TestGroupFindsLeader(t *testing.T) {
	ctx := groupCtx(t)
	g := startGroup(t, 3)
	g.lead(2)
	for _, cfg := range []client.Config{
		{Addrs: g.addrs, TTL: 2 * time.Second},
		{Addr: strings.Join(g.addrs, ","), TTL: 2 * time.Second},
		{Addr: g.addrs[1], TTL: 2 * time.Second},
	} {
		c := connectGroup(t, cfg)
		s, err := c.NewSession(ctx)
		require.NoError(t, err)
		require.Equal(t, g.addrs[2], c.Member())
		l, err := s.Lock(ctx, "job", spec.EX)
		require.NoError(t, err)
		d, err := c.API().Describe(ctx, &pb.DescribeRequest{Resource: []byte("job")})
		require.NoError(t, err)
		require.Len(t, d.GetResource().GetHolders(), 1)
		require.NoError(t, l.Unlock(ctx))
		require.NoError(t, s.Close(ctx))
	}
}

// The leader stops leading (it now refuses, naming the new one): the
// client moves, resends what was unanswered with the same request ids, and
// its session and locks live on. Then no leader is known for a moment (an
// election), and then a third member leads.
func TestGroupFollowsNewLeader(t *testing.T) {
	ctx := groupCtx(t)
	g := startGroup(t, 3)
	g.lead(0)
	c := connectGroup(t, client.Config{Addrs: g.addrs, TTL: 2 * time.Second})
	other := connectGroup(t, client.Config{Addrs: g.addrs, TTL: 2 * time.Second})
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	o, err := other.NewSession(ctx)
	require.NoError(t, err)
	job, err := s.Lock(ctx, "job", spec.EX)
	require.NoError(t, err)

	g.lead(1)
	// Sent to the old leader, refused, resent to the new one.
	next, err := s.Lock(ctx, "next", spec.EX)
	require.NoError(t, err)
	require.Equal(t, g.addrs[1], c.Member())
	onMember(t, other, g.addrs[1]) // by its keepalives' refusal

	_, err = o.TryLock(ctx, "job", spec.EX)
	require.ErrorIs(t, err, client.ErrWouldBlock, "the lock taken before the move is still held")
	time.Sleep(time.Second) // keepalives to the new leader, half a TTL
	requireLive(t, s)

	g.lead(-1)
	time.Sleep(300 * time.Millisecond)
	g.lead(2)
	onMember(t, c, g.addrs[2])
	onMember(t, other, g.addrs[2])
	requireLive(t, s)
	requireLive(t, o)
	select {
	case <-job.Done():
		t.Fatal("the lock was given up across the failovers")
	default:
	}
	before := job.Token()
	require.NoError(t, job.Unlock(ctx))
	again, err := o.Lock(ctx, "job", spec.EX)
	require.NoError(t, err)
	require.Greater(t, again.Token(), before)
	require.NoError(t, again.Unlock(ctx))
	require.NoError(t, next.Unlock(ctx))
	require.NoError(t, s.Close(ctx))
	require.NoError(t, o.Close(ctx))
}

// silentListener accepts connections and answers nothing on them.
func silentListener(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = lis.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return lis.Addr().String()
}

// closedPort returns an address where nothing listens.
func closedPort(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}

// Members that cannot be reached, or accept and answer nothing, are left
// for the next after the silence bound.
func TestGroupLeavesUnreachableMembers(t *testing.T) {
	ctx := groupCtx(t)
	g := startGroup(t, 1)
	g.lead(0)
	addrs := []string{closedPort(t), silentListener(t), g.addrs[0]}
	c := connectGroup(t, client.Config{Addrs: addrs, TTL: 2 * time.Second})
	start := time.Now()
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	t.Logf("found the leader after %v", time.Since(start))
	require.Equal(t, g.addrs[0], c.Member())
	l, err := s.Lock(ctx, "job", spec.EX)
	require.NoError(t, err)
	require.NoError(t, l.Unlock(ctx))
	require.NoError(t, s.Close(ctx))

	// A unary call of the stub waits out the silence too, then is made
	// again on the next member.
	c = connectGroup(t, client.Config{Addrs: addrs, TTL: 2 * time.Second})
	_, err = c.API().Describe(ctx, &pb.DescribeRequest{Resource: []byte("job")})
	require.NoError(t, err)
	require.Equal(t, g.addrs[0], c.Member())
}

// A leader that falls silent (frozen, cut off) while a session holds a
// lock is left after the silence bound for the next member, which leads
// now: the session and its lock live on.
func TestGroupLeavesSilentLeader(t *testing.T) {
	ctx := groupCtx(t)
	g := startGroup(t, 2)
	g.lead(0)
	const ttl = 8 * time.Second // the move takes a keepalive interval and the silence bound
	c := connectGroup(t, client.Config{Addrs: g.addrs, TTL: ttl})
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	l, err := s.Lock(ctx, "job", spec.EX)
	require.NoError(t, err)

	g.silent[0].Store(true)
	g.lead(1)
	next, err := s.Lock(ctx, "next", spec.EX) // unanswered until the client moves
	require.NoError(t, err)
	require.Equal(t, g.addrs[1], c.Member())
	requireLive(t, s)
	select {
	case <-l.Done():
		t.Fatal("the lock was given up across the move")
	default:
	}
	require.NoError(t, l.Unlock(ctx))
	require.NoError(t, next.Unlock(ctx))
	require.NoError(t, s.Close(ctx))
}

// Bad member lists are refused by Connect with a clear error.
func TestGroupBadAddressLists(t *testing.T) {
	many := make([]string, 17)
	for i := range many {
		many[i] = fmt.Sprintf("127.0.0.1:%d", 7400+i)
	}
	for _, tc := range []struct {
		cfg  client.Config
		want string
	}{
		{client.Config{}, "Config.Addr or Config.Addrs is required"},
		{client.Config{Addr: " "}, "Config.Addr or Config.Addrs is required"},
		{client.Config{Addr: "127.0.0.1:1,,127.0.0.1:2"}, `member 2 of the address list "127.0.0.1:1,,127.0.0.1:2" is empty`},
		{client.Config{Addr: "127.0.0.1:1,"}, "member 2 of the address list"},
		{client.Config{Addr: "127.0.0.1:1, 127.0.0.1:1"}, `member address "127.0.0.1:1" is listed twice`},
		{client.Config{Addrs: []string{"127.0.0.1:1", "127.0.0.1:1"}}, "listed twice"},
		{client.Config{Addrs: []string{"127.0.0.1:1", ""}}, "Config.Addrs[1] is empty"},
		{client.Config{Addrs: []string{"127.0.0.1:1,127.0.0.1:2"}}, "holds a comma"},
		{client.Config{Addr: "127.0.0.1:1", Addrs: []string{"127.0.0.1:2"}}, "not both"},
		{client.Config{Addrs: many}, "17 member addresses; a group has at most 16"},
		{client.Config{Addr: strings.Join(many, ",")}, "at most 16"},
	} {
		_, err := client.Connect(tc.cfg)
		require.ErrorContains(t, err, tc.want, "%+v", tc.cfg)
	}
	c, err := client.Connect(client.Config{Addr: " 127.0.0.1:1 , 127.0.0.1:2"})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:1", c.Member())
	require.NoError(t, c.Close())
	c, err = client.Connect(client.Config{Addrs: many[:16]})
	require.NoError(t, err)
	require.NoError(t, c.Close())
}
