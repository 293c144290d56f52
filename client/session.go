package client

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"time"

	"github.com/bouncer-dlm/bouncer/client/core"
	"github.com/bouncer-dlm/bouncer/spec"
)

// Session is a lease on the node. It renews itself and closes Done as soon
// as the lease may have run out: counted from the time the last answered
// keepalive was SENT, shrunk for clock drift, so that the client gives its
// locks up before the node can grant them to anyone else.
type Session struct {
	c           *Client
	id          spec.SessionID
	core        *core.Session // owned by the driver goroutine
	ctx         context.Context
	cancel      context.CancelFunc
	callTimeout time.Duration

	calls   chan func(now spec.Time)
	answers chan answer
	events  chan spec.Event
	conn    chan bool
	stopped chan struct{} // the driver exited
	quit    chan struct{} // closed by stop: the driver must exit
	ka      keepAlives

	waiters    map[spec.RequestID]chan core.Update // driver-owned
	opened     chan struct{}
	openedOnce sync.Once
	stopOnce   sync.Once
	blocking   chan Blocking
	inflight   sync.WaitGroup

	mu        sync.Mutex
	done      chan struct{} // the lease is lost or the session closed
	err       error
	unsettled int           // abandoned acquires not yet settled
	settledCh chan struct{} // closed when unsettled drops to 0; nil while it is 0
}

// Blocking says that a lock of this session blocks another's request.
type Blocking struct {
	Resource string
	Mode     spec.Mode // the mode wanted
}

// NewSession opens a session (with the client's TTL) and keeps it alive.
func (c *Client) NewSession(ctx context.Context) (*Session, error) {
	var id spec.SessionID
	_, _ = rand.Read(id[:]) // a capability: 128 unguessable bits
	start := time.Now()
	now := func() spec.Time { return spec.Time(time.Since(start)) } // monotonic
	cs, err := core.NewSession(id, c.cfg.core(), now())
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Session{c: c, id: id, core: cs, ctx: sctx, cancel: cancel, callTimeout: cs.Config().TTL / 2,
		calls: make(chan func(spec.Time)), answers: make(chan answer), events: make(chan spec.Event),
		conn: make(chan bool), stopped: make(chan struct{}), quit: make(chan struct{}), waiters: map[spec.RequestID]chan core.Update{},
		opened: make(chan struct{}), blocking: make(chan Blocking, 64), done: make(chan struct{})}
	s.ka.s = s
	s.inflight.Add(2)
	go s.watchEvents()
	go s.watchConnection()
	go s.driver(now)
	select {
	case <-s.opened:
		return s, nil
	case <-s.done:
		s.stop()
		return nil, s.Err()
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
}

// ID returns the session id. Keep it secret: it is the session.
func (s *Session) ID() spec.SessionID { return s.id }

// Done is closed when the lease may be lost or the session is closed.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err says why Done closed: ErrLeaseLost, a *spec.Error from the node
// (SessionExpired), or nil after Close.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Blocking delivers notifications that a lock of this session blocks a
// request of another; a cooperative holder releases early. Notifications
// that find the channel full are dropped.
func (s *Session) Blocking() <-chan Blocking { return s.blocking }

// LeaseDeadline is when the lease runs out as the client counts it.
func (s *Session) LeaseDeadline() time.Time {
	var left time.Duration
	var ok bool
	err := s.do(func(now spec.Time) {
		var d spec.Time
		if d, ok = s.core.LeaseDeadline(); ok {
			left = d.Sub(now)
		}
	})
	if err != nil || !ok {
		return time.Time{}
	}
	return time.Now().Add(left)
}

// Close releases every lock of the session and ends it.
func (s *Session) Close(ctx context.Context) error {
	var err error
	if e := s.do(func(now spec.Time) { err = s.core.Close(now) }); e != nil {
		s.stop()
		return nil // already ended
	}
	if err != nil {
		return nil // closing already
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		s.stop()
		return ctx.Err()
	}
	s.stop() // closed, or the lease ran out first: either way nothing is held
	return nil
}

// end marks the session ended for reason (the first reason wins).
func (s *Session) end(reason error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
	default:
		s.err = reason
		close(s.done)
	}
}

// stop ends the background goroutines and waits for them.
func (s *Session) stop() {
	s.end(ErrLeaseLost)
	s.stopOnce.Do(func() { close(s.quit) })
	s.cancel()
	<-s.stopped
	s.inflight.Wait()
}

// do runs f on the driver, with the core, and waits for it.
func (s *Session) do(f func(now spec.Time)) error {
	ran := make(chan struct{})
	select {
	case s.calls <- func(now spec.Time) { f(now); close(ran) }:
		<-ran
		return nil
	case <-s.stopped:
		if err := s.Err(); err != nil {
			return err
		}
		return ErrLeaseLost
	}
}

// request starts a request on the driver and returns where its outcome
// will arrive.
func (s *Session) request(start func(now spec.Time) (spec.RequestID, error)) (spec.RequestID, chan core.Update, error) {
	var id spec.RequestID
	var err error
	ch := make(chan core.Update, 1)
	if e := s.do(func(now spec.Time) {
		if id, err = start(now); err == nil {
			s.waiters[id] = ch
		}
	}); e != nil {
		return 0, nil, e
	}
	return id, ch, misuse(err)
}

// misuse maps the core's misuse errors onto this package's errors.
func misuse(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, core.ErrBusy):
		return &spec.Error{Code: spec.AlreadyHeld, Detail: "a request on this resource is still in flight"}
	case errors.Is(err, core.ErrNoLock):
		return &spec.Error{Code: spec.NotHeld, Detail: "no lock held on this resource"}
	case errors.Is(err, core.ErrNotOpen), errors.Is(err, core.ErrClosing):
		return ErrLeaseLost
	}
	return err
}

// outcome turns a Done update into this package's result.
func outcome(u core.Update) (spec.Result, error) {
	switch {
	case u.Unknown:
		return u.Result, ErrLeaseLost
	case u.Result.Code != spec.OK:
		return u.Result, &spec.Error{Code: u.Result.Code, Detail: u.Result.Detail}
	}
	return u.Result, nil
}
