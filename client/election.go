package client

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client/protocol"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Leader election is built on one resource per election, with nothing the
// node does not already offer: locks, value blocks and watches.
//
//   - Campaign queues an EX request on the election's resource. The node
//     grants in strict FIFO order, so candidates lead in the order they
//     asked. When the node's wait bound (Limits.WaitTimeoutMax) runs out
//     first, the candidate queues again, for as long as its context allows.
//   - Once granted, the leader converts EX down to PW, writing its value
//     into the value block. A down-conversion never waits and keeps the
//     grant's token: that token is the leadership's epoch, greater than
//     every earlier leader's (tokens rise with every grant, across
//     crashes), so a store that refuses lower tokens refuses a deposed
//     leader. PW conflicts with EX, so the next candidate waits; it is
//     compatible with CR, so a reader could hold CR to keep the resource
//     (and its value block) alive.
//   - The leadership lasts as long as the session's lease. Leadership.Done
//     is the session's Done: it closes as soon as the lease may have run
//     out, counted conservatively from the send time of the last answered
//     keepalive, so before the node can expire the session and grant the
//     next candidate. A leader paused past that can still act late, which
//     is what the token is for.
//   - Resign releases the lock without writing the value block: the next
//     leader learns its predecessor's value (Leadership.Previous). When a
//     leader's session expires instead, the node marks the value block
//     invalid, and the next leader learns that too (its predecessor may
//     have left work half done).
//   - Observe watches the resource. There is a leader when a session holds
//     it in PW and the value block is valid (the leader wrote it with the
//     conversion, atomically, and nobody else can write it while PW is
//     held). Between a grant and its conversion (one round trip), there is
//     no leader to report: the EX holder has not said who it is yet. A
//     value block still valid after a Resign names nobody: only a PW
//     holder makes a leader.

// ErrResigned is the reason a Leadership ended by Resign, or by closing
// its session.
var ErrResigned = errors.New("client: the leadership was resigned")

// Leadership is a won election: the session holds the election's resource
// in PW, with its value in the value block.
type Leadership struct {
	lock        *Lock
	token       spec.Token
	value       []byte
	prev        []byte
	prevValid   bool
	done        chan struct{}
	resigned    chan struct{}
	resignOnce  sync.Once
	finishOnce  sync.Once
	mu          sync.Mutex
	err         error
	watcherDone chan struct{}
}

// Campaign stands for leader of the election name and returns once this
// session leads, with value published for observers (at most the node's
// ValueBytesMax; checked before queueing). It waits in line behind the
// other candidates as long as ctx allows (or the WaitTimeout option, if
// shorter), queueing again whenever the node's own wait bound runs out;
// when ctx ends first it fails with ErrTimeout or ErrCancelled, leaving
// nothing behind (as Lock does). LockDelay, if given, makes the node grant
// nothing for that long after a leader's session expires: for followers
// that cannot check tokens. A session stands in one election at most once
// at a time (AlreadyHeld otherwise).
func (s *Session) Campaign(ctx context.Context, name string, value []byte, opts ...LockOption) (*Leadership, error) {
	var o lockOptions
	for _, f := range opts {
		f(&o)
	}
	if err := s.checkCampaign(name, value); err != nil {
		return nil, err
	}
	if o.wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.wait)
		defer cancel()
	}
	l, err := s.queueForLeadership(ctx, name, o.delay)
	if err != nil {
		return nil, err
	}
	ld := &Leadership{lock: l, token: l.Token(), value: spec.CloneValue(value),
		done: make(chan struct{}), resigned: make(chan struct{}), watcherDone: make(chan struct{})}
	ld.prev, ld.prevValid = l.Value()
	// The conversion waits for its own answer whatever ctx does: it never
	// queues, and an abandoned one would leave EX held with no leader
	// known. Its wait is bounded by the lease: past that, the outcome is
	// unknown (ErrLeaseLost) and the session halts.
	publish := protocol.ConvertOptions{NoQueue: true, WriteValue: true, Value: value} // down: never queues
	if err := l.convert(context.Background(), spec.PW, publish); err != nil {
		rctx, cancel := context.WithTimeout(context.Background(), s.callTimeout)
		defer cancel()
		_ = l.Unlock(rctx) // let the next candidate lead
		return nil, err
	}
	go ld.follow(s)
	return ld, nil
}

// checkCampaign refuses, before anything is queued, a name or value the
// node would refuse in the conversion that publishes the value: a
// candidate must not wait its turn only to fail then.
func (s *Session) checkCampaign(name string, value []byte) error {
	s.core.Lock()
	lim := s.proto.Config().Limits
	s.core.Unlock()
	in := spec.Input{Op: spec.OpConvert, Session: s.id, Request: 1, Resource: name, Mode: spec.PW,
		NoQueue: true, WriteValue: true, Value: value}
	if r, ok := spec.Validate(&in, &lim); !ok {
		return &spec.Error{Code: r.Code, Detail: r.Detail}
	}
	return nil
}

// queueForLeadership acquires name in EX, queueing again each time the
// node's wait bound runs out before ctx does.
func (s *Session) queueForLeadership(ctx context.Context, name string, delay time.Duration) (*Lock, error) {
	s.core.Lock()
	waitMax := s.proto.Config().Limits.WaitTimeoutMax
	s.core.Unlock()
	for {
		wait := min(lockOptions{}.waitFor(ctx), waitMax)
		l, err := s.Lock(ctx, name, spec.EX, WaitTimeout(wait), LockDelay(delay))
		if err == nil {
			return l, nil
		}
		if ctx.Err() != nil || !errors.Is(err, ErrTimeout) {
			return nil, err
		}
		// The node's wait ran out, not ours: stand again (at the back of
		// the line; the node keeps no place for a request that ended).
	}
}

