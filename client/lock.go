package client

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/bouncer-dlm/bouncer/client/protocol"
	"github.com/bouncer-dlm/bouncer/spec"
)

// LockOption adjusts a Lock, TryLock or Convert.
type LockOption func(*lockOptions)

type lockOptions struct {
	wait, delay    time.Duration
	permits, limit uint32 // a semaphore's (AcquirePermits)
}

// WaitTimeout bounds how long the request may queue on the node (by
// default: until the context's deadline, or the node's longest wait).
func WaitTimeout(d time.Duration) LockOption { return func(o *lockOptions) { o.wait = d } }

// LockDelay asks that, should this session expire while holding the lock
// (in a mode other than NL), the resource grant nothing new for d.
func LockDelay(d time.Duration) LockOption { return func(o *lockOptions) { o.delay = d } }

// waitFor is how long a request may queue: as asked, else until ctx's
// deadline, else a day (the node's default bound).
func (o lockOptions) waitFor(ctx context.Context) time.Duration {
	if o.wait > 0 {
		return o.wait
	}
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 24 * time.Hour
}

// Lock is a granted lock, or a semaphore's permits. Its token increases
// with every grant of the resource; pass it to any resource that can check
// fencing tokens.
type Lock struct {
	s        *Session
	resource string
	permits  uint32 // of a semaphore; 0 for a lock

	mu    sync.Mutex
	mode  spec.Mode
	token spec.Token
	value []byte
	valid bool
}

// Lock acquires resource in mode, waiting as long as ctx allows. If ctx
// ends first, Lock returns at once with ErrTimeout (ErrCancelled if ctx was
// cancelled; errors.Is matches ctx's error too), and the request is
// cancelled on the node (and released, should it have been granted
// meanwhile) before the session sends its next acquire or conversion.
func (s *Session) Lock(ctx context.Context, resource string, mode spec.Mode, opts ...LockOption) (*Lock, error) {
	return s.acquire(ctx, resource, mode, false, opts)
}

// TryLock acquires resource in mode only if that can be done at once; else
// it fails with ErrWouldBlock.
func (s *Session) TryLock(ctx context.Context, resource string, mode spec.Mode, opts ...LockOption) (*Lock, error) {
	return s.acquire(ctx, resource, mode, true, opts)
}

// AcquirePermits takes n permits of the counting semaphore resource, of
// limit permits, waiting as long as ctx allows (as Lock does). The
// semaphore grants in FIFO order whatever fits in what its holders leave
// of the limit; each holder gets its own fencing token, and gives its
// permits back with Unlock, or when its session ends. The first acquire of
// a resource fixes its limit: asking a lock for permits, or a semaphore
// with another limit, fails with InvalidArgument. Convert does not apply.
func (s *Session) AcquirePermits(ctx context.Context, resource string, n, limit uint32, opts ...LockOption) (*Lock, error) {
	return s.acquire(ctx, resource, spec.PR, false, append(opts, permits(n, limit)))
}

// TryAcquirePermits takes n permits only if they fit at once; else it
// fails with ErrWouldBlock.
func (s *Session) TryAcquirePermits(ctx context.Context, resource string, n, limit uint32, opts ...LockOption) (*Lock, error) {
	return s.acquire(ctx, resource, spec.PR, true, append(opts, permits(n, limit)))
}

func permits(n, limit uint32) LockOption {
	return func(o *lockOptions) { o.permits, o.limit = n, limit }
}

// Permits returns the semaphore permits the lock holds (0 for a lock).
func (l *Lock) Permits() uint32 { return l.permits }

func (s *Session) acquire(ctx context.Context, resource string, mode spec.Mode, try bool, opts []LockOption) (*Lock, error) {
	var o lockOptions
	for _, f := range opts {
		f(&o)
	}
	if ctx.Err() != nil {
		// Never send for a caller that gave up already: its answer could
		// come before the select below saw ctx end, and hand the caller a lock
		// it had given up on.
		return nil, gaveUp(ctx)
	}
	if err := s.settled(ctx); err != nil {
		return nil, err
	}
	opt := protocol.AcquireOptions{NoQueue: try, LockDelay: o.delay, Permits: o.permits, Limit: o.limit}
	if !try {
		opt.WaitTimeout = o.waitFor(ctx)
	}
	_, ch, err := s.request(func(now spec.Time) (spec.RequestID, error) {
		return s.proto.Acquire(now, resource, mode, opt)
	})
	if err != nil {
		return nil, err
	}
	select {
	case u := <-ch:
		res, err := outcome(u)
		if err != nil {
			return nil, err
		}
		l := &Lock{s: s, resource: resource, permits: o.permits}
		l.update(res)
		return l, nil
	case <-ctx.Done():
		s.abandoning(+1)
		go func() {
			defer s.abandoning(-1)
			s.abandon(resource, ch)
		}()
		return nil, gaveUp(ctx)
	}
}

