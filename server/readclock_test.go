package server_test

import (
	"context"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

// TestHeldForCountsPastTheLastTurn: on an idle node (no turn since the
// grant: the session's keepalives are far apart) Describe and List still
// say how long the lock has really been held, not how long it had been
// at the node's latest turn.
func TestHeldForCountsPastTheLastTurn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := servertest.Start(t, server.Options{})
	c, err := client.Connect(client.Config{Addr: addr, TTL: 60 * time.Second}) // a keepalive every 15s
	require.NoError(t, err)
	defer c.Close()
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	l, err := s.Lock(ctx, "idle", spec.EX)
	require.NoError(t, err)
	time.Sleep(1200 * time.Millisecond)
	d, err := c.API().Describe(ctx, &pb.DescribeRequest{Resource: []byte("idle")})
	require.NoError(t, err)
	require.GreaterOrEqual(t, d.Resource.Holders[0].HeldFor.AsDuration(), 1100*time.Millisecond)
	page, err := c.API().List(ctx, &pb.ListRequest{})
	require.NoError(t, err)
	require.GreaterOrEqual(t, page.Resources[0].Holders[0].HeldFor.AsDuration(), 1100*time.Millisecond)
	require.NoError(t, l.Unlock(ctx))
}
