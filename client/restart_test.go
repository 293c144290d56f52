package client_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// A node that restarts within the lease: the session lives on (recovery
// grants every session a full TTL), the lock is still held, and a request
// sent while the node was down is applied once when it is back.
func TestSessionSurvivesRestart(t *testing.T) {
	ctx := testCtx(t)
	n := servertest.StartOn(t, vfs.NewMem(), "127.0.0.1:0", server.Options{})
	c := connect(t, n.Addr, client.Config{TTL: 4 * time.Second})
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	l, err := s.Lock(ctx, "job", spec.EX)
	require.NoError(t, err)
	before := l.Token()

	n.Stop()
	got := make(chan error, 1)
	var other *client.Lock
	go func() { // sent while the node is down; the core resends it
		var err error
		other, err = s.Lock(ctx, "other", spec.EX)
		got <- err
	}()
	time.Sleep(300 * time.Millisecond)
	n = servertest.StartOn(t, n.FS, n.Addr, server.Options{})

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

// lockedOnNode starts a node and holds "job" on it in a session with ttl.
func lockedOnNode(t *testing.T, ttl time.Duration) (context.Context, *servertest.Node, *client.Session, *client.Lock) {
	ctx := testCtx(t)
	n := servertest.StartOn(t, vfs.NewMem(), "127.0.0.1:0", server.Options{})
	c := connect(t, n.Addr, client.Config{TTL: ttl})
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	l, err := s.Lock(ctx, "job", spec.EX)
	require.NoError(t, err)
	return ctx, n, s, l
}

// A node that stays down: the client declares the lease lost before the
// node could have expired the session (counted from the send time of the
// last answered keepalive), and closes Done on every lock.
func TestLeaseLostWhenNodeStaysDown(t *testing.T) {
	const ttl = 2 * time.Second
	ctx, n, s, l := lockedOnNode(t, ttl)
	deadline := s.LeaseDeadline()
	require.True(t, deadline.Before(time.Now().Add(ttl)), "the lease ends before the node could expire the session")
	n.Stop()
	select {
	case <-l.Done():
	case <-time.After(2 * ttl):
		t.Fatal("Done did not close after the TTL")
	}
	require.ErrorIs(t, s.Err(), client.ErrLeaseLost)
	_, err := s.Lock(ctx, "again", spec.EX)
	require.ErrorIs(t, err, client.ErrLeaseLost)
}

// A node that stops answering without refusing connections (a black hole:
// TCP accepts, nothing else) must not delay the loss: Done closes when the
// lease deadline passes, however long the transport hangs.
func TestLeaseLostOnTimeWhenNodeHangs(t *testing.T) {
	const ttl = 2 * time.Second
	_, n, s, l := lockedOnNode(t, ttl)
	n.Stop()
	blackHole(t, n.Addr)
	deadline := s.LeaseDeadline()
	select {
	case <-l.Done():
		late := time.Since(deadline)
		require.Less(t, late, 150*time.Millisecond, "Done closed %v after the lease deadline", late)
	case <-time.After(3 * ttl):
		t.Fatal("Done did not close")
	}
}

// blackHole accepts TCP connections on addr and never answers.
func blackHole(t *testing.T, addr string) net.Listener {
	var lis net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if lis, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
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
	return lis
}
