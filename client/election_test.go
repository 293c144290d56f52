package client_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// keepAliveMute drops a client's keepalives while on, as a process paused
// past its TTL sends none: the node expires the session, and the client's
// own lease runs out.
type keepAliveMute struct{ on atomic.Bool }

func (m *keepAliveMute) dialOption() grpc.DialOption {
	return grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn,
		method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil || method != pb.Locks_KeepAlive_FullMethodName {
			return cs, err
		}
		return &mutedStream{ClientStream: cs, m: m}, nil
	})
}

type mutedStream struct {
	grpc.ClientStream
	m *keepAliveMute
}

func (s *mutedStream) SendMsg(msg any) error {
	if s.m.on.Load() {
		return nil // lost on the way
	}
	return s.ClientStream.SendMsg(msg)
}

// won is a candidate's campaign that succeeded.
type won struct {
	who int
	ld  *client.Leadership
	err error
}

// campaigners starts n candidates for election, each with its own client
// (whose keepalives mutes[i] can drop) and session; each campaign's result
// arrives on the returned channel.
func campaigners(ctx context.Context, t *testing.T, addr, election string, n int) ([]*keepAliveMute, []*client.Session, chan won) {
	mutes := make([]*keepAliveMute, n)
	sessions := make([]*client.Session, n)
	out := make(chan won, n)
	for i := range n {
		mutes[i] = &keepAliveMute{}
		c := connect(t, addr, client.Config{TTL: 2 * time.Second, DialOptions: []grpc.DialOption{mutes[i].dialOption()}})
		s, err := c.NewSession(ctx)
		require.NoError(t, err)
		sessions[i] = s
		t.Cleanup(func() { _ = s.Close(context.Background()) })
		go func() {
			ld, err := s.Campaign(ctx, election, []byte{'c', byte('0' + i)})
			out <- won{who: i, ld: ld, err: err}
		}()
	}
	return mutes, sessions, out
}

// describe is the election's resource on the node.
func describe(ctx context.Context, t *testing.T, c *client.Client, election string) *pb.Resource {
	d, err := c.API().Describe(ctx, &pb.DescribeRequest{Resource: []byte(election)})
	require.NoError(t, err)
	if !d.Exists {
		return &pb.Resource{ValueValid: true}
	}
	return d.Resource
}

