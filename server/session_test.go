package server_test

import (
	"crypto/sha256"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestReopenAnswersNoFalseTTL: reopening a session with another TTL must
// not be answered with the requested TTL while the session keeps its own.
// The node issues ids, so a reopen is refused outright.
func TestReopenAnswersNoFalseTTL(t *testing.T) {
	ctx := testCtx(t)
	c, _ := node(t, server.Options{})
	r, err := c.OpenSession(ctx, &pb.OpenSessionRequest{Ttl: durationpb.New(time.Hour)})
	require.NoError(t, err)
	require.Equal(t, time.Hour, r.Ttl.AsDuration())
	again, err := c.OpenSession(ctx, &pb.OpenSessionRequest{SessionId: r.SessionId, Ttl: durationpb.New(2 * time.Second)})
	if err == nil {
		require.Equal(t, time.Hour, again.Ttl.AsDuration(), "the answer must be the session's real TTL")
	}
	require.Equal(t, codes.InvalidArgument, status.Code(err), "the node issues ids: a reopen is refused")
}

// TestClientChosenIDsRefused: a client cannot pick its session id (a weak
// one would be guessable); the node issues 128 random bits.
func TestClientChosenIDsRefused(t *testing.T) {
	ctx := testCtx(t)
	c, _ := node(t, server.Options{})
	_, err := c.OpenSession(ctx, &pb.OpenSessionRequest{SessionId: []byte("0123456789abcdef")})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	seen := map[string]bool{}
	for range 8 {
		r, err := c.OpenSession(ctx, &pb.OpenSessionRequest{})
		require.NoError(t, err)
		require.Len(t, r.SessionId, 16)
		require.False(t, seen[string(r.SessionId)])
		seen[string(r.SessionId)] = true
	}
}

// TestSessionTagIsKeyed: the tag others see is keyed with a secret of the
// node, so it cannot be matched against hashes of guessed ids offline, and
// two nodes tag the same id differently.
func TestSessionTagIsKeyed(t *testing.T) {
	ctx := testCtx(t)
	tags := [][]byte{}
	for range 2 {
		c, _ := node(t, server.Options{})
		id := open(t, ctx, c, "a")
		_, err := c.Acquire(ctx, &pb.AcquireRequest{SessionId: id, RequestId: 1, Resource: []byte("r"), Mode: pb.Mode_MODE_EX})
		require.NoError(t, err)
		d, err := c.Describe(ctx, &pb.DescribeRequest{Resource: []byte("r")})
		require.NoError(t, err)
		tag := d.Resource.Holders[0].SessionTag
		sum := sha256.Sum256(id)
		require.NotEqual(t, sum[:len(tag)], tag, "an unkeyed hash of the id")
		require.GreaterOrEqual(t, len(tag), 8)
		tags = append(tags, tag)
	}
	require.NotEqual(t, tags[0], tags[1])
}
