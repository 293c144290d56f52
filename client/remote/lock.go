package remote

import (
	"context"
	"errors"
	"sync"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
	"google.golang.org/protobuf/types/known/durationpb"
)

// LockOption adjusts a Lock, TryLock or Convert.
type LockOption func(*lockOptions)

type lockOptions struct {
	wait, delay time.Duration
}

// WaitTimeout bounds how long the request may queue on the node (by
// default: until the context's deadline, or the node's longest wait).
func WaitTimeout(d time.Duration) LockOption { return func(o *lockOptions) { o.wait = d } }

// LockDelay asks that, should this session expire while holding the lock
// (in a mode other than NL), the resource grant nothing new for d.
func LockDelay(d time.Duration) LockOption { return func(o *lockOptions) { o.delay = d } }

// Lock is a granted lock. Its token increases with every grant of the
// resource; pass it to any resource that can check fencing tokens.
type Lock struct {
	s        *Session
	resource string

	mu    sync.Mutex
	mode  spec.Mode
	token spec.Token
	value []byte
	valid bool
	held  bool
}

// Lock acquires resource in mode, waiting as long as ctx allows. If ctx
// ends first, the request is cancelled on the node (and released, should it
// have been granted meanwhile) and ctx's error returned.
func (s *Session) Lock(ctx context.Context, resource string, mode spec.Mode, opts ...LockOption) (*Lock, error) {
	return s.acquire(ctx, resource, mode, false, opts)
}

// TryLock acquires resource in mode only if that can be done at once; else
// it fails with ErrWouldBlock.
func (s *Session) TryLock(ctx context.Context, resource string, mode spec.Mode, opts ...LockOption) (*Lock, error) {
	return s.acquire(ctx, resource, mode, true, opts)
}

func (s *Session) acquire(ctx context.Context, resource string, mode spec.Mode, try bool, opts []LockOption) (*Lock, error) {
	var o lockOptions
	for _, f := range opts {
		f(&o)
	}
	if err := s.alive(); err != nil {
		return nil, err
	}
	id, acked := s.newRequest()
	req := &pb.AcquireRequest{SessionId: s.id[:], RequestId: uint64(id), Acked: uint64(acked),
		Resource: []byte(resource), Mode: modeToWire(mode), NoQueue: try}
	if o.wait > 0 {
		req.WaitTimeout = durationpb.New(o.wait)
	}
	if o.delay > 0 {
		req.LockDelay = durationpb.New(o.delay)
	}
	var resp *pb.LockResponse
	err := retry(ctx, s.done, func(ctx context.Context) (err error) {
		resp, err = s.c.api.Acquire(ctx, req)
		return err
	})
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		go s.abandon(req)
		return nil, err
	}
	if err != nil {
		if !errors.Is(err, ErrLeaseLost) {
			s.finish(id)
		}
		return nil, err
	}
	s.finish(id)
	l := &Lock{s: s, resource: resource, held: true}
	l.update(resp)
	return l, nil
}

// abandon settles an acquire whose caller gave up: cancel it if it still
// waits, learn its outcome by retrying the same request id, and release the
// lock if it was granted after all.
func (s *Session) abandon(req *pb.AcquireRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), s.ttl)
	defer cancel()
	cid, acked := s.newRequest()
	_ = retry(ctx, s.done, func(ctx context.Context) error {
		_, err := s.c.api.Cancel(ctx, &pb.CancelRequest{SessionId: s.id[:], RequestId: uint64(cid),
			Acked: uint64(acked), Resource: req.Resource})
		return err
	})
	s.finish(cid)
	var resp *pb.LockResponse
	err := retry(ctx, s.done, func(ctx context.Context) (err error) {
		resp, err = s.c.api.Acquire(ctx, req)
		return err
	})
	if err == nil && resp != nil {
		_ = (&Lock{s: s, resource: string(req.Resource), held: true}).Unlock(ctx)
	}
	if !errors.Is(err, ErrLeaseLost) && ctx.Err() == nil {
		s.finish(spec.RequestID(req.RequestId))
	}
}

