package client

import (
	"context"
	"sync"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client/protocol"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"google.golang.org/grpc/connectivity"
)

// The networked session is the protocol core (package protocol) under a
// mutex: whoever has an input for it (the application's call, an RPC's
// answer, an event, a change of the connection, the timer of its next
// deadline) takes the mutex, steps the core, and before letting go hands
// its Sends to the transport and its Updates to whoever waits for them. No
// goroutine stands between an input and the core, and nothing done under
// the mutex blocks: a send is queued, an update goes to a buffered channel.
// All the protocol logic (request ids, retries, polls, acknowledgements,
// the lease) is the core's, the very code the simulator runs.

// step runs f with the core, then hands out what the core has to send and
// to tell; it fails once the session has stopped. The core's own
// goroutines (answers, events, the timer) step it so; an application's
// call steps it with call, which may also write the request itself.
func (s *Session) step(f func(now spec.Time)) error {
	err := s.stepCore(f)
	s.c.pipe.kick(false)
	return err
}

// call is step on an application's goroutine: it writes the requests the
// core sends, unless another goroutine is writing (see pipe.kick).
func (s *Session) call(f func(now spec.Time)) error {
	err := s.stepCore(f)
	s.c.pipe.kick(true)
	return err
}

func (s *Session) stepCore(f func(now spec.Time)) error {
	s.core.Lock()
	defer s.core.Unlock()
	if s.halted {
		if err := s.Err(); err != nil {
			return err
		}
		return ErrLeaseLost
	}
	now := s.now()
	f(now)
	s.flush(now)
	if s.finished() {
		s.halt()
		return nil
	}
	if at, ok := s.proto.NextDeadline(); ok {
		s.timer.Reset(max(at.Sub(now), 0))
	} else {
		s.timer.Stop()
	}
	return nil
}

// tick is the timer's input: the core's next deadline has come.
func (s *Session) tick() { _ = s.step(func(now spec.Time) { s.proto.Tick(now) }) }

// halt stops the session's core for good (the mutex held): no input
// reaches it any more, and whoever still waits hears an unknown outcome.
func (s *Session) halt() {
	for id, w := range s.waiters {
		w <- protocol.Update{Kind: protocol.Done, Request: id, Unknown: true}
	}
	clear(s.waiters)
	s.halted = true
	s.timer.Stop()
}

// finished reports whether the core may stop: the session is lost or
// closed, and nobody waits for anything.
func (s *Session) finished() bool {
	select {
	case <-s.done:
		return len(s.waiters) == 0
	default:
		return false
	}
}

// flush hands the core's sends to the transport and its updates to their
// waiters.
func (s *Session) flush(now spec.Time) {
	for _, snd := range s.proto.Sends(now) {
		s.dispatch(snd)
	}
	for _, u := range s.proto.Updates() {
		s.deliver(u)
	}
}

func (s *Session) deliver(u protocol.Update) {
	switch u.Kind {
	case protocol.Opened:
		s.openedOnce.Do(func() { close(s.opened) })
	case protocol.Done:
		if w, ok := s.waiters[u.Request]; ok {
			w <- u
			delete(s.waiters, u.Request)
		}
	case protocol.Blocking:
		select {
		case s.blocking <- Notification{Resource: u.Resource, Mode: u.Mode}:
		default: // a full channel drops the hint
		}
	case protocol.SessionLost:
		err := ErrLeaseLost
		if u.ByNode {
			err = &spec.Error{Code: u.Result.Code, Detail: u.Result.Detail}
		}
		s.end(err)
	case protocol.SessionClosed:
		s.end(nil)
	}
}

// dispatch sends one input to the node; its answer comes back to the
// core. A call that fails on the way gets no answer: the core sends it
// again. Nothing here blocks, so that the core stays free to declare the
// lease lost on time however the transport hangs.
func (s *Session) dispatch(snd protocol.Send) {
	in := snd.Input
	if in.Op == spec.OpAcquire || in.Op == spec.OpConvert || in.Op == spec.OpRelease || in.Op == spec.OpCancel {
		s.c.pipe.send(s, snd.Call, in) // queues
		return
	}
	s.inflight.Add(1)
	s.c.workers.run(func() {
		defer s.inflight.Done()
		if in.Op == spec.OpKeepAlive {
			s.ka.send(snd.Call) // may wait for a stream to open
			return
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.callTimeout)
		defer cancel()
		res, ok := s.c.call(ctx, in)
		if !ok {
			return
		}
		s.answer(snd.Call, res)
	})
}

// workers run a client's RPCs. A call is handed to an idle worker if there
// is one, else to a new one; a worker idle for workerIdle exits. Reusing
// goroutines saves growing a fresh stack to gRPC's depth on every call.
type workers struct {
	jobs chan func()
	quit chan struct{}
	once sync.Once
}

const workerIdle = 10 * time.Second

func newWorkers() *workers { return &workers{jobs: make(chan func()), quit: make(chan struct{})} }

func (w *workers) run(f func()) {
	select {
	case w.jobs <- f:
	default:
		go w.work(f)
	}
}

func (w *workers) work(f func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(workerIdle)
		select {
		case f = <-w.jobs:
		case <-idle.C:
			return
		case <-w.quit:
			return
		}
	}
}

// stop makes idle workers exit (busy ones exit after their call).
func (w *workers) stop() { w.once.Do(func() { close(w.quit) }) }

