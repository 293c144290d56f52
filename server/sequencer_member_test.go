package server

import (
	"context"
	"crypto/ed25519"
	"net"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/sequencer"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestSequencerOnAMember: a member that is not the leader still shows its
// public key (a verifier collects every member's) but refuses sequencer
// calls as it refuses lock calls; a member that leads (a group of one,
// served on loopback) issues sequencers and checks them through raft's
// ReadIndex.
func TestSequencerOnAMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alone := startMember(t, []uint64{1, 2, 3})
	require.NoError(t, alone.refuseFollower(pb.Locks_PublicKey_FullMethodName), "every member shows its key")
	require.Error(t, alone.refuseFollower(pb.Locks_GetSequencer_FullMethodName))
	require.Error(t, alone.refuseFollower(pb.Locks_CheckSequencer_FullMethodName))

	one := startMember(t, []uint64{1})
	for healthOf(t, one) != healthpb.HealthCheckResponse_SERVING {
		require.NoError(t, ctx.Err(), "a group of one never turned SERVING")
		time.Sleep(5 * time.Millisecond)
	}
	g := grpc.NewServer(one.ServerOptions()...)
	one.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)

	c, err := client.Connect(client.Config{Addr: lis.Addr().String()})
	require.NoError(t, err)
	defer c.Close()
	keys, err := c.PublicKeys(ctx)
	require.NoError(t, err)
	require.Equal(t, []ed25519.PublicKey{one.publicKey()}, keys)
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	l, err := s.Lock(ctx, "job", spec.EX)
	require.NoError(t, err)
	text, err := l.Sequencer(ctx)
	require.NoError(t, err)
	seq, err := sequencer.Verify(text, keys)
	require.NoError(t, err)
	require.Equal(t, l.Token(), seq.Token)
	held, why, err := c.CheckSequencer(ctx, text)
	require.NoError(t, err)
	require.True(t, held, why)
	require.NoError(t, l.Unlock(ctx))
	held, _, err = c.CheckSequencer(ctx, text)
	require.NoError(t, err)
	require.False(t, held, "released")
}
