package server_test

import (
	"bytes"
	"testing"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/stretchr/testify/require"
)

// TestOversizedRequestFailsAlone: a request far over the name or value
// bound (but within what the transport carries) is refused on its own with
// LimitExceeded naming the bound; the Pipe it came on keeps serving, and
// unary calls carry the same Bouncer code.
func TestOversizedRequestFailsAlone(t *testing.T) {
	ctx := testCtx(t)
	c, _ := node(t, server.Options{})
	a := open(t, ctx, c, "a")
	huge := bytes.Repeat([]byte("n"), 8000)

	pipe, err := c.Pipe(ctx)
	require.NoError(t, err)
	send := []*pb.PipeRequest{
		{Call: 1, Op: &pb.PipeRequest_Acquire{Acquire: &pb.AcquireRequest{SessionId: a, RequestId: 1,
			Resource: huge, Mode: pb.Mode_MODE_EX}}},
		{Call: 2, Op: &pb.PipeRequest_Release{Release: &pb.ReleaseRequest{SessionId: a, RequestId: 2,
			Resource: []byte("r"), WriteValue: true, Value: bytes.Repeat([]byte("v"), 6000)}}},
	}
	for _, r := range send {
		require.NoError(t, pipe.Send(r))
	}
	got := map[uint64]*pb.PipeReply{}
	for range send {
		r, err := pipe.Recv()
		require.NoError(t, err, "the pipe must outlive an oversized request")
		got[r.Call] = r
	}
	require.Equal(t, pb.Code_CODE_LIMIT_EXCEEDED, got[1].Code)
	require.Contains(t, got[1].Detail, "NameBytesMax")
	require.Equal(t, pb.Code_CODE_LIMIT_EXCEEDED, got[2].Code)
	require.Contains(t, got[2].Detail, "ValueBytesMax")

	// The same stream still takes requests.
	require.NoError(t, pipe.Send(&pb.PipeRequest{Call: 3, Op: &pb.PipeRequest_Acquire{Acquire: &pb.AcquireRequest{
		SessionId: a, RequestId: 3, Resource: []byte("r"), Mode: pb.Mode_MODE_EX}}}))
	r, err := pipe.Recv()
	require.NoError(t, err)
	require.Equal(t, pb.Code_CODE_OK, r.Code, r.Detail)

	// Unary calls: a Bouncer code naming the bound, never a bare status.
	_, err = c.Acquire(ctx, &pb.AcquireRequest{SessionId: a, RequestId: 4, Resource: huge, Mode: pb.Mode_MODE_EX})
	require.Equal(t, pb.Code_CODE_LIMIT_EXCEEDED, code(t, err))
	_, err = c.Describe(ctx, &pb.DescribeRequest{Resource: huge})
	require.Equal(t, pb.Code_CODE_LIMIT_EXCEEDED, code(t, err))
	_, err = c.List(ctx, &pb.ListRequest{Prefix: huge})
	require.Equal(t, pb.Code_CODE_LIMIT_EXCEEDED, code(t, err))
	_, err = c.List(ctx, &pb.ListRequest{StartAfter: huge})
	require.Equal(t, pb.Code_CODE_LIMIT_EXCEEDED, code(t, err))
	w, err := c.Watch(ctx, &pb.WatchRequest{Resource: huge})
	require.NoError(t, err)
	_, err = w.Recv()
	require.Equal(t, pb.Code_CODE_LIMIT_EXCEEDED, code(t, err))
	require.Contains(t, err.Error(), "NameBytesMax")
}
