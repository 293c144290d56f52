package server_test

import (
	"bytes"
	"context"
	"math"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// chain is the scenario of the wait-graph tests: A holds x EX, B holds y
// EX and waits for x EX, C waits for y EX.
type chain struct {
	a, b, c *client.Session
	ax, by  *client.Lock
	bx, cy  chan *client.Lock // B's grant of x, C's of y, once they come
}

func startChain(t *testing.T, ctx context.Context, c *client.Client) *chain {
	t.Helper()
	ch := &chain{bx: make(chan *client.Lock, 1), cy: make(chan *client.Lock, 1)}
	for _, s := range []**client.Session{&ch.a, &ch.b, &ch.c} {
		var err error
		*s, err = c.NewSession(ctx)
		require.NoError(t, err)
	}
	var err error
	ch.ax, err = ch.a.Lock(ctx, "x", spec.EX)
	require.NoError(t, err)
	ch.by, err = ch.b.Lock(ctx, "y", spec.EX)
	require.NoError(t, err)
	wait := func(s *client.Session, name string, to chan *client.Lock) {
		l, err := s.Lock(ctx, name, spec.EX)
		if err != nil {
			t.Errorf("lock %s: %v", name, err)
		}
		to <- l
	}
	go wait(ch.b, "x", ch.bx)
	go wait(ch.c, "y", ch.cy)
	return ch
}

// end releases everything in order: A's x lets B have it; B's x and y let
// C have y.
func (ch *chain) end(t *testing.T, ctx context.Context) {
	t.Helper()
	require.NoError(t, ch.ax.Unlock(ctx))
	bx := <-ch.bx
	require.NotNil(t, bx)
	require.NoError(t, bx.Unlock(ctx))
	require.NoError(t, ch.by.Unlock(ctx))
	cy := <-ch.cy
	require.NotNil(t, cy)
	require.NoError(t, cy.Unlock(ctx))
}

// waitGraph polls WaitGraph until it lists n waiters.
func waitGraph(t *testing.T, ctx context.Context, api pb.LocksClient, n int) *pb.WaitGraphResponse {
	t.Helper()
	for {
		g, err := api.WaitGraph(ctx, &pb.WaitGraphRequest{})
		require.NoError(t, err)
		if len(g.Waiters) == n {
			return g
		}
		require.NoError(t, ctx.Err(), "never %d waiters: %v", n, g)
		time.Sleep(5 * time.Millisecond)
	}
}

// longestWait scrapes bouncer_longest_wait_seconds.
func longestWait(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "bouncer_longest_wait_seconds" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no bouncer_longest_wait_seconds")
	return math.NaN()
}

// TestWaitGraphOnANode: through the Go client on a real node, B waits for
// A on x and C for B on y: the graph has exactly the edges B->A and C->B,
// each with its resource, reason and modes, and the two holders with
// their tokens; the longest-wait gauge rises while they wait and is 0
// once all is released, when the graph is empty.
func TestWaitGraphOnANode(t *testing.T) {
	ctx := testCtx(t)
	reg := prometheus.NewRegistry()
	n := servertest.StartOn(t, vfs.NewMem(), "127.0.0.1:0", server.Options{Registry: reg})
	c, err := client.Connect(client.Config{Addr: n.Addr, TTL: 2 * time.Second}) // a keepalive every 500ms
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.Zero(t, longestWait(t, reg))

	ch := startChain(t, ctx, c)
	g := waitGraph(t, ctx, c.API(), 2)
	tag := func(s *client.Session) []byte { return n.Server.SessionTag(s.ID()) }
	require.False(t, g.Truncated)
	require.Len(t, g.Edges, 2, "%v", g.Edges)
	for i, want := range []struct {
		waiter, blocker *client.Session
		resource        string
	}{{ch.b, ch.a, "x"}, {ch.c, ch.b, "y"}} {
		e := g.Edges[i]
		require.True(t, bytes.Equal(tag(want.waiter), e.WaiterTag), "edge %d: waiter %x", i, e.WaiterTag)
		require.True(t, bytes.Equal(tag(want.blocker), e.BlockerTag), "edge %d: blocker %x", i, e.BlockerTag)
		require.Equal(t, want.resource, string(e.Resource))
		require.Equal(t, pb.WaitReason_WAIT_REASON_HOLDER, e.Reason)
		require.Equal(t, pb.Mode_MODE_EX, e.Wanted)
		require.Equal(t, pb.Mode_MODE_EX, e.Blocking)
	}
	require.Len(t, g.Holders, 2)
	require.Equal(t, tag(ch.a), g.Holders[0].SessionTag)
	require.Equal(t, uint64(ch.ax.Token()), g.Holders[0].Token)
	require.Equal(t, tag(ch.b), g.Holders[1].SessionTag)
	require.Equal(t, uint64(ch.by.Token()), g.Holders[1].Token)
	for i, w := range g.Waiters {
		require.Equal(t, pb.Mode_MODE_EX, w.Mode, "waiter %d", i)
		require.False(t, w.Conversion)
	}
	require.Equal(t, tag(ch.b), g.Waiters[0].SessionTag)
	require.Equal(t, tag(ch.c), g.Waiters[1].SessionTag)

	// The gauge rises while they wait (the core's time moves at each turn:
	// the sessions' keepalives take some).
	for longestWait(t, reg) < 0.5 {
		require.NoError(t, ctx.Err(), "the longest wait never rose past 0.5s")
		time.Sleep(50 * time.Millisecond)
	}
	g = waitGraph(t, ctx, c.API(), 2)
	for i, w := range g.Waiters {
		require.NotNil(t, w.Waited, "waiter %d: no wait time", i)
		require.Greater(t, w.Waited.AsDuration(), 400*time.Millisecond, "waiter %d", i)
	}

	ch.end(t, ctx)
	waitGraph(t, ctx, c.API(), 0)
	require.Zero(t, longestWait(t, reg))
}

// TestWaitGraphLimit: a limit over ListLimitMax is refused naming it.
func TestWaitGraphLimit(t *testing.T) {
	ctx := testCtx(t)
	c, _ := node(t, server.Options{})
	_, err := c.WaitGraph(ctx, &pb.WaitGraphRequest{Limit: 5000})
	require.Equal(t, pb.Code_CODE_INVALID_ARGUMENT, code(t, err))
	g, err := c.WaitGraph(ctx, &pb.WaitGraphRequest{Limit: 1000})
	require.NoError(t, err)
	require.Empty(t, g.Waiters)
}