// call makes the RPC for in (a close; NewSession makes the open); ok is false if the call
// failed on the way (no answer from the node).
func (c *Client) call(ctx context.Context, in spec.Input) (spec.Result, bool) {
	var err error
	switch in.Op {
	case spec.OpClose:
		_, err = c.api.CloseSession(ctx, wire.CloseToWire(in))
	}
	if err != nil {
		return resultOf(err)
	}
	return spec.Result{}, true
}

// keepAlives carries a session's keepalives on one stream, answers matched
// to calls in order; a broken stream, or one on a member the client left,
// is replaced for the next keepalive.
type keepAlives struct {
	s   *Session
	mu  sync.Mutex
	cur *kaStream
}

type kaStream struct {
	stream  pb.Locks_KeepAliveClient
	on      *member           // the stay it was opened in (or a later one)
	pending []protocol.CallID // sent on it, in order, not yet answered
}

func (k *keepAlives) send(call protocol.CallID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	on := k.s.c.group.current()
	if k.cur != nil && k.cur.on != on {
		k.cur = nil // on a member the client left: it is ending anyway
	}
	if k.cur == nil {
		stream, err := k.s.c.api.KeepAlive(k.s.ctx)
		if err != nil {
			return // no answer: the core sends another keepalive
		}
		k.cur = &kaStream{stream: stream, on: on}
		go k.receive(k.cur)
	}
	if err := k.cur.stream.Send(wire.KeepAliveToWire(spec.Input{Op: spec.OpKeepAlive, Session: k.s.id})); err != nil {
		k.cur = nil
		return
	}
	k.cur.pending = append(k.cur.pending, call)
}

func (k *keepAlives) receive(st *kaStream) {
	for {
		resp, err := st.stream.Recv()
		k.mu.Lock()
		if err != nil || len(st.pending) == 0 {
			if k.cur == st {
				k.cur = nil
			}
			k.mu.Unlock()
			return
		}
		call := st.pending[0]
		st.pending = st.pending[1:]
		k.mu.Unlock()
		res, err := wire.KeepAliveResponseFromWire(resp)
		if err != nil {
			continue // an answer that does not read is none: the core sends another keepalive
		}
		if k.s.answer(call, res) != nil {
			return
		}
	}
}

// watchEvents keeps the session's Events stream open and gives its events
// to the core (the core polls what a broken stream loses).
func (s *Session) watchEvents() {
	defer s.inflight.Done()
	for s.ctx.Err() == nil {
		stream, err := s.c.api.Events(s.ctx, &pb.EventsRequest{SessionId: wire.SessionToWire(s.id)})
		for err == nil {
			var e *pb.Event
			if e, err = stream.Recv(); err != nil {
				break
			}
			s.subOnce.Do(func() { close(s.subscribed) }) // the first event is Subscribed
			ev, ok, bad := wire.EventFromWire(s.id, e)
			if bad != nil {
				// Never a guess: the core polls queued requests, so a lost
				// completion is learned all the same.
				s.c.cfg.Log.Warn("client: ignoring an event it cannot read", "err", bad)
			}
			if ok && s.step(func(now spec.Time) { s.proto.Event(now, ev) }) != nil {
				return
			}
		}
		select {
		case <-s.ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// watchConnection tells the core when the connection to the member goes
// up or down, and makes a move to another member a reconnect: down at
// once, up when the new member's connection is.
func (s *Session) watchConnection() {
	defer s.inflight.Done()
	for moved := false; s.watchMember(s.c.group.current(), moved); moved = true {
	}
}

// watchMember follows the connection of stay m until the client leaves it
// (true) or the session ends (false). A connection that is not up counts as
// a request unanswered, so that a member that cannot be reached is left
// after the silence bound as one that does not answer is.
func (s *Session) watchMember(m *member, moved bool) bool {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	defer context.AfterFunc(m.ctx, cancel)()
	goOn := func() bool { return s.ctx.Err() == nil }
	if moved {
		if !s.tell(false) {
			return false
		}
		if !m.wait(ctx) {
			return goOn()
		}
	}
	if m.conn == nil {
		s.c.group.sent(m)
		<-ctx.Done()
		return goOn()
	}
	state := m.conn.GetState()
	if moved {
		if state == connectivity.Ready {
			if !s.tell(true) {
				return false
			}
		} else {
			m.conn.Connect()
			s.c.group.sent(m)
		}
	}
	for {
		if !m.conn.WaitForStateChange(ctx, state) {
			return goOn()
		}
		state = m.conn.GetState()
		var up bool
		switch state {
		case connectivity.Ready:
			up = true
		case connectivity.TransientFailure, connectivity.Shutdown:
			s.c.group.sent(m)
		default:
			continue
		}
		if !s.tell(up) {
			return false
		}
	}
}

// tell gives the core a change of the connection; false if it stopped.
func (s *Session) tell(up bool) bool {
	return s.step(func(now spec.Time) {
		if up {
			s.proto.Connected(now)
		} else {
			s.proto.Disconnected(now)
		}
	}) == nil
}

// answer gives the core the node's answer to one of its sends; it fails
// once the session has stopped.
func (s *Session) answer(call protocol.CallID, res spec.Result) error {
	return s.step(func(now spec.Time) { s.proto.Reply(now, call, res) })
}