// follow ends the leadership when the session's lease may be lost, or at
// Resign, whichever comes first.
func (ld *Leadership) follow(s *Session) {
	defer close(ld.watcherDone)
	select {
	case <-s.Done():
		err := s.Err()
		if err == nil {
			err = ErrResigned // the session was closed
		}
		ld.finish(err)
	case <-ld.resigned:
	}
}

func (ld *Leadership) finish(err error) {
	ld.finishOnce.Do(func() {
		ld.mu.Lock()
		ld.err = err
		ld.mu.Unlock()
		close(ld.done)
	})
}

// Name returns the election's name: the resource its candidates lock.
func (ld *Leadership) Name() string { return ld.lock.Resource() }

// Token returns the leadership's fencing token, its epoch: greater than
// every earlier leader's. Pass it with every write the leader makes.
func (ld *Leadership) Token() spec.Token { return ld.token }

// Value returns the value this leader published.
func (ld *Leadership) Value() []byte { return spec.CloneValue(ld.value) }

// Previous returns the value block as this leader found it: the last
// leader's value if it resigned, and valid false if its session expired
// while leading (it may have left work half done). An election held for
// the first time, or whose resource was dropped in between (nobody held
// or wanted it), has an empty, valid block.
func (ld *Leadership) Previous() ([]byte, bool) { return ld.prev, ld.prevValid }

// Done is closed when this session may no longer lead: its lease may have
// run out (it closes before the node can grant the next candidate), or the
// leadership was resigned. From then on, stop acting as the leader.
func (ld *Leadership) Done() <-chan struct{} { return ld.done }

// Err says why Done closed: nil while leading, ErrResigned, or the
// session's reason (ErrLeaseLost, SessionExpired).
func (ld *Leadership) Err() error {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.err
}

// LeaseDeadline is when the leadership runs out unless the session's
// keepalives are answered, as the client counts it.
func (ld *Leadership) LeaseDeadline() time.Time { return ld.lock.s.LeaseDeadline() }

// Resign gives the leadership up: Done closes at once, before the release
// is sent, and the next candidate in line leads once the node has it. The
// value block is left as it is, for the next leader's Previous. A
// leadership already lost resigns with ErrLeaseLost (the node frees it
// when the session expires).
func (ld *Leadership) Resign(ctx context.Context) error {
	ld.resignOnce.Do(func() { close(ld.resigned) })
	ld.finish(ErrResigned)
	<-ld.watcherDone
	return ld.lock.Unlock(ctx)
}

// Leader is who leads an election, as an observer sees it.
type Leader struct {
	// Present is false while nobody leads: no candidate holds the
	// election, or the one granted has not published its value yet.
	Present bool
	Value   []byte     // the leader's published value
	Token   spec.Token // the leadership's epoch
}

func (a Leader) equal(b Leader) bool {
	return a.Present == b.Present && a.Token == b.Token && bytes.Equal(a.Value, b.Value)
}

// observeRetry is how long Observe waits before it watches again after a
// broken stream (a restarting node, a move to another member).
const observeRetry = 100 * time.Millisecond

// Observe calls f with the leader of the election name now, then after
// every change, until ctx ends (it returns ctx's error), f returns an error
// (returned as is), or the node refuses the watch for good (a bad name, a
// bad token, too many watchers). A broken stream is watched again after a
// short pause; what changed meanwhile is reported once, as the latest
// state. A slow observer (or a handover faster than the watch) may skip a
// leader, never report one out of order: the tokens of the leaders it
// reports rise. What it reports can be late: only the leader's token,
// checked by the resource it writes to, is authoritative.
func (c *Client) Observe(ctx context.Context, name string, f func(Leader) error) error {
	var last Leader
	reported := false
	for {
		err := c.watchLeader(ctx, name, func(now Leader) error {
			if reported && now.equal(last) {
				return nil
			}
			last, reported = now, true
			return f(now)
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fe *observerError
		if errors.As(err, &fe) {
			return fe.err
		}
		if watchRefusedForGood(err) {
			return err
		}
		t := time.NewTimer(observeRetry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// observerError carries f's own error out of watchLeader.
type observerError struct{ err error }

func (e *observerError) Error() string { return e.err.Error() }

// watchLeader follows one Watch stream until it breaks or f fails.
func (c *Client) watchLeader(ctx context.Context, name string, f func(Leader) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.api.Watch(ctx, &pb.WatchRequest{Resource: []byte(name)})
	if err != nil {
		return err
	}
	for {
		w, err := stream.Recv()
		if err != nil {
			return err
		}
		if err := f(leaderOf(w)); err != nil {
			return &observerError{err: err}
		}
	}
}

// leaderOf reads the leader from a watched state: the PW holder, if the
// value block is valid. A holder in a mode this side does not know is no
// leader.
func leaderOf(w *pb.WatchResponse) Leader {
	r := w.GetResource()
	if !w.GetExists() || r == nil || !r.ValueValid {
		return Leader{}
	}
	for _, h := range r.Holders {
		if m, err := wire.ModeFromWire(h.Mode); err == nil && m == spec.PW {
			return Leader{Present: true, Value: spec.CloneValue(r.Value), Token: spec.Token(h.Token)}
		}
	}
	return Leader{}
}

// watchRefusedForGood reports whether watching again cannot help: the node
// refused the request itself (a name over its bound, its watcher limit),
// or the caller's credentials.
func watchRefusedForGood(err error) bool {
	if r, ok := wire.ResultFromStatus(err); ok {
		return r.Code != spec.Unavailable
	}
	switch status.Code(err) {
	case codes.InvalidArgument, codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented:
		return true
	}
	return false
}
