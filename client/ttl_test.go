package client_test

import (
	"context"
	"net"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
)

// shortTTLNode answers every open with a TTL shorter than asked for, as a
// node does whose session has another TTL than the client wants.
type shortTTLNode struct {
	pb.UnimplementedLocksServer
	ttl time.Duration
}

func (n *shortTTLNode) OpenSession(_ context.Context, req *pb.OpenSessionRequest) (*pb.OpenSessionResponse, error) {
	id := req.SessionId
	if len(id) == 0 {
		id = []byte("issued-by-node!!")
	}
	return &pb.OpenSessionResponse{SessionId: id, Ttl: durationpb.New(n.ttl)}, nil
}

func (n *shortTTLNode) Events(_ *pb.EventsRequest, stream pb.Locks_EventsServer) error {
	if err := stream.Send(&pb.Event{Kind: &pb.Event_Subscribed{Subscribed: &pb.Subscribed{}}}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

// TestLeaseCountsTheAnsweredTTL: the client counts its lease from the TTL
// the node answered, not the one it asked for.
func TestLeaseCountsTheAnsweredTTL(t *testing.T) {
	ctx := testCtx(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := grpc.NewServer()
	pb.RegisterLocksServer(g, &shortTTLNode{ttl: 2 * time.Second})
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	c := connect(t, lis.Addr().String(), client.Config{TTL: time.Minute})
	before := time.Now()
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(ctx) })
	id := s.ID()
	require.Equal(t, []byte("issued-by-node!!"), id[:], "the node's id is used")
	require.False(t, s.LeaseDeadline().IsZero())
	require.LessOrEqual(t, s.LeaseDeadline().Sub(before), 2*time.Second, "the lease of a 2s session")
}