func (l *Lock) update(r *pb.LockResponse) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mode, _ = modeFromWire(r.Mode)
	l.token, l.value, l.valid = spec.Token(r.Token), r.Value, r.ValueValid
}

// Resource returns the name of the locked resource.
func (l *Lock) Resource() string { return l.resource }

// Mode returns the mode held.
func (l *Lock) Mode() spec.Mode {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mode
}

// Token returns the fencing token of the latest grant or up-conversion.
func (l *Lock) Token() spec.Token {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.token
}

// Value returns the value block as of the grant, and whether it is valid
// (false after a PW or EX holder's session expired without writing it).
func (l *Lock) Value() ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.value, l.valid
}

// Done is closed when the session's lease may be lost: from then on the
// lock must be treated as lost, whatever the node later says.
func (l *Lock) Done() <-chan struct{} { return l.s.done }

// Convert changes the mode held; an up-conversion may wait, as Lock does.
func (l *Lock) Convert(ctx context.Context, mode spec.Mode, opts ...LockOption) error {
	return l.convert(ctx, mode, false, nil, opts)
}

// ConvertWithValue converts down from PW or EX, writing the value block.
func (l *Lock) ConvertWithValue(ctx context.Context, mode spec.Mode, value []byte) error {
	return l.convert(ctx, mode, true, value, nil)
}

func (l *Lock) convert(ctx context.Context, mode spec.Mode, write bool, value []byte, opts []LockOption) error {
	var o lockOptions
	for _, f := range opts {
		f(&o)
	}
	s := l.s
	if err := s.alive(); err != nil {
		return err
	}
	id, acked := s.newRequest()
	req := &pb.ConvertRequest{SessionId: s.id[:], RequestId: uint64(id), Acked: uint64(acked),
		Resource: []byte(l.resource), Mode: modeToWire(mode), WriteValue: write, Value: value}
	if o.wait > 0 {
		req.WaitTimeout = durationpb.New(o.wait)
	}
	var resp *pb.LockResponse
	err := retry(ctx, s.done, func(ctx context.Context) (err error) {
		resp, err = s.c.api.Convert(ctx, req)
		return err
	})
	if err == nil {
		l.update(resp)
	}
	if !errors.Is(err, ErrLeaseLost) && ctx.Err() == nil {
		s.finish(id)
	}
	return err
}

// Unlock releases the lock.
func (l *Lock) Unlock(ctx context.Context) error { return l.release(ctx, false, nil) }

// UnlockWithValue releases a PW or EX lock, writing the value block.
func (l *Lock) UnlockWithValue(ctx context.Context, value []byte) error {
	return l.release(ctx, true, value)
}

func (l *Lock) release(ctx context.Context, write bool, value []byte) error {
	s := l.s
	if err := s.alive(); err != nil {
		return err
	}
	id, acked := s.newRequest()
	req := &pb.ReleaseRequest{SessionId: s.id[:], RequestId: uint64(id), Acked: uint64(acked),
		Resource: []byte(l.resource), WriteValue: write, Value: value}
	err := retry(ctx, s.done, func(ctx context.Context) error {
		_, err := s.c.api.Release(ctx, req)
		return err
	})
	if !errors.Is(err, ErrLeaseLost) && ctx.Err() == nil {
		s.finish(id)
	}
	if err == nil {
		l.mu.Lock()
		l.held = false
		l.mu.Unlock()
	}
	return err
}

func modeToWire(m spec.Mode) pb.Mode { return pb.Mode(m) + pb.Mode_MODE_NL }

func modeFromWire(m pb.Mode) (spec.Mode, bool) {
	if m < pb.Mode_MODE_NL || m > pb.Mode_MODE_EX {
		return 0, false
	}
	return spec.Mode(m - pb.Mode_MODE_NL), true
}
