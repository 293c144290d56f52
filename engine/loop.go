package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// Clock is where the loop gets the time; the loop is the only part of the
// engine that has one. Production uses the wall clock; tests drive a fake.
type Clock interface {
	Now() spec.Time
	// After returns a channel that receives once d has passed, and a
	// function that stops it.
	After(d time.Duration) (<-chan time.Time, func() bool)
}

// WallClock is the real clock: Unix nanoseconds.
type WallClock struct{}

// Now returns the wall-clock time.
func (WallClock) Now() spec.Time { return spec.Time(time.Now().UnixNano()) }

// After starts a real timer.
func (WallClock) After(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// TurnStats describe one turn of the loop, for metrics.
type TurnStats struct {
	Inputs   int           // inputs stepped (0: a turn for time alone)
	Writes   int           // records written (0: no fsync)
	Duration time.Duration // by the loop's clock, stepping through commit
}

// LoopOptions configure a Loop. Zero values take the defaults.
type LoopOptions struct {
	Clock Clock // default WallClock
	// OnEvents receives each turn's events once the turn is durable, on the
	// loop goroutine: it must not block. The slice is reused after it returns.
	OnEvents func([]spec.Event)
	// OnTurn is called after each turn, on the loop goroutine, with read
	// access to the core (for watchers and gauges) and the turn's stats. It
	// must not block or step the core.
	OnTurn func(*Core, TurnStats)
	// QueueMax bounds the inputs waiting for a turn; Submit blocks (or its
	// context ends) beyond it. Default: four turns' worth.
	QueueMax int
}

// Loop drives a Node from one goroutine: it takes every input waiting (up to
// InputsPerBatchMax), steps them, commits once with fsync, then answers them
// all and delivers the events (group commit); and it wakes at the core's
// next deadline. After a failed write it stops: every call in flight or
// later gets Unavailable, and nothing unpersisted is ever answered.
type Loop struct {
	node     *Node
	clock    Clock
	batchMax int
	opts     LoopOptions

	calls   chan *call
	inspect chan func(*Core)
	quit    chan struct{}
	done    chan struct{}
	err     error // why the loop stopped; read after done is closed
}

type call struct {
	in    spec.Input
	reply chan spec.Result // buffered: the loop never blocks on it
}

// ErrLoopStopped is the error of calls made after Stop.
var ErrLoopStopped = errors.New("engine: loop stopped")

// StartLoop starts the loop goroutine over node.
func StartLoop(node *Node, opts LoopOptions) *Loop {
	batchMax := node.core.lim.InputsPerBatchMax
	if opts.Clock == nil {
		opts.Clock = WallClock{}
	}
	if opts.QueueMax <= 0 {
		opts.QueueMax = 4 * batchMax
	}
	l := &Loop{node: node, clock: opts.Clock, batchMax: batchMax, opts: opts,
		calls: make(chan *call, opts.QueueMax), inspect: make(chan func(*Core)),
		quit: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l
}

// Submit hands in to the loop and waits for its reply, which comes only
// once the turn that stepped it is durable. If the node stopped, the reply
// is Unavailable. If ctx ends first, Submit returns ctx's error; the input
// may still take effect (a retry with the same request id is safe).
func (l *Loop) Submit(ctx context.Context, in spec.Input) (spec.Result, error) {
	c := &call{in: in, reply: make(chan spec.Result, 1)}
	select {
	case l.calls <- c:
	case <-l.done:
		return l.unavailable(), nil
	case <-ctx.Done():
		return spec.Result{}, ctx.Err()
	}
	select {
	case r := <-c.reply:
		return r, nil
	case <-l.done:
		select {
		case r := <-c.reply: // answered just before the loop ended
			return r, nil
		default:
			return l.unavailable(), nil
		}
	case <-ctx.Done():
		return spec.Result{}, ctx.Err()
	}
}

// Inspect runs f on the loop goroutine between turns, with read access to
// the core (describe, list, metrics). f must not step the core.
func (l *Loop) Inspect(ctx context.Context, f func(*Core)) error {
	ran := make(chan struct{})
	g := func(c *Core) { f(c); close(ran) }
	select {
	case l.inspect <- g:
	case <-l.done:
		return l.stopErr()
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ran:
		return nil
	case <-l.done:
		return l.stopErr()
	}
}

// Stop finishes the turn in flight, stops the loop and closes the node. It
// returns why the loop had stopped, if it failed before.
func (l *Loop) Stop() error {
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	<-l.done
	if errors.Is(l.err, ErrLoopStopped) {
		return nil
	}
	return l.err
}

// Done is closed when the loop has stopped, after Stop or a failed write.
func (l *Loop) Done() <-chan struct{} { return l.done }

// Err says why the loop stopped (nil while it runs, ErrLoopStopped after Stop).
func (l *Loop) Err() error {
	select {
	case <-l.done:
		return l.err
	default:
		return nil
	}
}

func (l *Loop) stopErr() error {
	if l.err == nil {
		return ErrLoopStopped
	}
	return l.err
}

func (l *Loop) unavailable() spec.Result {
	return spec.Refuse(spec.Unavailable, fmt.Sprintf("node: %v", l.stopErr()))
}

func (l *Loop) run() {
	batch := make([]*call, 0, l.batchMax)
	inputs := make([]spec.Input, 0, l.batchMax)
	defer func() {
		if err := l.node.Close(); err != nil && l.err == nil {
			l.err = err
		}
		if l.err == nil {
			l.err = ErrLoopStopped
		}
		close(l.done)
	}()
	// The first turn fires the timers that came due while the node was down.
	if !l.turn(nil, inputs) {
		return
	}
	for {
		wake, stopTimer := l.timer()
		batch = batch[:0]
		select {
		case c := <-l.calls:
			batch = l.drain(append(batch, c))
		case f := <-l.inspect:
			f(l.node.core)
		case <-wake:
		case <-l.quit:
			stopTimer()
			return
		}
		stopTimer()
		inputs = inputs[:0]
		for _, c := range batch {
			inputs = append(inputs, c.in)
		}
		if !l.turn(batch, inputs) {
			l.failQueued()
			return
		}
	}
}

// timer arms a wake-up for the core's next deadline.
func (l *Loop) timer() (<-chan time.Time, func() bool) {
	at, ok := l.node.NextDeadline()
	if !ok {
		return nil, func() bool { return false }
	}
	return l.clock.After(max(at.Sub(l.clock.Now()), 0))
}

// drain adds the calls already waiting, up to a batch.
func (l *Loop) drain(batch []*call) []*call {
	for len(batch) < l.batchMax {
		select {
		case c := <-l.calls:
			batch = append(batch, c)
		default:
			return batch
		}
	}
	return batch
}

// turn steps the inputs, commits, then answers and delivers. It reports
// false if the node failed: the batch gets Unavailable.
func (l *Loop) turn(batch []*call, inputs []spec.Input) bool {
	start := l.clock.Now()
	res, err := l.node.Turn(start, inputs)
	if err != nil {
		l.err = err
		for _, c := range batch {
			c.reply <- l.unavailable()
		}
		return false
	}
	for i, c := range batch {
		c.reply <- res.Replies[i]
	}
	if l.opts.OnEvents != nil && len(res.Events) > 0 {
		l.opts.OnEvents(res.Events)
	}
	if l.opts.OnTurn != nil {
		l.opts.OnTurn(l.node.core, TurnStats{Inputs: len(inputs), Writes: res.Writes, Duration: l.clock.Now().Sub(start)})
	}
	return true
}

// failQueued answers every call still queued after a failure.
func (l *Loop) failQueued() {
	for {
		select {
		case c := <-l.calls:
			c.reply <- l.unavailable()
		default:
			return
		}
	}
}
