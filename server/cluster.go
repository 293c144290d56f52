package server

import (
	"context"
	"errors"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/cluster"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// clusterService is the Cluster service of a member of a group: status
// from any member, changes through the leader.
type clusterService struct {
	pb.UnimplementedClusterServer
	loop      *cluster.Loop
	clusterID string
}

// changeTimeout bounds how long a membership change waits to take effect.
const changeTimeout = 30 * time.Second

func (c *clusterService) Status(ctx context.Context, _ *pb.ClusterStatusRequest) (*pb.ClusterStatus, error) {
	st, err := c.loop.Status(ctx)
	if err != nil {
		return nil, clusterError(err)
	}
	out := &pb.ClusterStatus{Id: st.ID, Leader: st.Lead, Term: st.Term, Commit: st.Commit, Applied: st.Applied,
		SnapshotIndex: st.SnapshotIndex, ClusterId: c.clusterID}
	for _, m := range st.Members {
		out.Members = append(out.Members, &pb.MemberStatus{Id: m.ID, ClientAddr: m.Addrs.Client, PeerAddr: m.Addrs.Peer,
			Match: m.Match, RecentActive: m.RecentActive})
	}
	return out, nil
}

func (c *clusterService) AddMember(ctx context.Context, req *pb.AddMemberRequest) (*pb.MembershipResponse, error) {
	if req.Id == 0 || req.PeerAddr == "" || req.ClientAddr == "" {
		return nil, status.Error(codes.InvalidArgument, "add member: an id > 0, a peer address and a client address are needed")
	}
	if len(req.PeerAddr) > 256 || len(req.ClientAddr) > 256 {
		return nil, status.Error(codes.InvalidArgument, "add member: addresses are at most 256 bytes")
	}
	return c.change(ctx, func(ctx context.Context) ([]uint64, error) {
		return c.loop.AddMember(ctx, req.Id, cluster.Addrs{Peer: req.PeerAddr, Client: req.ClientAddr})
	})
}

func (c *clusterService) RemoveMember(ctx context.Context, req *pb.RemoveMemberRequest) (*pb.MembershipResponse, error) {
	return c.change(ctx, func(ctx context.Context) ([]uint64, error) { return c.loop.RemoveMember(ctx, req.Id) })
}

func (c *clusterService) TransferLeader(ctx context.Context, req *pb.TransferLeaderRequest) (*pb.MembershipResponse, error) {
	return c.change(ctx, func(ctx context.Context) ([]uint64, error) { return c.loop.TransferLeader(ctx, req.Id) })
}

func (c *clusterService) change(ctx context.Context, f func(context.Context) ([]uint64, error)) (*pb.MembershipResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, changeTimeout)
	defer cancel()
	voters, err := f(ctx)
	if err != nil {
		return nil, clusterError(err)
	}
	return &pb.MembershipResponse{Voters: voters}, nil
}

func clusterError(err error) error {
	var nl *cluster.NotLeader
	switch {
	case errors.As(err, &nl):
		return loopError(err)
	case errors.Is(err, cluster.ErrChangeTimeout):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case status.FromContextError(err).Code() != codes.Unknown:
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.FailedPrecondition, err.Error())
}