// oneLeader waits until the election has n candidates in line, then checks
// that exactly one session holds it, in PW, with ld's token and value, and
// that no other campaign has ended.
func oneLeader(ctx context.Context, t *testing.T, c *client.Client, election string, ld *client.Leadership, waiting int, wins chan won) {
	t.Helper()
	var r *pb.Resource
	for {
		select {
		case w := <-wins:
			require.NoError(t, w.err, "candidate %d", w.who)
			t.Fatalf("candidate %d leads too", w.who)
		default:
		}
		r = describe(ctx, t, c, election)
		if len(r.Waiting) == waiting || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.Len(t, r.Waiting, waiting, "candidates in line")
	require.Len(t, r.Holders, 1, "exactly one session holds the election")
	m, err := wire.ModeFromWire(r.Holders[0].Mode)
	require.NoError(t, err)
	require.Equal(t, spec.PW, m, "the leader holds PW")
	require.Equal(t, uint64(ld.Token()), r.Holders[0].Token)
	require.True(t, r.ValueValid)
	require.Equal(t, ld.Value(), r.Value, "the value block is the leader's value")
}

func next(ctx context.Context, t *testing.T, ch chan won) won {
	t.Helper()
	select {
	case w := <-ch:
		require.NoError(t, w.err, "candidate %d", w.who)
		return w
	case <-ctx.Done():
		t.Fatal("no candidate won")
		return won{}
	}
}

// observer records what Observe reports.
type observer struct {
	ch  chan client.Leader
	all []client.Leader
}

func observe(ctx context.Context, t *testing.T, c *client.Client, election string) *observer {
	o := &observer{ch: make(chan client.Leader, 64)}
	octx, cancel := context.WithCancel(ctx)
	ended := make(chan error, 1)
	go func() {
		ended <- c.Observe(octx, election, func(l client.Leader) error { o.ch <- l; return nil })
	}()
	t.Cleanup(func() {
		cancel()
		require.ErrorIs(t, <-ended, context.Canceled, "Observe ends with its context")
	})
	return o
}

// until reads what Observe reports until it reports want.
func (o *observer) until(ctx context.Context, t *testing.T, want client.Leader) {
	t.Helper()
	for {
		select {
		case l := <-o.ch:
			o.all = append(o.all, l)
			if l.Present == want.Present && l.Token == want.Token && string(l.Value) == string(want.Value) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("Observe never reported %+v; it reported %+v", want, o.all)
		}
	}
}

func leaderOf(ld *client.Leadership) client.Leader {
	return client.Leader{Present: true, Value: ld.Value(), Token: ld.Token()}
}

// TestElectionHandsOver: three candidates campaign; exactly one leads. Its
// keepalives stop: its Done closes, the node expires its session and
// exactly one other candidate leads, with a greater token, learning that
// its predecessor expired. That one resigns: the last leads, learning its
// predecessor's value. Observe reports every leader, in order, with rising
// tokens, and no leader at the end.
func TestElectionHandsOver(t *testing.T) {
	ctx := testCtx(t)
	node := servertest.StartOn(t, vfs.NewMem(), "127.0.0.1:0", server.Options{})
	const election = "leader"
	watcher := connect(t, node.Addr, client.Config{TTL: 2 * time.Second})
	obs := observe(ctx, t, watcher, election)
	obs.until(ctx, t, client.Leader{})

	mutes, _, wins := campaigners(ctx, t, node.Addr, election, 3)
	first := next(ctx, t, wins)
	oneLeader(ctx, t, watcher, election, first.ld, 2, wins)
	_, valid := first.ld.Previous()
	require.True(t, valid, "the first leader finds a fresh block")
	obs.until(ctx, t, leaderOf(first.ld))

	mutes[first.who].on.Store(true) // as if its process were paused
	second := next(ctx, t, wins)
	select {
	case <-first.ld.Done():
	case <-ctx.Done():
		t.Fatal("the old leader's Done never closed")
	}
	require.Error(t, first.ld.Err())
	require.NotErrorIs(t, first.ld.Err(), client.ErrResigned)
	require.NotEqual(t, first.who, second.who)
	require.Greater(t, second.ld.Token(), first.ld.Token(), "a new leader's epoch is greater")
	_, valid = second.ld.Previous()
	require.False(t, valid, "the new leader learns that its predecessor expired while leading")
	oneLeader(ctx, t, watcher, election, second.ld, 1, wins)
	obs.until(ctx, t, leaderOf(second.ld))

	require.NoError(t, second.ld.Resign(ctx))
	select {
	case <-second.ld.Done():
	default:
		t.Fatal("Done closes at Resign")
	}
	require.ErrorIs(t, second.ld.Err(), client.ErrResigned)
	third := next(ctx, t, wins)
	require.NotEqual(t, first.who, third.who)
	require.NotEqual(t, second.who, third.who)
	require.Greater(t, third.ld.Token(), second.ld.Token())
	prev, valid := third.ld.Previous()
	require.True(t, valid)
	require.Equal(t, second.ld.Value(), prev, "the next leader finds its predecessor's value")
	oneLeader(ctx, t, watcher, election, third.ld, 0, wins)
	obs.until(ctx, t, leaderOf(third.ld))

	require.NoError(t, third.ld.Resign(ctx))
	obs.until(ctx, t, client.Leader{})

	// Every leader reported, in order, rising, each once.
	var leaders []client.Leader
	for _, l := range obs.all {
		if l.Present {
			leaders = append(leaders, l)
		}
	}
	require.Equal(t, []client.Leader{leaderOf(first.ld), leaderOf(second.ld), leaderOf(third.ld)}, leaders)
}

// TestCampaignQueuesAgainPastTheWaitBound: a candidate whose client knows
// a wait bound shorter than the leader's term queues again each time the
// bound runs out, and leads once the leader resigns.
func TestCampaignQueuesAgainPastTheWaitBound(t *testing.T) {
	ctx := testCtx(t)
	addr := servertest.Start(t, server.Options{})
	c := connect(t, addr, client.Config{TTL: 2 * time.Second})
	a, err := c.NewSession(ctx)
	require.NoError(t, err)
	lim := spec.DefaultLimits()
	lim.WaitTimeoutMax = 100 * time.Millisecond
	b, err := connect(t, addr, client.Config{TTL: 2 * time.Second, Limits: lim}).NewSession(ctx)
	require.NoError(t, err)

	la, err := a.Campaign(ctx, "e", []byte("a"))
	require.NoError(t, err)
	got := make(chan *client.Leadership, 1)
	go func() {
		lb, err := b.Campaign(ctx, "e", []byte("b"))
		if err != nil {
			t.Errorf("b's campaign: %v", err)
		}
		got <- lb
	}()
	time.Sleep(500 * time.Millisecond) // five of b's waits run out meanwhile
	require.NoError(t, la.Resign(ctx))
	lb := <-got
	require.NotNil(t, lb)
	require.Greater(t, lb.Token(), la.Token())
}

// TestCampaignGivesUp: a campaign whose context ends leaves no request in
// line, and a value over the node's bound is refused before queueing.
func TestCampaignGivesUp(t *testing.T) {
	ctx, a, b := twoSessions(t)
	la, err := a.Campaign(ctx, "e", []byte("a"))
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = b.Campaign(short, "e", []byte("b"))
	cancel()
	require.ErrorIs(t, err, client.ErrTimeout)
	_, err = b.Campaign(ctx, "e", []byte("b"), client.WaitTimeout(200*time.Millisecond))
	require.ErrorIs(t, err, client.ErrTimeout, "WaitTimeout bounds the campaign")

	_, err = b.Campaign(ctx, "e", make([]byte, spec.DefaultLimits().ValueBytesMax+1))
	require.ErrorIs(t, err, client.ErrLimitExceeded)

	require.NoError(t, la.Resign(ctx))
	lb, err := b.Campaign(ctx, "e", []byte("b"))
	require.NoError(t, err, "b's abandoned campaigns left nothing in line")
	require.NoError(t, lb.Resign(ctx))
	require.True(t, errors.Is(la.Resign(ctx), client.ErrNotHeld), "a second Resign finds nothing to release")
}
