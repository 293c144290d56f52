package client_test

import (
	"net"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// node is a lock node on a fixed address and an in-memory disk that
// survives a stop, so that a test can restart it.
type node struct {
	t    *testing.T
	fs   vfs.FS
	addr string
	stop func()
}

func startNode(t *testing.T, fs vfs.FS, addr string) *node {
	t.Helper()
	lim := spec.DefaultLimits()
	n, err := engine.OpenNode(engine.NodeOptions{FS: fs, Dir: "db", Limits: lim}, engine.WallClock{}.Now())
	require.NoError(t, err)
	srv := server.New(n, server.Options{Limits: lim})
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	var lis net.Listener
	require.Eventually(t, func() bool { // the old listener's port may linger briefly
		lis, err = net.Listen("tcp", addr)
		return err == nil
	}, 5*time.Second, 10*time.Millisecond, "listen %s", addr)
	go func() { _ = g.Serve(lis) }()
	nd := &node{t: t, fs: fs, addr: lis.Addr().String()}
	stopped := false
	nd.stop = func() {
		if !stopped {
			stopped = true
			g.Stop()
			require.NoError(t, srv.Stop())
		}
	}
	t.Cleanup(nd.stop)
	return nd
}

// A node that restarts within the lease: the session lives on (recovery
// grants every session a full TTL), the lock is still held, and a request
// sent while the node was down is applied once when it is back.
func TestSessionSurvivesRestart(t *testing.T) {
	ctx := testCtx(t)
	n := startNode(t, vfs.NewMem(), "127.0.0.1:0")
	c := connect(t, n.addr, client.Config{TTL: 4 * time.Second})
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	l, err := s.Lock(ctx, "job", spec.EX)
	require.NoError(t, err)
	before := l.Token()

	n.stop()
	got := make(chan error, 1)
	var other *client.Lock
	go func() { // sent while the node is down; the core resends it
		var err error
		other, err = s.Lock(ctx, "other", spec.EX)
		got <- err
	}()
	time.Sleep(300 * time.Millisecond)
	n = startNode(t, n.fs, n.addr)

	require.NoError(t, <-got)
	select {
	case <-s.Done():
		t.Fatalf("session lost across a short restart: %v", s.Err())
	default:
	}
	require.NoError(t, l.Unlock(ctx))
	again, err := s.Lock(ctx, "job", spec.EX)
	require.NoError(t, err)
	require.Greater(t, again.Token(), before, "tokens increase across the restart")
	require.NoError(t, again.Unlock(ctx))
	require.NoError(t, other.Unlock(ctx))
	require.NoError(t, s.Close(ctx))
}

// A node that stays down: the client declares the lease lost before the
// node could have expired the session (counted from the send time of the
// last answered keepalive), and closes Done on every lock.
func TestLeaseLostWhenNodeStaysDown(t *testing.T) {
	ctx := testCtx(t)
	const ttl = 2 * time.Second
	n := startNode(t, vfs.NewMem(), "127.0.0.1:0")
	c := connect(t, n.addr, client.Config{TTL: ttl})
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	l, err := s.Lock(ctx, "job", spec.EX)
	require.NoError(t, err)
	deadline := s.LeaseDeadline()
	require.True(t, deadline.Before(time.Now().Add(ttl)), "the lease ends before the node could expire the session")
	n.stop()
	select {
	case <-l.Done():
	case <-time.After(2 * ttl):
		t.Fatal("Done did not close after the TTL")
	}
	require.ErrorIs(t, s.Err(), client.ErrLeaseLost)
	_, err = s.Lock(ctx, "again", spec.EX)
	require.ErrorIs(t, err, client.ErrLeaseLost)
}
