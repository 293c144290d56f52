package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// TurnStats describe one turn of the loop, for metrics.
type TurnStats struct {
	Inputs   int           // inputs stepped (0: a turn for time alone)
	Writes   int           // records written (0: no fsync)
	Duration time.Duration // by the loop's clock, stepping through commit
}

// LoopOptions configure a Loop. Zero values take the defaults.
type LoopOptions struct {
	Clock Clock // default: a MonotonicClock from the core's recovered clock
	// OnEvents receives each turn's events once the turn is durable, on the
	// loop goroutine: it must not block. The slice is reused after it returns.
	OnEvents func([]spec.Event)
	// OnTurn is called after each turn is durable, on the loop goroutine,
	// with the turn's stats and, if no later turn is in flight (so that the
	// core's state is all durable), read access to the core, for watchers
	// and gauges; else with nil. It must not block or step the core.
	OnTurn func(*Core, TurnStats)
	// QueueMax bounds the inputs waiting for a turn; Submit blocks (or its
	// context ends) beyond it, Enqueue fails with ErrQueueFull. Default:
	// four turns' worth.
	QueueMax int
	// Pipeline is how many turns may be in flight: stepped and in the log,
	// waiting for their fsync. Default 4; 1 waits for each turn's fsync
	// before stepping the next.
	Pipeline int

	// ProbeInterval is how often a node whose disk is full tries a synced
	// probe write to see if space came back. Default 1s.
	ProbeInterval time.Duration
	// OnDisk is told, on the loop goroutine, when the disk is found full
	// (the error) and when it takes writes again (nil). It must not block.
	OnDisk func(full error)

	// DurableEvery bounds the turns between two moments when no turn is in
	// flight: past it the loop takes no new input until the pipeline
	// drains, so that OnTurn and Inspect get to read an all-durable core.
	// Default 32.
	DurableEvery int

	earlyReplies bool // tests only: answer at Begin, before the sync (a planted bug)
}

// Loop drives a Node from one goroutine: it takes every input waiting (up to
// InputsPerBatchMax), steps them, commits once with fsync, then answers them
// all and delivers the events (group commit); and it wakes at the core's
// next deadline. After a failed write it stops: every submission in flight or
// later gets Unavailable, and nothing unpersisted is ever answered.
type Loop struct {
	node     *Node
	clock    Clock
	batchMax int
	opts     LoopOptions

	*Mailbox // Submit, Enqueue, Stop, Done, Err; the inputs waiting
	inspect  chan func(*Core)

	// The pipeline, owned by the loop goroutine: turns begun and not yet
	// delivered, oldest first. The syncer goroutine waits for each in
	// order and hands it back on durable.
	inflight []*turn
	free     []*turn
	toSync   chan *turn
	durable  chan *turn
	since    int // turns delivered since the pipeline was last empty
	inputs   []spec.Input
}

// turn is one turn of the loop in the pipeline.
type turn struct {
	Turn
	subs  []*Submission
	start spec.Time
	err   error // from Wait
}

// StartLoop starts the loop goroutine over node.
func StartLoop(node *Node, opts LoopOptions) *Loop {
	batchMax := node.core.lim.InputsPerBatchMax
	if opts.Clock == nil {
		opts.Clock = NewMonotonicClock(node.core.now)
	}
	if opts.QueueMax <= 0 {
		opts.QueueMax = 4 * batchMax
	}
	if opts.Pipeline <= 0 {
		opts.Pipeline = 4
	}
	if opts.DurableEvery <= 0 {
		opts.DurableEvery = 32
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = time.Second
	}
	l := &Loop{node: node, clock: opts.Clock, batchMax: batchMax, opts: opts,
		Mailbox: NewMailbox(opts.QueueMax, "node"), inspect: make(chan func(*Core)),
		toSync: make(chan *turn, opts.Pipeline), durable: make(chan *turn, opts.Pipeline)}
	go l.run()
	return l
}

// Inspect runs f on the loop goroutine between turns, with read access to
// the core (describe, list, metrics). f must not step the core.
func (l *Loop) Inspect(ctx context.Context, f func(*Core)) error {
	return Call(ctx, l.Mailbox, l.inspect, f)
}

func (l *Loop) run() {
	go l.syncer()
	defer func() {
		close(l.toSync)
		if l.err == nil {
			if err := l.node.Close(); err != nil {
				l.Fail(err)
			}
		}
		// After a failure the store is left as a crash would leave it
		// (Store.Close), and a sync may never return: the syncer is not
		// waited for.
		l.Finish()
	}()
	// A node restarted on a full disk must not take a turn it cannot persist.
	_ = l.node.store.Probe()
	if l.node.store.Full() != nil && !l.degraded() {
		return
	}
	// The first turn fires the timers that came due while the node was down.
	if !l.begin(l.newTurn()) {
		return
	}
	var held func(*Core) // an Inspect waiting for the pipeline to drain
	for {
		if len(l.inflight) == 0 && held == nil && l.node.store.Full() != nil && !l.degraded() {
			return
		}
		accept := len(l.inflight) < l.opts.Pipeline && held == nil && l.since < l.opts.DurableEvery
		var subs <-chan *Submission
		var wake <-chan time.Time
		stopTimer := func() bool { return false }
		if accept {
			subs = l.Inputs()
			wake, stopTimer = l.timer()
		}
		var durable <-chan *turn
		if len(l.inflight) > 0 {
			durable = l.durable
		}
		var inspect <-chan func(*Core)
		if held == nil {
			inspect = l.inspect
		}
		ok := true
		select {
		case c := <-subs:
			t := l.newTurn()
			t.subs = l.Drain(append(t.subs, c), l.batchMax)
			ok = l.begin(t)
		case <-wake:
			ok = l.begin(l.newTurn())
		case f := <-inspect:
			held = f
		case t := <-durable:
			ok = l.deliver(t)
		case <-l.Quit():
			stopTimer()
			l.finishInflight()
			return
		}
		stopTimer()
		if !ok {
			l.FailQueued()
			return
		}
		if held != nil && len(l.inflight) == 0 {
			held(l.node.core)
			held = nil
		}
	}
}

