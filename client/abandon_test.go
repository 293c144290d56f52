package client_test

import (
	"bytes"
	"context"
	"errors"
	"github.com/cockroachdb/pebble/v2/vfs"
	"sync"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// TestLockTimeoutThenRetry: a Lock whose context runs out reports
// Timeout, and the same session may ask again at once.
func TestLockTimeoutThenRetry(t *testing.T) {
	ctx, a, b := twoSessions(t)
	lb, err := b.Lock(ctx, "r", spec.EX)
	require.NoError(t, err)
	for range 3 {
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, err = a.Lock(short, "r", spec.EX, client.WaitTimeout(time.Minute))
		cancel()
		require.ErrorIs(t, err, client.ErrTimeout)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, spec.Timeout, client.CodeOf(err))
	}
	require.NoError(t, lb.Unlock(ctx))
	la, err := a.Lock(ctx, "r", spec.EX)
	require.NoError(t, err)
	require.NoError(t, la.Unlock(ctx))

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = a.Lock(cancelled, "r", spec.EX)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, spec.Cancelled, client.CodeOf(err))
}

// cancelDropper drops every Cancel a client sends on its Pipe until open
// is called (the client sends it again, with the same request id, after
// its retry interval). It says on caught when it dropped the first, and,
// once armed, on moved when the session made its next move: a lock request
// for resource, or the next (re)send of a cancel.
type cancelDropper struct {
	resource             string
	caught, moved        chan struct{}
	mu                   sync.Mutex
	open, armed          bool
	caughtOnce, moveOnce sync.Once
}

func newCancelDropper(resource string) *cancelDropper {
	return &cancelDropper{resource: resource, caught: make(chan struct{}), moved: make(chan struct{})}
}

func (d *cancelDropper) arm()     { d.mu.Lock(); d.armed = true; d.mu.Unlock() }
func (d *cancelDropper) release() { d.mu.Lock(); d.open = true; d.mu.Unlock() }

// drop reports whether m is to be dropped.
func (d *cancelDropper) drop(m any) bool {
	req, ok := m.(*pb.PipeRequest)
	d.mu.Lock()
	defer d.mu.Unlock()
	if !ok || d.open {
		return false
	}
	cancel := req.GetCancel() != nil
	if d.armed && (cancel || string(req.GetAcquire().GetResource()) == d.resource) {
		d.moveOnce.Do(func() { close(d.moved) })
	}
	if cancel {
		d.caughtOnce.Do(func() { close(d.caught) })
	}
	return cancel
}

func (d *cancelDropper) dialOption() grpc.DialOption {
	return grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn,
		method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil || method != pb.Locks_Pipe_FullMethodName {
			return cs, err
		}
		return &droppingStream{ClientStream: cs, d: d}, nil
	})
}

type droppingStream struct {
	grpc.ClientStream
	d *cancelDropper
}

func (s *droppingStream) SendMsg(m any) error {
	if s.d.drop(m) {
		return nil // lost on the way
	}
	return s.ClientStream.SendMsg(m)
}

// TestAbandonedGrantCausesNoDeadlock: a worker that holds one lock at a
// time gives up on x; its request is granted before the cancel reaches the
// node. Its next request (for y, held by b, who now waits for x) must not
// be refused as a Deadlock: the library settles the abandoned request
// (releasing the late grant) before it lets the session ask again. The
// cancel is lost on the way until then, so that the grant comes first.
func TestAbandonedGrantCausesNoDeadlock(t *testing.T) {
	ctx := testCtx(t)
	node := servertest.StartOn(t, vfs.NewMem(), "127.0.0.1:0", server.Options{})
	addr := node.Addr
	drop := newCancelDropper("y")
	ca := connect(t, addr, client.Config{TTL: 2 * time.Second, DialOptions: []grpc.DialOption{drop.dialOption()}})
	cb := connect(t, addr, client.Config{TTL: 2 * time.Second})
	a, err := ca.NewSession(ctx)
	require.NoError(t, err)
	b, err := cb.NewSession(ctx)
	require.NoError(t, err)
	bx, err := b.Lock(ctx, "x", spec.EX)
	require.NoError(t, err)
	by, err := b.Lock(ctx, "y", spec.EX)
	require.NoError(t, err)
	watch, err := cb.API().Watch(ctx, &pb.WatchRequest{Resource: []byte("x")})
	require.NoError(t, err)
	until := func(what string, ok func(*pb.Resource) bool) {
		t.Helper()
		for {
			w, err := watch.Recv()
			require.NoError(t, err, what)
			if w.Exists && ok(w.Resource) {
				return
			}
		}
	}
	held := func(id spec.SessionID) func(*pb.Resource) bool {
		return func(r *pb.Resource) bool {
			return len(r.Holders) == 1 && bytes.Equal(r.Holders[0].SessionTag, node.Server.SessionTag(id))
		}
	}

	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = a.Lock(short, "x", spec.EX, client.WaitTimeout(time.Minute))
	cancel()
	require.ErrorIs(t, err, client.ErrTimeout)
	<-drop.caught // the cancel is lost on the way
	require.NoError(t, bx.Unlock(ctx))
	until("a's abandoned request is granted", held(a.ID()))
	bWants := make(chan error, 1)
	go func() {
		l, err := b.Lock(ctx, "x", spec.EX)
		if err == nil {
			bx = l
		}
		bWants <- err
	}()
	until("b waits for x", func(r *pb.Resource) bool { return len(r.Waiting) == 1 })

	aWants := make(chan error, 1)
	var ay *client.Lock
	drop.arm()
	go func() {
		var err error
		ay, err = a.Lock(ctx, "y", spec.EX)
		aWants <- err
	}()
	// a's next move: a request for y (that would close a cycle: a holds x,
	// b waits for x and holds y), or, if the library holds that request
	// back until the abandoned one is settled, the cancel's resend.
	<-drop.moved
	drop.release()
	require.NoError(t, <-bWants, "the late grant of x is released")
	require.NoError(t, by.Unlock(ctx))
	err = <-aWants
	require.False(t, errors.Is(err, client.ErrDeadlock), "spurious deadlock: %v", err)
	require.NoError(t, err)
	require.NoError(t, ay.Unlock(ctx))
	require.NoError(t, bx.Unlock(ctx))
}
