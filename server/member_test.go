package server

import (
	"context"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/cluster"
	"github.com/bouncer-dlm/bouncer/replica"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// nowhere is a transport to no one: a member alone with it hears nothing.
type nowhere struct{ in chan *raftpb.Message }

func (n nowhere) Send([]*raftpb.Message)       {}
func (n nowhere) Recv() <-chan *raftpb.Message { return n.in }

func startMember(t *testing.T, peers []uint64) *Server {
	r, err := replica.New(replica.Config{ID: 1, Peers: peers, Limits: spec.DefaultLimits(), FS: vfs.NewMem(),
		ElectionTick: 10, HeartbeatTick: 1})
	require.NoError(t, err)
	s, _ := NewMember(r, nowhere{make(chan *raftpb.Message)}, cluster.Options{Tick: 5 * time.Millisecond,
		Members: map[uint64]cluster.Addrs{1: {Peer: "p1", Client: "c1"}}}, Options{Limits: spec.DefaultLimits()})
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func healthOf(t *testing.T, s *Server) healthpb.HealthCheckResponse_ServingStatus {
	resp, err := s.health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: pb.Locks_ServiceDesc.ServiceName})
	require.NoError(t, err)
	return resp.GetStatus()
}

// TestMemberHealthAndRefusals: a member that knows no leader (one of
// three, alone) is NOT_SERVING and refuses lock calls as not the leader,
// naming none; a member that leads (a group of one) turns SERVING and
// serves.
func TestMemberHealthAndRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alone := startMember(t, []uint64{1, 2, 3})
	time.Sleep(300 * time.Millisecond) // many election timeouts: it cannot win alone
	require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, healthOf(t, alone))
	_, err := alone.submit(ctx, spec.Input{Op: spec.OpOpen, Session: spec.SessionID{1}, TTL: 10 * time.Second})
	leader, notLeader := wire.LeaderHint(err)
	require.True(t, notLeader, "a member without a leader took a call: %v", err)
	require.Empty(t, leader)
	require.Error(t, alone.refuseFollower("/"+pb.Locks_ServiceDesc.ServiceName+"/Acquire"))
	require.NoError(t, alone.refuseFollower("/grpc.health.v1.Health/Check"), "health is not refused")

	one := startMember(t, []uint64{1})
	deadline := time.Now().Add(5 * time.Second)
	for healthOf(t, one) != healthpb.HealthCheckResponse_SERVING {
		require.True(t, time.Now().Before(deadline), "a group of one never turned SERVING")
		time.Sleep(5 * time.Millisecond)
	}
	r, err := one.submit(ctx, spec.Input{Op: spec.OpOpen, Session: spec.SessionID{1}, TTL: 10 * time.Second})
	require.NoError(t, err)
	require.Equal(t, spec.OK, r.Code)
}
