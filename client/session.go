package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bouncer-dlm/bouncer/client/protocol"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"google.golang.org/grpc"
)

// Session is a lease on the node. It renews itself and closes Done as soon
// as the lease may have run out: counted from the time the last answered
// keepalive was SENT, shrunk for clock drift, so that the client gives its
// locks up before the node can grant them to anyone else.
type Session struct {
	c           *Client
	id          spec.SessionID
	tag         []byte            // how the node that opened it shows it to others
	proto       *protocol.Session // under core
	now         func() spec.Time
	ctx         context.Context
	cancel      context.CancelFunc
	callTimeout time.Duration

	core   sync.Mutex  // held to step proto; see step
	halted bool        // under core: proto takes no more inputs
	timer  *time.Timer // the core's next deadline: tick
	ka     keepAlives

	waiters    map[spec.RequestID]chan protocol.Update // under core
	opened     chan struct{}
	openedOnce sync.Once
	subscribed chan struct{} // closed once the event stream is up
	subOnce    sync.Once
	blocking   chan Notification
	inflight   sync.WaitGroup

	mu        sync.Mutex
	done      chan struct{} // the lease is lost or the session closed
	err       error
	unsettled int           // abandoned acquires not yet settled
	settledCh chan struct{} // closed when unsettled drops to 0; nil while it is 0
}

// Notification says that a lock of this session blocks another's request.
type Notification struct {
	Resource string
	Mode     spec.Mode // the mode wanted
}

// NewSession opens a session and keeps it alive. The node issues the id;
// the lease is counted with the TTL the node answered (never longer than
// the one asked for), from the moment the open was sent.
func (c *Client) NewSession(ctx context.Context) (*Session, error) {
	start := time.Now()
	now := func() spec.Time { return spec.Time(time.Since(start)) } // monotonic
	id, ttl, sent, tag, err := c.open(ctx, now)
	if err != nil {
		return nil, err
	}
	cfg := c.cfg.protocol()
	cfg.TTL = min(cfg.TTL, ttl)
	cs, err := protocol.NewSession(id, cfg, sent)
	if err != nil {
		return nil, fmt.Errorf("client: the node answered TTL %v: %w", ttl, err)
	}
	// The open was made here, not by the core: tell the core it was sent at
	// sent and answered, so that it counts the lease from then.
	for _, snd := range cs.Sends(sent) {
		cs.Reply(now(), snd.Call, spec.Result{})
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Session{c: c, id: id, tag: tag, proto: cs, now: now, ctx: sctx, cancel: cancel, callTimeout: cs.Config().TTL / 2,
		waiters: map[spec.RequestID]chan protocol.Update{},
		opened:  make(chan struct{}), subscribed: make(chan struct{}), blocking: make(chan Notification, 64), done: make(chan struct{})}
	s.ka.s = s
	s.core.Lock()
	s.timer = time.AfterFunc(time.Hour, s.tick)
	s.timer.Stop()
	s.core.Unlock()
	_ = s.step(func(spec.Time) {}) // the core's first sends and deadline
	s.inflight.Add(2)
	go s.watchEvents()
	go s.watchConnection()
	// Return once the session is open and its event stream is up, so that
	// no notification (Blocking, Expired) is missed from then on.
	for _, ready := range []chan struct{}{s.opened, s.subscribed} {
		select {
		case <-ready:
			continue
		case <-s.done:
			s.stop()
			return nil, s.Err()
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		}
	}
	return s, nil
}

// ID returns the session id. Keep it secret: it is the session.
func (s *Session) ID() spec.SessionID { return s.id }

// Tag is how the node that opened the session shows it to others (in
// Describe, List, Watch and the wait-for graph), so a program can find
// its own locks there; unlike the id it is no secret. Empty from a node
// that does not say. Each member of a group keys its own tags, so after
// a move to another member the session appears there under another tag.
func (s *Session) Tag() []byte { return s.tag }

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
func (s *Session) Blocking() <-chan Notification { return s.blocking }

// LeaseDeadline is when the lease runs out as the client counts it.
func (s *Session) LeaseDeadline() time.Time {
	var left time.Duration
	var ok bool
	err := s.step(func(now spec.Time) {
		var d spec.Time
		if d, ok = s.proto.LeaseDeadline(); ok {
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
	if e := s.step(func(now spec.Time) { err = s.proto.Close(now) }); e != nil {
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

// stop halts the core, ends the background goroutines and waits for them.
func (s *Session) stop() {
	s.end(ErrLeaseLost)
	s.core.Lock()
	if !s.halted {
		s.halt()
	}
	s.core.Unlock()
	s.cancel()
	s.inflight.Wait()
}

// request starts a request with the core and returns where its outcome
// will arrive.
func (s *Session) request(start func(now spec.Time) (spec.RequestID, error)) (spec.RequestID, chan protocol.Update, error) {
	var id spec.RequestID
	var err error
	ch := make(chan protocol.Update, 1)
	if e := s.call(func(now spec.Time) {
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
	case errors.Is(err, protocol.ErrBusy):
		return &spec.Error{Code: spec.AlreadyHeld, Detail: "a request on this resource is still in flight"}
	case errors.Is(err, protocol.ErrNoLock):
		return &spec.Error{Code: spec.NotHeld, Detail: "no lock held on this resource"}
	case errors.Is(err, protocol.ErrNotOpen), errors.Is(err, protocol.ErrClosing):
		return ErrLeaseLost
	}
	return err
}

// outcome turns a Done update into this package's result.
func outcome(u protocol.Update) (spec.Result, error) {
	switch {
	case u.Unknown:
		return u.Result, ErrLeaseLost
	case u.Result.Code != spec.OK:
		return u.Result, &spec.Error{Code: u.Result.Code, Detail: u.Result.Detail}
	}
	return u.Result, nil
}

// open asks the node for a session until it answers or ctx ends. It returns
// the id, TTL and tag the node answered and when (by now) the answered
// call was sent. An attempt whose answer was lost may leave a session
// behind on the node; it expires after its TTL.
func (c *Client) open(ctx context.Context, now func() spec.Time) (spec.SessionID, time.Duration, spec.Time, []byte, error) {
	var id spec.SessionID
	retry := min(c.cfg.TTL/8, 500*time.Millisecond)
	for {
		sent := now()
		r, err := c.api.OpenSession(ctx, wire.OpenToWire(spec.Input{Op: spec.OpOpen, TTL: c.cfg.TTL, Label: c.cfg.Label}), grpc.WaitForReady(true))
		if err == nil {
			id, ttl, err := wire.OpenedFromWire(r)
			if err != nil {
				return id, 0, 0, nil, fmt.Errorf("client: the node answered the open with a malformed session: %w", err)
			}
			return id, ttl, sent, r.SessionTag, nil
		}
		if res, ok := resultOf(err); ok {
			return id, 0, 0, nil, &spec.Error{Code: res.Code, Detail: res.Detail}
		}
		t := time.NewTimer(retry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			// Say why the attempts failed, not only that time ran out.
			return id, 0, 0, nil, fmt.Errorf("%w; the last attempt: %w", ctx.Err(), err)
		}
	}
}
