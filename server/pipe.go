package server

import (
	"sync"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
)

// pipeInFlightMax bounds the requests of one Pipe stream waiting for the
// loop; past it the stream is read no further until answers go out, which
// pushes back on the client through gRPC's flow control.
const pipeInFlightMax = 1024

// Pipe serves mutating requests of any sessions pipelined on one stream.
// Each request is translated and validated as its unary call is, handed to
// the loop, and answered when its turn is durable; answers go out in the
// order they are ready.
func (s *Server) Pipe(stream pb.Locks_PipeServer) error {
	ctx := stream.Context()
	var mu sync.Mutex // stream.Send is not safe for concurrent use
	failed := false
	send := func(r *pb.PipeReply) {
		mu.Lock()
		defer mu.Unlock()
		if !failed && stream.Send(r) != nil {
			failed = true // the stream is broken; Recv will say so too
		}
	}
	slots := make(chan struct{}, pipeInFlightMax)
	var wg sync.WaitGroup
	defer wg.Wait() // no Send after the handler returns
	reqs := received(ctx, stream.Recv)
	for {
		var req *pb.PipeRequest
		select {
		case r, ok := <-reqs:
			if !ok {
				return nil // the client closed the stream, or it broke
			}
			req = r
		case <-s.draining:
			return errStopped // after the answers in flight (wg)
		}
		in, bad := pipeInput(req, &s.opts.Limits)
		if bad != nil {
			send(wire.PipeReplyToWire(req.Call, in.Op, *bad))
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		wg.Add(1)
		go func(call uint64) {
			defer func() { <-slots; wg.Done() }()
			r, err := s.loop.Submit(ctx, in)
			if err != nil {
				return // the stream ended; the client resends the request id
			}
			send(wire.PipeReplyToWire(call, in.Op, r))
		}(req.Call)
	}
}

// pipeInput translates one pipelined request; acquire and convert are
// always async, so their default wait is the node's longest.
func pipeInput(req *pb.PipeRequest, lim *spec.Limits) (spec.Input, *spec.Result) {
	if undecodable(req) {
		return spec.Input{}, errUndecodable
	}
	in, err := wire.PipeRequestFromWire(req)
	if err != nil {
		return in, wireRefusal(err)
	}
	if (in.Op == spec.OpAcquire || in.Op == spec.OpConvert) && !in.NoQueue && in.WaitTimeout == 0 {
		in.WaitTimeout = lim.WaitTimeoutMax
	}
	// Refuse here what the core would refuse on sight (an oversized name,
	// say), so that junk costs the loop nothing: the answer is the same.
	if r, ok := spec.Validate(&in, lim); !ok {
		return in, &r
	}
	return in, nil
}
