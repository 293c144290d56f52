package client

import (
	"context"
	"sync"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client/protocol"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
)

// pipe carries the lock requests (acquire, convert, release, cancel) of
// all of a client's sessions on one Pipe stream, which costs far less per
// request than a unary call each. A request is queued as its session's
// core sends it; the application's goroutine that made it then writes the
// queue to the open stream itself, unless another goroutine is writing or
// no stream is open, and then a sender goroutine does (it also opens the
// stream). A receiver goroutine per stream gives each answer to its
// session's core. A broken stream loses only answers: its requests get
// none, and the core sends them again with the same request ids.
type pipe struct {
	c    *Client
	wake chan struct{} // the sender has something to do
	quit chan struct{}
	once sync.Once

	mu      sync.Mutex
	queue   []pipeItem
	writing bool        // a goroutine is writing a batch taken from queue
	cur     *pipeStream // nil: none open
	next    uint64      // the last call number used
}

type pipeItem struct {
	req *pb.PipeRequest
	to  pipeWaiter
}

// pipeWaiter is where the answer to a call goes.
type pipeWaiter struct {
	s    *Session
	call protocol.CallID
	op   spec.Op
}

type pipeStream struct {
	stream  pb.Locks_PipeClient
	on      *member // the stay it was opened in (or a later one)
	cancel  context.CancelFunc
	pending map[uint64]pipeWaiter // sent, not yet answered
}

func newPipe(c *Client) *pipe {
	return &pipe{c: c, wake: make(chan struct{}, 1), quit: make(chan struct{})}
}

// send queues in (a lock request) for s's call; it never blocks. The
// goroutine that stepped the core then calls kick.
func (p *pipe) send(s *Session, call protocol.CallID, in spec.Input) {
	p.mu.Lock()
	p.next++
	p.queue = append(p.queue, pipeItem{req: wire.PipeRequestToWire(p.next, in), to: pipeWaiter{s: s, call: call, op: in.Op}})
	start := p.next == 1
	p.mu.Unlock()
	if start {
		go p.sender()
	}
}

// kick gets what is queued written. With direct (the caller is an
// application's goroutine, which may wait for the stream's flow control
// as any call may) it writes the queue itself if a stream is open and no
// one else is writing; otherwise, and always for the core's own goroutines
// (answers, events, the timer), which must never wait, the sender does.
func (p *pipe) kick(direct bool) {
	var on *member
	if direct {
		on = p.c.group.current()
	}
	p.mu.Lock()
	if len(p.queue) == 0 {
		p.mu.Unlock()
		return
	}
	st := p.cur
	if !direct || p.writing || st == nil || st.on != on {
		p.mu.Unlock()
		p.wakeSender()
		return
	}
	batch := p.take(st)
	p.mu.Unlock()
	p.write(st, batch)
}

func (p *pipe) wakeSender() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// take takes the queue for writing to st (p.mu held), registering its calls
// as pending on st if st is still the open stream.
func (p *pipe) take(st *pipeStream) []pipeItem {
	p.writing = true
	batch := p.queue
	p.queue = nil
	if p.cur == st {
		for _, it := range batch {
			st.pending[it.req.Call] = it.to
		}
	}
	return batch
}

// write sends batch on st, then lets another writer in; what was queued
// meanwhile goes to the sender.
func (p *pipe) write(st *pipeStream, batch []pipeItem) {
	for _, it := range batch {
		if err := st.stream.Send(it.req); err != nil {
			p.broken(st)
			break
		}
	}
	p.mu.Lock()
	p.writing = false
	more := len(p.queue) > 0
	p.mu.Unlock()
	if more {
		p.wakeSender()
	}
}

// stop ends the sender and the open stream.
func (p *pipe) stop() {
	p.once.Do(func() { close(p.quit) })
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		p.cur.cancel()
		p.cur = nil
	}
}

// sender writes what callers leave queued, opening a stream when needed.
func (p *pipe) sender() {
	for {
		select {
		case <-p.wake:
		case <-p.quit:
			return
		}
		for {
			st := p.stream()
			if st == nil {
				// No stream: drop what is queued (the core resends it) and
				// wait for the next request, or the connection, to try again.
				p.mu.Lock()
				p.queue = nil
				p.mu.Unlock()
				select {
				case <-time.After(50 * time.Millisecond):
				case <-p.quit:
					return
				}
				break
			}
			p.mu.Lock()
			if p.writing || len(p.queue) == 0 {
				p.mu.Unlock()
				break // the writer wakes the sender if it leaves anything
			}
			batch := p.take(st)
			p.mu.Unlock()
			p.write(st, batch)
		}
	}
}

// stream returns the open stream, opening one if there is none.
func (p *pipe) stream() *pipeStream {
	on := p.c.group.current()
	p.mu.Lock()
	st := p.cur
	p.mu.Unlock()
	if st != nil && st.on == on {
		return st
	}
	if st != nil {
		p.broken(st) // on a member the client left: it is ending anyway
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := p.c.api.Pipe(ctx)
	if err != nil {
		cancel()
		return nil
	}
	st = &pipeStream{stream: stream, on: on, cancel: cancel, pending: map[uint64]pipeWaiter{}}
	p.mu.Lock()
	select {
	case <-p.quit:
		p.mu.Unlock()
		cancel()
		return nil
	default:
	}
	p.cur = st
	p.mu.Unlock()
	go p.receive(st)
	return st
}

// broken forgets st: its unanswered calls get no answer.
func (p *pipe) broken(st *pipeStream) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == st {
		p.cur = nil
	}
	st.pending = map[uint64]pipeWaiter{}
	st.cancel()
}

// receive hands st's answers to their sessions until st breaks.
func (p *pipe) receive(st *pipeStream) {
	for {
		reply, err := st.stream.Recv()
		if err != nil {
			p.broken(st)
			return
		}
		p.mu.Lock()
		to, ok := st.pending[reply.Call]
		delete(st.pending, reply.Call)
		p.mu.Unlock()
		if !ok {
			continue
		}
		res, ok := pipeResult(reply)
		if !ok {
			continue // the node could not persist it: no answer, resend
		}
		_ = to.s.answer(to.call, res) // a session that stopped needs none
	}
}

// pipeResult is the node's answer in reply; ok is false if the node could
// not apply the request (Unavailable), which is no answer, or if the reply
// does not read (a code or mode this side does not know): the core then
// sends the request again, as after a lost answer.
func pipeResult(reply *pb.PipeReply) (spec.Result, bool) {
	r, err := wire.PipeReplyFromWire(reply)
	return r, err == nil && r.Code != spec.Unavailable
}
