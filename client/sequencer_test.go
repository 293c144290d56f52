package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/sequencer"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// sessionsWithClient opens two sessions on a fresh node, with their client.
func sessionsWithClient(t *testing.T) (context.Context, *client.Client, *client.Session, *client.Session) {
	ctx := testCtx(t)
	c := connect(t, servertest.Start(t, server.Options{}), client.Config{TTL: 2 * time.Second})
	a, err := c.NewSession(ctx)
	require.NoError(t, err)
	b, err := c.NewSession(ctx)
	require.NoError(t, err)
	return ctx, c, a, b
}

func sequencerKey(t *testing.T) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return priv
}

// TestSequencerNamesTheLock: a held lock's sequencer verifies against the
// key the node shows, and names its resource, mode, token, the holder's
// session tag (as Describe shows it) and an instant of the node's clock;
// the node says it is held.
func TestSequencerNamesTheLock(t *testing.T) {
	ctx := testCtx(t)
	key := sequencerKey(t)
	c := connect(t, servertest.Start(t, server.Options{SequencerKey: key}), client.Config{})
	keys, err := c.PublicKeys(ctx)
	require.NoError(t, err)
	require.Equal(t, []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}, keys)
	all, err := c.MemberPublicKeys(ctx) // a lone node: the same one key
	require.NoError(t, err)
	require.Equal(t, keys, all)
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	l, err := s.Lock(ctx, "job", spec.PW)
	require.NoError(t, err)

	text, err := l.Sequencer(ctx)
	require.NoError(t, err)
	seq, err := sequencer.Verify(text, keys)
	require.NoError(t, err)
	d, err := c.API().Describe(ctx, &pb.DescribeRequest{Resource: []byte("job")})
	require.NoError(t, err)
	require.Equal(t, "job", seq.Resource)
	require.Equal(t, spec.PW, seq.Mode)
	require.Equal(t, l.Token(), seq.Token)
	require.Equal(t, d.Resource.Holders[0].SessionTag, seq.SessionTag)
	require.Equal(t, sequencer.IDOf(keys[0]), seq.KeyID)
	require.Positive(t, int64(seq.Granted))

	held, why, err := c.CheckSequencer(ctx, text)
	require.NoError(t, err)
	require.True(t, held, why)
}

// TestSequencerOnlyForGrantedLocks: a queued request, an absent lock and
// a released one have no sequencer: NotHeld, FAILED_PRECONDITION on the
// wire, with a message that says which.
func TestSequencerOnlyForGrantedLocks(t *testing.T) {
	ctx, c, a, b := sessionsWithClient(t)
	la, err := a.Lock(ctx, "job", spec.EX)
	require.NoError(t, err)
	queued := make(chan error, 1)
	go func() {
		_, err := b.Lock(ctx, "job", spec.EX)
		queued <- err
	}()
	api := c.API()
	bID := b.ID()
	require.Eventually(t, func() bool {
		d, err := api.Describe(ctx, &pb.DescribeRequest{Resource: []byte("job")})
		return err == nil && len(d.Resource.GetWaiting()) == 1
	}, 5*time.Second, 5*time.Millisecond)

	_, err = api.GetSequencer(ctx, &pb.GetSequencerRequest{SessionId: bID[:], Resource: []byte("job")})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "queued, not granted")
	_, err = api.GetSequencer(ctx, &pb.GetSequencerRequest{SessionId: bID[:], Resource: []byte("nothing")})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "holds no lock")

	require.NoError(t, la.Unlock(ctx))
	require.NoError(t, <-queued)
	_, err = la.Sequencer(ctx)
	require.ErrorIs(t, err, client.ErrNotHeld)
}

