package remote

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Session is a lease on the node. It renews itself in the background and
// closes Done as soon as the lease may have run out: counted from the time
// the last answered keepalive was SENT, less a drift margin, so the client
// gives up its locks before the node can grant them to anyone else.
type Session struct {
	c    *Client
	id   spec.SessionID
	ttl  time.Duration
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the lease is lost or the session closed
	wg   sync.WaitGroup

	mu       sync.Mutex
	err      error // why done closed
	deadline time.Time
	next     spec.RequestID
	finished map[spec.RequestID]bool // outcomes known above acked
	acked    spec.RequestID          // every outcome up to here is known
	blocking chan Blocking
}

// Blocking says that a lock of this session blocks another's request.
type Blocking struct {
	Resource string
	Mode     spec.Mode // the mode wanted
}

// NewSession opens a session with the client's TTL and starts renewing it.
func (c *Client) NewSession(ctx context.Context) (*Session, error) {
	s := &Session{c: c, ttl: c.cfg.TTL, stop: make(chan struct{}), done: make(chan struct{}),
		finished: map[spec.RequestID]bool{}, blocking: make(chan Blocking, 64)}
	_, _ = rand.Read(s.id[:]) // a capability: 128 unguessable bits
	sent := time.Now()
	err := retry(ctx, nil, func(ctx context.Context) error {
		sent = time.Now()
		_, err := c.api.OpenSession(ctx, &pb.OpenSessionRequest{SessionId: s.id[:], Ttl: durationpb.New(s.ttl)})
		return err
	})
	if err != nil {
		return nil, err
	}
	s.deadline = sent.Add(s.ttl - c.cfg.DriftMargin)
	s.wg.Add(3)
	go s.keepAlive()
	go s.watchLease()
	go s.events()
	return s, nil
}

// ID returns the session id. Keep it secret: it is the session.
func (s *Session) ID() spec.SessionID { return s.id }

// Done is closed when the lease may be lost or the session is closed.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err says why Done closed: ErrLeaseLost, ErrSessionExpired, or nil after Close.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// LeaseDeadline is the instant (by this client's clock) until which the
// session is certainly alive, if the node's clock runs no slower than the
// drift margin allows.
func (s *Session) LeaseDeadline() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadline
}

// Blocking delivers notifications that a lock of this session blocks a
// request of another; a cooperative holder releases early. Notifications
// that find the channel full are dropped.
func (s *Session) Blocking() <-chan Blocking { return s.blocking }

// Close releases every lock of the session and ends it.
func (s *Session) Close(ctx context.Context) error {
	err := retry(ctx, s.done, func(ctx context.Context) error {
		_, err := s.c.api.CloseSession(ctx, &pb.CloseSessionRequest{SessionId: s.id[:]})
		return err
	})
	s.end(nil)
	s.wg.Wait()
	if errors.Is(err, ErrLeaseLost) {
		return nil // the lease ran out first: nothing is held anyway
	}
	return err
}

// end closes the session locally for reason (first reason wins).
func (s *Session) end(reason error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	s.err = reason
	close(s.done)
}

// keepAlive renews the lease every TTL/3 over one stream, reopening it
// when it breaks.
func (s *Session) keepAlive() {
	defer s.wg.Done()
	every := s.ttl / 3
	for {
		ctx, cancel := context.WithCancel(context.Background())
		err := s.keepAliveStream(ctx, every)
		cancel()
		if err == nil {
			return // stopped
		}
		select {
		case <-s.stop:
			return
		case <-time.After(every / 4):
		}
	}
}

func (s *Session) keepAliveStream(ctx context.Context, every time.Duration) error {
	stream, err := s.c.api.KeepAlive(ctx)
	if err != nil {
		return err
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		sent := time.Now()
		if err := stream.Send(&pb.KeepAliveRequest{SessionId: s.id[:]}); err != nil {
			return err
		}
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		switch resp.Code {
		case pb.Code_CODE_OK:
			s.mu.Lock()
			if d := sent.Add(s.ttl - s.c.cfg.DriftMargin); d.After(s.deadline) {
				s.deadline = d
			}
			s.mu.Unlock()
		case pb.Code_CODE_SESSION_EXPIRED, pb.Code_CODE_UNKNOWN_SESSION:
			s.end(&spec.Error{Code: spec.Code(resp.Code), Detail: resp.Detail})
			return nil
		}
		select {
		case <-tick.C:
		case <-s.stop:
			return nil
		}
	}
}

// watchLease ends the session once its lease deadline passes unrenewed.
func (s *Session) watchLease() {
	defer s.wg.Done()
	for {
		wait := time.Until(s.LeaseDeadline())
		if wait <= 0 {
			s.end(ErrLeaseLost)
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
			return
		}
	}
}

// events forwards blocking notifications and notices expiry.
func (s *Session) events() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	for ctx.Err() == nil {
		stream, err := s.c.api.Events(ctx, &pb.EventsRequest{SessionId: s.id[:]})
		for err == nil {
			var e *pb.Event
			if e, err = stream.Recv(); err != nil {
				break
			}
			switch {
			case e.GetBlocking() != nil:
				m, _ := modeFromWire(e.GetBlocking().Mode)
				select {
				case s.blocking <- Blocking{Resource: string(e.GetBlocking().Resource), Mode: m}:
				default:
				}
			case e.GetExpired() != nil:
				s.end(ErrSessionExpired)
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// newRequest returns a fresh request id and the acknowledgement to send.
func (s *Session) newRequest() (spec.RequestID, spec.RequestID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	return s.next, s.acked
}

// finish records that the outcome of request id is known.
func (s *Session) finish(id spec.RequestID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished[id] = true
	for s.finished[s.acked+1] {
		delete(s.finished, s.acked+1)
		s.acked++
	}
}

// alive returns ErrLeaseLost (or why the session ended) once Done closed.
func (s *Session) alive() error {
	select {
	case <-s.done:
		if err := s.Err(); err != nil {
			return err
		}
		return ErrLeaseLost
	default:
		return nil
	}
}
