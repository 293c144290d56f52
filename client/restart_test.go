package client_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
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

// A node that freezes (a stopped process, a network that drops every
// packet: connections stay open, nothing comes back) must not delay the
// loss: Done closes when the lease deadline passes. Nothing but the
// session's own timer can tell the client then.
func TestLeaseLostOnTimeWhenNodeFreezes(t *testing.T) {
	ctx := testCtx(t)
	const ttl = 2 * time.Second
	n := servertest.StartOn(t, vfs.NewMem(), "127.0.0.1:0", server.Options{})
	p := freezingProxy(t, n.Addr)
	c := connect(t, p.addr, client.Config{TTL: ttl})
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	l, err := s.Lock(ctx, "job", spec.EX)
	require.NoError(t, err)
	p.frozen.Store(true)
	deadline := s.LeaseDeadline()
	select {
	case <-l.Done():
		late := time.Since(deadline)
		require.Less(t, late, 150*time.Millisecond, "Done closed %v after the lease deadline", late)
	case <-time.After(3 * ttl):
		t.Fatal("Done did not close")
	}
	require.ErrorIs(t, s.Err(), client.ErrLeaseLost)
}

// proxy forwards TCP connections to a node until frozen; then it keeps
// them open and forwards nothing more.
type proxy struct {
	addr   string
	frozen atomic.Bool
}

func freezingProxy(t *testing.T, target string) *proxy {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{addr: lis.Addr().String()}
	done := make(chan struct{})
	var mu sync.Mutex
	var conns []net.Conn
	forward := func(src, dst net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				_ = dst.Close()
				return
			}
			if p.frozen.Load() {
				<-done // hold the connection open, answer nothing
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, d)
			mu.Unlock()
			go forward(c, d)
			go forward(d, c)
		}
	}()
	t.Cleanup(func() {
		close(done)
		_ = lis.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return p
}
