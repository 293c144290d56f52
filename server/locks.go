package server

import (
	"context"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
	"google.golang.org/protobuf/types/known/durationpb"
)

// OpenSession opens a session with an id the node issues: 128 bits from
// crypto/rand. A client-chosen id is refused, since the node cannot tell a
// random one from a guessable one (such as "0123456789abcdef"); so is a
// reopen, which could otherwise be answered with a TTL the session does not
// have. An open whose answer is lost leaves a session that expires after its
// TTL, like a client that died.
func (s *Server) OpenSession(ctx context.Context, req *pb.OpenSessionRequest) (*pb.OpenSessionResponse, error) {
	if len(req.SessionId) > 0 {
		return nil, invalid(badField("session_id: the node issues session ids; open without one"))
	}
	id := newSessionID()
	ttl, bad := duration("ttl", req.Ttl)
	if bad != nil {
		return nil, invalid(bad)
	}
	if ttl == 0 {
		ttl = s.opts.DefaultTTL
	}
	client := s.clientOf(ctx)
	if bad := s.quotas.take(client, quotaSessions); bad != nil {
		s.refused(reasonSessions, client)
		return nil, invalid(bad)
	}
	r, err := s.submit(ctx, spec.Input{Op: spec.OpOpen, Session: id, TTL: ttl})
	if err == nil {
		err = resultError(r)
	}
	if err != nil {
		// The open may still take effect (a cancelled call): the session
		// then counts for no one and expires after its TTL.
		s.quotas.give(client, quotaSessions)
		return nil, err
	}
	s.quotas.opened(client, id)
	return &pb.OpenSessionResponse{SessionId: id[:], Ttl: durationpb.New(ttl)}, nil
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
		resp := &pb.KeepAliveResponse{SessionId: req.SessionId}
		id, bad := sessionID(req.SessionId)
		if undecodable(req) {
			bad = errUndecodable
		}
		r := spec.Result{}
		if bad != nil {
			r = *bad
		} else {
			var err error
			if r, err = s.submit(stream.Context(), spec.Input{Op: spec.OpKeepAlive, Session: id}); err != nil {
				return err
			}
		}
		resp.Code, resp.Detail = pb.Code(r.Code), r.Detail
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// CloseSession closes a session.
func (s *Server) CloseSession(ctx context.Context, req *pb.CloseSessionRequest) (*pb.CloseSessionResponse, error) {
	id, bad := sessionID(req.SessionId)
	if bad != nil {
		return nil, invalid(bad)
	}
	r, err := s.submit(ctx, spec.Input{Op: spec.OpClose, Session: id})
	if err != nil {
		return nil, err
	}
	if r.Code == spec.OK {
		s.quotas.ended(id)
	}
	return &pb.CloseSessionResponse{}, resultError(r)
}

// request translates the fields every mutating request has.
func request(session []byte, reqID, acked uint64, resource []byte, op spec.Op) (spec.Input, *spec.Result) {
	id, bad := sessionID(session)
	if bad != nil {
		return spec.Input{}, bad
	}
	return spec.Input{Op: op, Session: id, Request: spec.RequestID(reqID), Acked: spec.RequestID(acked),
		Resource: string(resource)}, nil
}

// waitTimeout is how long a request that did not say may queue: until
// just before the call's deadline, else the longest the node allows.
func (s *Server) waitTimeout(ctx context.Context) time.Duration {
	lim := s.opts.Limits
	deadline, ok := ctx.Deadline()
	if !ok {
		return lim.WaitTimeoutMax
	}
	// Leave the answer time to travel before the caller gives up.
	left := time.Until(deadline)
	left -= min(left/10, 100*time.Millisecond)
	return min(max(left, lim.WaitTimeoutMin), lim.WaitTimeoutMax)
}

// acquireInput translates an AcquireRequest; a zero WaitTimeout is filled
// in by the handler from the call's deadline.
func acquireInput(req *pb.AcquireRequest) (spec.Input, *spec.Result) {
	in, bad := request(req.SessionId, req.RequestId, req.Acked, req.Resource, spec.OpAcquire)
	if bad == nil {
		in.Mode, bad = mode(req.Mode)
	}
	if bad == nil {
		in.LockDelay, bad = duration("lock_delay", req.LockDelay)
	}
	if bad == nil {
		in.WaitTimeout, bad = duration("wait_timeout", req.WaitTimeout)
	}
	in.NoQueue = req.NoQueue
	return in, bad
}

// convertInput translates a ConvertRequest, like acquireInput.
func convertInput(req *pb.ConvertRequest) (spec.Input, *spec.Result) {
	in, bad := request(req.SessionId, req.RequestId, req.Acked, req.Resource, spec.OpConvert)
	if bad == nil {
		in.Mode, bad = mode(req.Mode)
	}
	if bad == nil {
		in.WaitTimeout, bad = duration("wait_timeout", req.WaitTimeout)
	}
	in.NoQueue, in.WriteValue, in.Value = req.NoQueue, req.WriteValue, req.Value
	return in, bad
}

// Acquire requests a lock and waits for the outcome.
func (s *Server) Acquire(ctx context.Context, req *pb.AcquireRequest) (*pb.LockResponse, error) {
	in, bad := acquireInput(req)
	if bad != nil {
		return nil, invalid(bad)
	}
	return s.grant(ctx, in, req.Async)
}

// Convert changes the mode of a held lock, waiting if it must.
func (s *Server) Convert(ctx context.Context, req *pb.ConvertRequest) (*pb.LockResponse, error) {
	in, bad := convertInput(req)
	if bad != nil {
		return nil, invalid(bad)
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
	if r.Pending {
		return &pb.LockResponse{Queued: true}, nil
	}
	if err := resultError(r); err != nil {
		return nil, err
	}
	return grantToWire(r), nil
}

func releaseInput(req *pb.ReleaseRequest) (spec.Input, *spec.Result) {
	in, bad := request(req.SessionId, req.RequestId, req.Acked, req.Resource, spec.OpRelease)
	in.WriteValue, in.Value = req.WriteValue, req.Value
	return in, bad
}

// Release gives a lock up.
func (s *Server) Release(ctx context.Context, req *pb.ReleaseRequest) (*pb.ReleaseResponse, error) {
	in, bad := releaseInput(req)
	if bad != nil {
		return nil, invalid(bad)
	}
	r, err := s.submit(ctx, in)
	if err != nil {
		return nil, err
	}
	return &pb.ReleaseResponse{}, resultError(r)
}

func cancelInput(req *pb.CancelRequest) (spec.Input, *spec.Result) {
	return request(req.SessionId, req.RequestId, req.Acked, req.Resource, spec.OpCancel)
}

// Cancel cancels a queued request.
func (s *Server) Cancel(ctx context.Context, req *pb.CancelRequest) (*pb.CancelResponse, error) {
	in, bad := cancelInput(req)
	if bad != nil {
		return nil, invalid(bad)
	}
	r, err := s.submit(ctx, in)
	if err != nil {
		return nil, err
	}
	return &pb.CancelResponse{}, resultError(r)
}