// degraded serves while the disk is full, with no turn in flight: every
// input is refused with Unavailable (nothing is stepped, so nothing is
// lost or acknowledged), Inspect still reads the core, and a probe write
// every ProbeInterval looks for space. It returns true once the disk takes
// writes again, false on Stop.
func (l *Loop) degraded() bool {
	full := l.node.store.Full()
	if l.opts.OnDisk != nil {
		l.opts.OnDisk(full)
	}
	refusal := spec.Refuse(spec.Unavailable, fmt.Sprintf("node: the disk is full, writes are refused until space returns: %v", full))
	wake, stop := l.clock.After(l.opts.ProbeInterval)
	defer func() { stop() }()
	for {
		select {
		case c := <-l.Inputs():
			c.Answer(refusal)
		case f := <-l.inspect:
			f(l.node.core)
		case <-wake:
			if l.node.store.Probe() == nil {
				if l.opts.OnDisk != nil {
					l.opts.OnDisk(nil)
				}
				return true
			}
			wake, stop = l.clock.After(l.opts.ProbeInterval)
		case <-l.Quit():
			return false
		}
	}
}

// newTurn returns a turn with no subs, reusing a delivered one.
func (l *Loop) newTurn() *turn {
	if n := len(l.free); n > 0 {
		t := l.free[n-1]
		l.free = l.free[:n-1]
		t.subs = t.subs[:0]
		return t
	}
	return &turn{}
}

// begin steps t's subs as a new turn and hands it to the syncer. It
// reports false if the node failed: then every submission of this turn and of the
// turns in flight gets Unavailable.
func (l *Loop) begin(t *turn) bool {
	t.start, t.err = l.clock.Now(), nil
	l.inputs = l.inputs[:0]
	for _, c := range t.subs {
		l.inputs = append(l.inputs, c.In)
	}
	if err := l.node.Begin(t.start, l.inputs, &t.Turn); err != nil {
		l.Fail(err)
		l.inflight = append(l.inflight, t)
		l.failInflight()
		return false
	}
	if l.opts.earlyReplies {
		for i, c := range t.subs {
			c.Answer(t.Replies[i])
		}
		t.subs = nil
	}
	l.inflight = append(l.inflight, t)
	if len(t.subs) > 0 && len(l.inflight) == 1 && len(l.Inputs()) == 0 {
		// Replies to hurry, nothing else in flight and nothing waiting:
		// wait for the sync here rather than through the syncer, two
		// wake-ups fewer for a lone request. Inputs that come meanwhile
		// wait in the queue and make the next turn. (A turn with no reply
		// to give, a timer's or one answered already, goes to the syncer
		// and the loop goes on taking input.)
		t.err = t.Wait(l.node)
		return l.deliver(t)
	}
	l.toSync <- t // never blocks: at most Pipeline turns are in flight
	return true
}

// syncer waits for each turn's writes to be durable, in order.
func (l *Loop) syncer() {
	for t := range l.toSync {
		t.err = t.Wait(l.node)
		l.durable <- t
	}
}

// deliver answers the oldest turn in flight, t, now durable. It reports
// false if t's sync failed: then t and every later turn get Unavailable.
func (l *Loop) deliver(t *turn) bool {
	if t != l.inflight[0] {
		panic("engine: turns became durable out of order")
	}
	if t.err != nil {
		l.Fail(t.err)
		l.failInflight()
		return false
	}
	l.inflight = l.inflight[1:]
	for i, c := range t.subs {
		c.Answer(t.Replies[i])
	}
	if l.opts.OnEvents != nil && len(t.Events) > 0 {
		l.opts.OnEvents(t.Events)
	}
	l.since++
	var core *Core
	if len(l.inflight) == 0 {
		core, l.since = l.node.core, 0
	}
	if l.opts.OnTurn != nil {
		l.opts.OnTurn(core, TurnStats{Inputs: len(t.subs), Writes: t.Writes, Duration: l.clock.Now().Sub(t.start)})
	}
	clear(t.subs) // let the subs go
	clear(t.Replies[:cap(t.Replies)])
	l.free = append(l.free, t)
	return true
}

// finishInflight delivers the turns in flight (on Stop).
func (l *Loop) finishInflight() {
	for len(l.inflight) > 0 {
		if !l.deliver(<-l.durable) {
			return
		}
	}
}

// failInflight answers every submission of every turn in flight with Unavailable:
// none of them may be acknowledged once the node has failed.
func (l *Loop) failInflight() {
	for _, t := range l.inflight {
		for _, c := range t.subs {
			c.Answer(l.Unavailable())
		}
	}
	l.inflight = nil
}

// timer arms a wake-up for the core's next deadline.
func (l *Loop) timer() (<-chan time.Time, func() bool) {
	at, ok := l.node.NextDeadline()
	if !ok {
		return nil, func() bool { return false }
	}
	return l.clock.After(max(at.Sub(l.clock.Now()), 0))
}
