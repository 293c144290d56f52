package client_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
)

// TestSemaphore: permits through the Go client on a real node: they are
// granted while they fit, in FIFO order, each holder with its own token;
// a try that does not fit would block, a wait can time out, another limit
// is refused, and a session that expires gives its permits back.
func TestSemaphore(t *testing.T) {
	ctx := testCtx(t)
	c := connect(t, servertest.Start(t, server.Options{}), client.Config{TTL: 2 * time.Second})
	session := func() *client.Session {
		s, err := c.NewSession(ctx)
		require.NoError(t, err)
		return s
	}
	a, b, d := session(), session(), session()

	la, err := a.AcquirePermits(ctx, "pool", 2, 3)
	require.NoError(t, err)
	require.Equal(t, uint32(2), la.Permits())
	_, err = b.TryAcquirePermits(ctx, "pool", 2, 3)
	require.ErrorIs(t, err, client.ErrWouldBlock)
	_, err = b.AcquirePermits(ctx, "pool", 2, 3, client.WaitTimeout(50*time.Millisecond))
	require.ErrorIs(t, err, client.ErrTimeout)
	_, err = b.AcquirePermits(ctx, "pool", 1, 4)
	require.Equal(t, spec.InvalidArgument, client.CodeOf(err), "%v", err)
	_, err = b.Lock(ctx, "pool", spec.EX)
	require.Equal(t, spec.InvalidArgument, client.CodeOf(err), "%v", err)
	require.Error(t, la.Convert(ctx, spec.PR))

	// A raw session of 1s that never renews holds the last permit.
	open, err := c.API().OpenSession(ctx, wire.OpenToWire(spec.Input{Op: spec.OpOpen, TTL: time.Second}))
	require.NoError(t, err)
	raw, err := c.API().Acquire(ctx, wire.AcquireToWire(spec.Input{Op: spec.OpAcquire, Session: spec.SessionID(open.SessionId),
		Request: 1, Resource: "pool", Mode: spec.PR, NoQueue: true, Permits: 1, Limit: 3}, false))
	require.NoError(t, err)
	require.Greater(t, raw.Token, uint64(la.Token()))

	desc, err := c.API().Describe(ctx, &pb.DescribeRequest{Resource: []byte("pool")})
	require.NoError(t, err)
	require.Equal(t, uint32(3), desc.Resource.Limit)
	require.Len(t, desc.Resource.Holders, 2)
	require.Equal(t, uint32(2), desc.Resource.Holders[0].Permits)

	// b waits for two, d for one behind it: FIFO, so d waits too although
	// nothing would stop its one permit once a gives its two back.
	got := make(chan *client.Lock, 2)
	wait := func(s *client.Session, n uint32) {
		go func() {
			l, err := s.AcquirePermits(ctx, "pool", n, 3)
			if err != nil {
				t.Error(err)
			}
			got <- l
		}()
	}
	wait(b, 2)
	require.Eventually(t, func() bool {
		desc, err := c.API().Describe(ctx, &pb.DescribeRequest{Resource: []byte("pool")})
		return err == nil && len(desc.Resource.Waiting) == 1
	}, 5*time.Second, 5*time.Millisecond)
	wait(d, 1)
	select {
	case <-got:
		t.Fatal("granted past the limit")
	case <-time.After(100 * time.Millisecond):
	}
	require.NoError(t, la.Unlock(ctx))
	lb := <-got // b's two fit beside the raw session's one; d's then does not
	require.Equal(t, uint32(2), lb.Permits())
	require.Greater(t, lb.Token(), spec.Token(raw.Token))
	select {
	case <-got:
		t.Fatal("granted past the limit")
	case <-time.After(100 * time.Millisecond):
	}
	// The raw session expires: its permit comes back, and d's one fits.
	ld := <-got
	require.Greater(t, ld.Token(), lb.Token())
	desc, err = c.API().Describe(ctx, &pb.DescribeRequest{Resource: []byte("pool")})
	require.NoError(t, err)
	var held uint32
	for _, h := range desc.Resource.Holders {
		held += h.Permits
	}
	require.Equal(t, uint32(3), held)
}