// gaveUp is the error of a call whose context ended before its answer
// came: Timeout for a deadline, Cancelled for a cancellation, so that
// CodeOf and errors.Is(err, ErrTimeout) tell what happened; errors.Is also
// matches ctx.Err().
func gaveUp(ctx context.Context) error {
	e := &spec.Error{Code: spec.Cancelled, Detail: "the caller cancelled the wait"}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		e = &spec.Error{Code: spec.Timeout, Detail: "the caller's deadline passed before the answer came"}
	}
	return &ctxError{code: e, ctx: ctx.Err()}
}

// ctxError is a Bouncer code for a context's end, wrapping both.
type ctxError struct {
	code *spec.Error
	ctx  error
}

func (e *ctxError) Error() string   { return e.code.Error() }
func (e *ctxError) Unwrap() []error { return []error{e.code, e.ctx} }

// An acquire whose caller gave up is still alive on the node until its
// cancel lands, and may be granted first. Until it is settled (cancelled,
// or its late grant released), the session asks for nothing new: a retry
// on the same resource would be refused as busy, and a request elsewhere
// could be refused as a Deadlock through a lock the application does not
// know it holds. Settling takes a round trip or two; a session that cannot
// settle (the node is unreachable) fails new requests when their contexts
// end, and ends them all when its lease runs out.

// abandoning counts an abandoned acquire in (+1) or out (-1).
func (s *Session) abandoning(delta int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unsettled += delta
	switch {
	case s.unsettled > 0 && s.settledCh == nil:
		s.settledCh = make(chan struct{})
	case s.unsettled == 0 && s.settledCh != nil:
		close(s.settledCh)
		s.settledCh = nil
	}
}

// settled waits until no abandoned acquire of the session is unsettled,
// or ctx ends (then its error is gaveUp's).
func (s *Session) settled(ctx context.Context) error {
	s.mu.Lock()
	ch := s.settledCh
	s.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return gaveUp(ctx)
	}
}

// abandon settles an acquire whose caller gave up: cancel it, and release
// the lock should it have been granted first.
func (s *Session) abandon(resource string, ch chan protocol.Update) {
	_, cancelled, err := s.request(func(now spec.Time) (spec.RequestID, error) {
		return s.proto.Cancel(now, resource)
	})
	if err == nil {
		<-cancelled
	}
	if u := <-ch; !u.Unknown && u.Result.Code == spec.OK {
		ctx, cancel := context.WithTimeout(context.Background(), s.callTimeout)
		defer cancel()
		_ = (&Lock{s: s, resource: resource}).Unlock(ctx)
	}
}

func (l *Lock) update(r spec.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mode, l.token, l.value, l.valid = r.Mode, r.Token, r.Value, r.ValueValid
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
	var o lockOptions
	for _, f := range opts {
		f(&o)
	}
	return l.convert(ctx, mode, protocol.ConvertOptions{WaitTimeout: o.waitFor(ctx)})
}

// ConvertWithValue converts down from PW or EX, writing the value block.
func (l *Lock) ConvertWithValue(ctx context.Context, mode spec.Mode, value []byte) error {
	return l.convert(ctx, mode, protocol.ConvertOptions{WaitTimeout: time.Minute, WriteValue: true, Value: value})
}

func (l *Lock) convert(ctx context.Context, mode spec.Mode, opt protocol.ConvertOptions) error {
	if err := l.s.settled(ctx); err != nil {
		return err
	}
	_, ch, err := l.s.request(func(now spec.Time) (spec.RequestID, error) {
		return l.s.proto.Convert(now, l.resource, mode, opt)
	})
	if err != nil {
		return err
	}
	select {
	case u := <-ch:
		res, err := outcome(u)
		if err == nil {
			l.update(res)
		}
		return err
	case <-ctx.Done():
		go func() { <-ch }() // the outcome still arrives; the core tracks the mode
		return gaveUp(ctx)
	}
}

// Unlock releases the lock.
func (l *Lock) Unlock(ctx context.Context) error { return l.release(ctx, protocol.ReleaseOptions{}) }

// UnlockWithValue releases a PW or EX lock, writing the value block.
func (l *Lock) UnlockWithValue(ctx context.Context, value []byte) error {
	return l.release(ctx, protocol.ReleaseOptions{WriteValue: true, Value: value})
}

func (l *Lock) release(ctx context.Context, opt protocol.ReleaseOptions) error {
	_, ch, err := l.s.request(func(now spec.Time) (spec.RequestID, error) {
		return l.s.proto.Release(now, l.resource, opt)
	})
	if err != nil {
		return err
	}
	select {
	case u := <-ch:
		_, err := outcome(u)
		return err
	case <-ctx.Done():
		go func() { <-ch }()
		return ctx.Err()
	}
}
