package client_test

import (
	"bytes"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// TestSessionKnowsItsTag: the tag the node answers the open with is the
// one under which the session's lock appears in Describe, and two
// sessions have two tags.
func TestSessionKnowsItsTag(t *testing.T) {
	ctx := testCtx(t)
	node := servertest.StartOn(t, vfs.NewMem(), "127.0.0.1:0", server.Options{})
	c := connect(t, node.Addr, client.Config{TTL: 2 * time.Second})
	a, err := c.NewSession(ctx)
	require.NoError(t, err)
	b, err := c.NewSession(ctx)
	require.NoError(t, err)
	require.Equal(t, node.Server.SessionTag(a.ID()), a.Tag())
	require.NotEmpty(t, a.Tag())
	require.False(t, bytes.Equal(a.Tag(), b.Tag()))
	l, err := a.Lock(ctx, "x", spec.EX)
	require.NoError(t, err)
	d, err := c.API().Describe(ctx, &pb.DescribeRequest{Resource: []byte("x")})
	require.NoError(t, err)
	require.Len(t, d.Resource.Holders, 1)
	require.Equal(t, a.Tag(), d.Resource.Holders[0].SessionTag)
	require.NoError(t, l.Unlock(ctx))
}