// TestCheckSequencerFollowsTheLock: a sequencer stops checking as held
// once its lock is converted up (a new token), converted down (another
// mode) or released; the newest one checks as held.
func TestCheckSequencerFollowsTheLock(t *testing.T) {
	ctx, c, a, _ := sessionsWithClient(t)
	l, err := a.Lock(ctx, "job", spec.PR)
	require.NoError(t, err)
	pr, err := l.Sequencer(ctx)
	require.NoError(t, err)
	check := func(text string, want bool, because string) {
		t.Helper()
		held, why, err := c.CheckSequencer(ctx, text)
		require.NoError(t, err)
		require.Equal(t, want, held, "%s: %s", because, why)
		if !want {
			require.NotEmpty(t, why)
		}
	}
	check(pr, true, "fresh")
	granted := func(text string) spec.Time {
		t.Helper()
		b, err := sequencer.FromText(text)
		require.NoError(t, err)
		seq, err := sequencer.Decode(b)
		require.NoError(t, err)
		return seq.Granted
	}
	time.Sleep(5 * time.Millisecond)
	again, err := l.Sequencer(ctx)
	require.NoError(t, err)
	require.Equal(t, granted(pr), granted(again), "the grant's instant, not the read's")
	require.NoError(t, l.Convert(ctx, spec.EX))
	check(pr, false, "converted up: a new token")
	ex, err := l.Sequencer(ctx)
	require.NoError(t, err)
	check(ex, true, "the up-conversion's")
	require.NoError(t, l.Convert(ctx, spec.PW))
	check(ex, false, "converted down: another mode")
	pw, err := l.Sequencer(ctx)
	require.NoError(t, err)
	check(pw, true, "the down-conversion's")
	require.Greater(t, granted(ex), granted(pr), "an up-conversion is a new grant")
	require.Equal(t, granted(ex), granted(pw), "a down-conversion keeps the grant")
	require.NoError(t, l.Unlock(ctx))
	check(pw, false, "released")
}

// TestCheckSequencerRefusesAltered: the node refuses a sequencer of its
// own whose signature does not match, and one that does not decode, with
// InvalidArgument.
func TestCheckSequencerRefusesAltered(t *testing.T) {
	ctx, c, a, _ := sessionsWithClient(t)
	l, err := a.Lock(ctx, "job", spec.EX)
	require.NoError(t, err)
	text, err := l.Sequencer(ctx)
	require.NoError(t, err)
	b, err := sequencer.FromText(text)
	require.NoError(t, err)
	b[len(b)-1] ^= 1
	_, _, err = c.CheckSequencer(ctx, sequencer.Text(b))
	require.ErrorIs(t, err, client.ErrInvalid)
	_, _, err = c.CheckSequencer(ctx, text+"AAAA")
	require.ErrorIs(t, err, client.ErrInvalid)
}

// TestSequencerSurvivesRestart: with the same key (serve keeps it in the
// data directory), a sequencer taken before a restart still verifies and
// still checks as held after it, since the lock and the session survive
// and the session's tag is keyed by the same key.
func TestSequencerSurvivesRestart(t *testing.T) {
	ctx := testCtx(t)
	key := sequencerKey(t)
	n := servertest.StartOn(t, vfs.NewMem(), "127.0.0.1:0", server.Options{SequencerKey: key})
	c := connect(t, n.Addr, client.Config{TTL: 4 * time.Second})
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	l, err := s.Lock(ctx, "job", spec.EX)
	require.NoError(t, err)
	text, err := l.Sequencer(ctx)
	require.NoError(t, err)

	n.Stop()
	n = servertest.StartOn(t, n.FS, n.Addr, server.Options{SequencerKey: key})
	held, why, err := c.CheckSequencer(ctx, text)
	require.NoError(t, err)
	require.True(t, held, why)
	again, err := l.Sequencer(ctx)
	require.NoError(t, err)
	first, err := sequencer.Verify(text, []ed25519.PublicKey{key.Public().(ed25519.PublicKey)})
	require.NoError(t, err)
	second, err := sequencer.Verify(again, []ed25519.PublicKey{key.Public().(ed25519.PublicKey)})
	require.NoError(t, err)
	require.Equal(t, first.SessionTag, second.SessionTag, "the tag outlives the restart")
	require.Equal(t, first.Token, second.Token)
}
