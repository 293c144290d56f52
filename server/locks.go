package server

import (
	"context"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
)

// OpenSession opens a session with an id the node issues: 128 bits from
// crypto/rand. A client-chosen id is refused, since the node cannot tell a
// random one from a guessable one (such as "0123456789abcdef"); so is a
// reopen, which could otherwise be answered with a TTL the session does not
// have. An open whose answer is lost leaves a session that expires after its
// TTL, like a client that died.
func (s *Server) OpenSession(ctx context.Context, req *pb.OpenSessionRequest) (*pb.OpenSessionResponse, error) {
	in, err := wire.OpenFromWire(req)
	if err != nil {
		return nil, invalid(wireRefusal(err))
	}
	in.Session = newSessionID()
	if in.TTL == 0 {
		in.TTL = s.opts.DefaultTTL
	}
	client := s.clientOf(ctx)
	if bad := s.quotas.take(client, quotaSessions); bad != nil {
		s.refused(reasonSessions, client)
		return nil, invalid(bad)
	}
	r, err := s.submit(ctx, in)
	if err == nil {
		err = wire.StatusError(r)
	}
	if err != nil {
		// The open may still take effect (a cancelled call): the session
		// then counts for no one and expires after its TTL.
		s.quotas.give(client, quotaSessions)
		return nil, err
	}
	s.quotas.opened(client, in.Session)
	resp := wire.OpenedToWire(in.Session, in.TTL)
	resp.SessionTag = s.tags.tag(in.Session) // so the client can find itself in Describe and the rest
	return resp, nil
}

// KeepAlive renews each session named on the stream and answers each.
func (s *Server) KeepAlive(stream pb.Locks_KeepAliveServer) error {
	reqs := received(stream.Context(), stream.Recv)
	for {
		var req *pb.KeepAliveRequest
		select {
		case r, ok := <-reqs:
			if !ok {
				return nil // the client closed the stream (or it broke)
			}
			req = r
		case <-s.draining:
			return errStopped
		}
		in, err := wire.KeepAliveFromWire(req)
		bad := wireRefusal(err)
		if undecodable(req) {
			bad = errUndecodable
		}
		r := spec.Result{}
		if bad != nil {
			r = *bad
		} else if r, err = s.submit(stream.Context(), in); err != nil {
			return err
		}
		if err := stream.Send(wire.KeepAliveResponseToWire(req.SessionId, r)); err != nil {
			return err
		}
	}
}

// CloseSession closes a session.
func (s *Server) CloseSession(ctx context.Context, req *pb.CloseSessionRequest) (*pb.CloseSessionResponse, error) {
	in, err := wire.CloseFromWire(req)
	if err != nil {
		return nil, invalid(wireRefusal(err))
	}
	r, err := s.submit(ctx, in)
	if err != nil {
		return nil, err
	}
	if r.Code == spec.OK {
		s.quotas.ended(in.Session)
	}
	return &pb.CloseSessionResponse{}, wire.StatusError(r)
}

// waitTimeout is how long a request that did not say may queue: until
// just before the call's deadline, else the longest the node allows.
func (s *Server) waitTimeout(ctx context.Context) time.Duration {
	lim := s.opts.Limits
	deadline, ok := ctx.Deadline()
	if !ok {
		return lim.WaitTimeoutMax
	}
	// Leave the answer time to be made and to travel before the caller
	// gives up: a tenth of the time left, at most 250 ms (a loaded node
	// took over 100 ms to time a request out and answer).
	left := time.Until(deadline)
	left -= min(left/10, 250*time.Millisecond)
	return min(max(left, lim.WaitTimeoutMin), lim.WaitTimeoutMax)
}

// Acquire requests a lock and waits for the outcome.
func (s *Server) Acquire(ctx context.Context, req *pb.AcquireRequest) (*pb.LockResponse, error) {
	in, err := wire.AcquireFromWire(req)
	if err != nil {
		return nil, invalid(wireRefusal(err))
	}
	return s.grant(ctx, in, req.Async)
}

// Convert changes the mode of a held lock, waiting if it must.
func (s *Server) Convert(ctx context.Context, req *pb.ConvertRequest) (*pb.LockResponse, error) {
	in, err := wire.ConvertFromWire(req)
	if err != nil {
		return nil, invalid(wireRefusal(err))
	}
	return s.grant(ctx, in, req.Async)
}

// grant runs an acquire or conversion: synchronously (wait for the
// outcome) or, if async, answering queued at once when it must wait.
func (s *Server) grant(ctx context.Context, in spec.Input, async bool) (*pb.LockResponse, error) {
	if !in.NoQueue && in.WaitTimeout == 0 {
		in.WaitTimeout = s.waitTimeout(ctx)
		if async { // the caller's deadline bounds the call, not the wait
			in.WaitTimeout = s.opts.Limits.WaitTimeoutMax
		}
	}
	var r spec.Result
	var err error
	if async {
		r, err = s.submit(ctx, in)
	} else {
		r, err = s.await(ctx, in)
	}
	if err != nil {
		return nil, err
	}
	if err := wire.StatusError(r); err != nil {
		return nil, err
	}
	return wire.GrantToWire(r), nil
}

// Release gives a lock up.
func (s *Server) Release(ctx context.Context, req *pb.ReleaseRequest) (*pb.ReleaseResponse, error) {
	in, err := wire.ReleaseFromWire(req)
	return &pb.ReleaseResponse{}, s.apply(ctx, in, err)
}

// Cancel cancels a queued request.
func (s *Server) Cancel(ctx context.Context, req *pb.CancelRequest) (*pb.CancelResponse, error) {
	in, err := wire.CancelFromWire(req)
	return &pb.CancelResponse{}, s.apply(ctx, in, err)
}

// apply runs an input that has no answer but its code; err says why the
// request could not be read, if it could not.
func (s *Server) apply(ctx context.Context, in spec.Input, err error) error {
	if err != nil {
		return invalid(wireRefusal(err))
	}
	r, err := s.submit(ctx, in)
	if err != nil {
		return err
	}
	return wire.StatusError(r)
}
