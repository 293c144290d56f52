package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

func connect(t *testing.T, addr string, cfg client.Config) *client.Client {
	cfg.Addr = addr
	c, err := client.Connect(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// twoSessions opens two sessions on a fresh node.
func twoSessions(t *testing.T) (context.Context, *client.Session, *client.Session) {
	ctx := testCtx(t)
	c := connect(t, servertest.Start(t, server.Options{}), client.Config{TTL: 2 * time.Second})
	a, err := c.NewSession(ctx)
	require.NoError(t, err)
	b, err := c.NewSession(ctx)
	require.NoError(t, err)
	return ctx, a, b
}

func TestLockUnlockAndTokens(t *testing.T) {
	ctx, a, b := twoSessions(t)

	la, err := a.Lock(ctx, "job", spec.EX)
	require.NoError(t, err)
	_, err = b.TryLock(ctx, "job", spec.PR)
	require.ErrorIs(t, err, client.ErrWouldBlock)

	var lb *client.Lock
	got := make(chan error, 1)
	go func() {
		var err error
		lb, err = b.Lock(ctx, "job", spec.PR)
		got <- err
	}()
	select {
	case n := <-a.Blocking():
		require.Equal(t, client.Notification{Resource: "job", Mode: spec.PR}, n)
	case <-ctx.Done():
		t.Fatal("no blocking notification")
	}
	require.NoError(t, la.UnlockWithValue(ctx, []byte("state")))
	require.NoError(t, <-got)
	require.Greater(t, lb.Token(), la.Token())
	v, valid := lb.Value()
	require.Equal(t, "state", string(v))
	require.True(t, valid)

	require.NoError(t, lb.Convert(ctx, spec.EX))
	require.Equal(t, spec.EX, lb.Mode())
	require.NoError(t, lb.Unlock(ctx))
	require.ErrorIs(t, lb.Unlock(ctx), client.ErrNotHeld)
	require.NoError(t, a.Close(ctx))
	require.NoError(t, b.Close(ctx))
}

// A caller that gives up waiting leaves nothing behind: the request is
// cancelled, or released if it was granted meanwhile.
func TestAbandonedLockIsCleanedUp(t *testing.T) {
	ctx, a, b := twoSessions(t)
	la, err := a.Lock(ctx, "r", spec.EX)
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = b.Lock(short, "r", spec.EX, client.WaitTimeout(time.Minute))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, la.Unlock(ctx))
	// b's next request waits until the abandoned one is settled; from then
	// on, b's abandoned request does not hold the lock.
	lb, err := b.TryLock(ctx, "other", spec.EX)
	require.NoError(t, err)
	l, err := a.TryLock(ctx, "r", spec.EX)
	require.NoError(t, err)
	require.NoError(t, l.Unlock(ctx))
	require.NoError(t, lb.Unlock(ctx))
}

// Mutual exclusion through the library: many goroutines, one counter.
func TestMutualExclusion(t *testing.T) {
	ctx := testCtx(t)
	c := connect(t, servertest.Start(t, server.Options{}), client.Config{})
	var mu sync.Mutex
	inside, entries := 0, 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := c.NewSession(ctx)
			require.NoError(t, err)
			defer func() { require.NoError(t, s.Close(ctx)) }()
			for range 20 {
				l, err := s.Lock(ctx, "counter", spec.EX)
				require.NoError(t, err)
				mu.Lock()
				inside++
				entries++
				require.Equal(t, 1, inside)
				mu.Unlock()
				mu.Lock()
				inside--
				mu.Unlock()
				require.NoError(t, l.Unlock(ctx))
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 160, entries)
}

func TestAuthTokenAndErrors(t *testing.T) {
	ctx := testCtx(t)
	addr := servertest.Start(t, server.Options{AuthToken: "tok"})
	_, err := connect(t, addr, client.Config{}).NewSession(ctx)
	require.Error(t, err)
	require.Contains(t, err.Error(), "Unauthenticated")
	s, err := connect(t, addr, client.Config{Token: "tok"}).NewSession(ctx)
	require.NoError(t, err)
	_, err = s.Lock(ctx, "", spec.EX)
	require.ErrorIs(t, err, client.ErrInvalid)
	require.Equal(t, spec.InvalidArgument, client.CodeOf(err))
	var e *client.Error
	require.True(t, errors.As(err, &e))
	require.Contains(t, e.Detail, "resource")
}

// TestPermissionDenied: a lock outside the caller's grants fails with
// PermissionDenied through the Go client (on its Pipe), and leaves the
// session usable for what it may do.
func TestPermissionDenied(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "access.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"identities": [
		{"name": "worker", "token": "w", "grants": [{"prefix": "jobs/", "rights": ["lock"]}]}]}`), 0o600))
	rules, err := server.LoadAccessFile(path)
	require.NoError(t, err)
	addr := servertest.Start(t, server.Options{Access: rules})
	s, err := connect(t, addr, client.Config{Token: "w"}).NewSession(ctx)
	require.NoError(t, err)
	_, err = s.Lock(ctx, "billing/1", spec.EX)
	require.ErrorIs(t, err, client.ErrPermissionDenied)
	require.Contains(t, err.Error(), "billing/1")
	l, err := s.Lock(ctx, "jobs/1", spec.EX)
	require.NoError(t, err)
	require.NoError(t, l.Unlock(ctx))
}

// TestSessionLabel: a session's label (the default, host/pid/program, or
// the configured one) is what others see beside its lock.
func TestSessionLabel(t *testing.T) {
	ctx := testCtx(t)
	addr := servertest.Start(t, server.Options{})
	for _, c := range []struct{ label, want string }{{"", client.DefaultLabel()}, {"billing-worker-3", "billing-worker-3"}, {"-", ""}} {
		cl := connect(t, addr, client.Config{Label: c.label})
		s, err := cl.NewSession(ctx)
		require.NoError(t, err)
		l, err := s.Lock(ctx, "labelled", spec.EX)
		require.NoError(t, err)
		d, err := cl.API().Describe(ctx, &pb.DescribeRequest{Resource: []byte("labelled")})
		require.NoError(t, err)
		require.Equal(t, c.want, d.Resource.Holders[0].Label)
		require.NoError(t, l.Unlock(ctx))
	}
	require.Contains(t, client.DefaultLabel(), fmt.Sprintf("/%d/", os.Getpid()))
	_, err := client.Connect(client.Config{Addr: addr, Label: strings.Repeat("x", spec.LabelBytesMax+1)})
	require.Error(t, err)
}
