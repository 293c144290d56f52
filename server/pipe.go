package server

import (
	"context"
	"errors"
	"sync"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/cluster"
	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
)

// errBusy answers a pipelined request the loop's queue had no room for:
// Unavailable, since nothing was done, and the client resends it.
var errBusy = spec.Refuse(spec.Unavailable, "node busy: its queue is full; resend")

// errStopping answers a pipelined request read after the node began to
// drain: nothing was done, and the client resends it elsewhere or later.
var errStopping = spec.Refuse(spec.Unavailable, "node stopping; resend")

// Pipe serves mutating requests of any sessions pipelined on one stream.
// A reader goroutine receives each request, translates and validates it as
// its unary call is, and hands it to the loop without waiting
// (Loop.Enqueue); one writer goroutine sends the answers in the order they
// come, each once its turn is durable. No goroutine waits per request, and
// none stands between the stream and the loop. A request that queues is
// answered queued; its outcome comes later as an event.
func (s *Server) Pipe(stream pb.Locks_PipeServer) error {
	ctx := stream.Context()
	p := &pipeCalls{replies: replyQueue{ready: make(chan struct{}, 1)}, slots: make(chan struct{}, s.opts.PipeInFlightMax),
		calls: map[uint64]pipeCall{}, read: make(chan struct{})}
	written := make(chan struct{})
	go func() {
		defer close(written)
		s.pipeWriter(ctx, stream, p)
	}()
	// The reader may stay in Recv after the handler returns on a drain;
	// the stream's end makes Recv fail then.
	readerDone := make(chan error, 1)
	go func() { readerDone <- s.pipeReader(ctx, stream, p) }()
	var err error
	select {
	case err = <-readerDone:
	case <-s.draining:
		p.mu.Lock()
		p.stopped = true // what the reader reads from now on is answered errStopping
		p.mu.Unlock()
		err = errStopped // after the answers in flight (pipeWriter)
	}
	close(p.read)
	<-written // no Send after the handler returns
	return err
}

// pipeCalls are a Pipe stream's requests waiting for their answers, by
// the tag the stream gave each.
type pipeCalls struct {
	replies replyQueue    // answers, from the loop or the reader
	slots   chan struct{} // one per request waiting for its answer
	read    chan struct{} // closed when the handler takes no more requests

	mu      sync.Mutex
	calls   map[uint64]pipeCall
	stopped bool // the node drains: the reader takes nothing more
}

// replyQueue holds a stream's answers until its writer takes them: as
// many as are waiting, so that an idle stream holds no buffer.
type replyQueue struct {
	mu    sync.Mutex
	q     []engine.Reply
	ready chan struct{} // one token: something was put since the last take
}

// Put queues r; it never blocks (the loop calls it).
func (rq *replyQueue) Put(r engine.Reply) {
	rq.mu.Lock()
	rq.q = append(rq.q, r)
	rq.mu.Unlock()
	select {
	case rq.ready <- struct{}{}:
	default:
	}
}

// take returns the queued answers in order; spare (the previous batch,
// sent) becomes the queue's buffer.
func (rq *replyQueue) take(spare []engine.Reply) []engine.Reply {
	rq.mu.Lock()
	defer rq.mu.Unlock()
	out := rq.q
	rq.q = spare[:0]
	return out
}

type pipeCall struct {
	call   uint64 // the client's number
	op     spec.Op
	denied string // why the access rules refused it ("": they did not)
}

// pipeReader reads requests and hands them to the loop, or answers them at
// once (a bad request, a full queue), until the stream ends or the node
// drains.
func (s *Server) pipeReader(ctx context.Context, stream pb.Locks_PipeServer, p *pipeCalls) error {
	for tag := uint64(1); ; tag++ {
		req, err := stream.Recv()
		if err != nil {
			return nil // the client closed the stream, or it broke
		}
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		in, bad := pipeInput(req, &s.opts.Limits)
		denied := ""
		if !undecodable(req) {
			denied = s.pipeDenied(ctx, req) // the engine never sees a denied request
		}
		p.mu.Lock()
		p.calls[tag] = pipeCall{req.Call, in.Op, denied}
		stopped := p.stopped
		p.mu.Unlock()
		if stopped {
			p.replies.Put(engine.Reply{Tag: tag, Result: errStopping})
			return nil
		}
		if denied != "" {
			p.replies.Put(engine.Reply{Tag: tag}) // pipeWriter answers it denied
			continue
		}
		if bad == nil {
			err := s.loop.Enqueue(in, tag, &p.replies)
			if err == nil {
				continue
			}
			var nl *cluster.NotLeader
			if errors.As(err, &nl) {
				return wire.NotLeaderError(nl.Addr) // after the answers in flight
			}
			if !errors.Is(err, engine.ErrQueueFull) {
				return errStopped
			}
			s.refused(reasonQueue, s.clientOf(ctx))
			bad = &errBusy
		}
		p.replies.Put(engine.Reply{Tag: tag, Result: *bad})
	}
}

// pipeWriter sends the answers in the order they come, until the reader is
// done and every request it read is answered, the stream ends, or the node
// stops.
func (s *Server) pipeWriter(ctx context.Context, stream pb.Locks_PipeServer, p *pipeCalls) {
	failed := false // the stream is broken; the reader will hear of it too
	var batch []engine.Reply
	sendQueued := func() {
		batch = p.replies.take(batch)
		for _, r := range batch {
			p.mu.Lock()
			c := p.calls[r.Tag]
			delete(p.calls, r.Tag)
			p.mu.Unlock()
			<-p.slots
			var reply *pb.PipeReply
			if c.denied != "" {
				reply = pipeDeniedReply(c.call, c.denied)
			} else {
				reply = wire.PipeReplyToWire(c.call, c.op, r.Result)
			}
			if !failed && stream.Send(reply) != nil {
				failed = true
			}
		}
		clear(batch) // no answer kept alive by the spare buffer
	}
	read := p.read
	for {
		if read == nil && len(p.slots) == 0 {
			return
		}
		select {
		case <-p.replies.ready:
			sendQueued()
		case <-read:
			read = nil
		case <-ctx.Done():
			return
		case <-s.loop.Done():
			sendQueued() // what the loop answered before it stopped
			return
		}
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
