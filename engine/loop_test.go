package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/require"
)

// fakeClock is a clock the test moves by hand; timers fire when it passes them.
type fakeClock struct {
	mu     sync.Mutex
	now    spec.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at spec.Time
	ch chan time.Time
}

func (f *fakeClock) Now() spec.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) After(d time.Duration) (<-chan time.Time, func() bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- time.Time{}
	} else {
		f.timers = append(f.timers, fakeTimer{at: f.now.Add(d), ch: ch})
	}
	return ch, func() bool { return true }
}

// set moves the clock to now and fires the timers due.
func (f *fakeClock) set(now spec.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
	kept := f.timers[:0]
	for _, t := range f.timers {
		if t.at <= now {
			t.ch <- time.Time{}
		} else {
			kept = append(kept, t)
		}
	}
	f.timers = kept
}

func startLoop(t *testing.T, fs vfs.FS, clock *fakeClock, events chan<- spec.Event) *engine.Loop {
	node, err := engine.OpenNode(engine.NodeOptions{FS: fs, Dir: "db", Limits: spec.DefaultLimits()}, clock.Now())
	require.NoError(t, err)
	return engine.StartLoop(node, engine.LoopOptions{Clock: clock, OnEvents: func(ev []spec.Event) {
		for _, e := range ev {
			events <- e
		}
	}})
}

func TestLoopGroupCommitAndTimers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clock := &fakeClock{}
	events := make(chan spec.Event, 100)
	loop := startLoop(t, vfs.NewMem(), clock, events)
	defer func() { require.NoError(t, loop.Stop()) }()

	a, b := spec.NamedSession("a"), spec.NamedSession("b")
	for s, ttl := range map[spec.SessionID]time.Duration{a: 2 * time.Second, b: time.Minute} {
		r, err := loop.Submit(ctx, spec.Input{Op: spec.OpOpen, Session: s, TTL: ttl})
		require.NoError(t, err)
		require.Equal(t, spec.OK, r.Code)
	}
	r, err := loop.Submit(ctx, spec.Input{Op: spec.OpAcquire, Session: a, Request: 1, Resource: "r", Mode: spec.EX, NoQueue: true})
	require.NoError(t, err)
	require.Equal(t, spec.Token(1), r.Token)

	// b queues behind a; a's lease runs out when the clock passes 2s, and
	// the loop wakes by itself to expire it and grant b.
	wait := make(chan spec.Result, 1)
	go func() {
		r, _ := loop.Submit(ctx, spec.Input{Op: spec.OpAcquire, Session: b, Request: 1, Resource: "r", Mode: spec.EX, WaitTimeout: time.Hour})
		wait <- r
	}()
	require.Equal(t, spec.Blocking, (<-events).Kind)
	require.True(t, (<-wait).Pending)
	clock.set(spec.Time(2 * time.Second))
	require.Equal(t, spec.Event{Kind: spec.Expired, Session: a}, <-events)
	granted := <-events
	require.Equal(t, spec.Completed, granted.Kind)
	require.Equal(t, b, granted.Session)
	require.Equal(t, spec.Token(2), granted.Result.Token)

	var holders int
	require.NoError(t, loop.Inspect(ctx, func(c *engine.Core) {
		st := c.State()
		holders = len(st.Resources[0].Granted)
	}))
	require.Equal(t, 1, holders)
}

// Concurrent submitters: every reply is right however the loop batches
// them (the benchmarks measure how well it batches).
func TestLoopConcurrentSubmitters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clock := &fakeClock{}
	node, err := engine.OpenNode(engine.NodeOptions{FS: vfs.NewMem(), Dir: "db", Limits: spec.DefaultLimits()}, 0)
	require.NoError(t, err)
	var mu sync.Mutex
	var turns, inputs int
	loop := engine.StartLoop(node, engine.LoopOptions{Clock: clock, OnTurn: func(_ *engine.Core, s engine.TurnStats) {
		mu.Lock()
		defer mu.Unlock()
		if s.Inputs > 0 {
			turns++
			inputs += s.Inputs
		}
	}})
	const clients = 64
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := spec.NamedSession("c" + string(rune('A'+i)))
			_, err := loop.Submit(ctx, spec.Input{Op: spec.OpOpen, Session: s, TTL: time.Minute})
			require.NoError(t, err)
			for req := spec.RequestID(1); req <= 20; req += 2 {
				r, err := loop.Submit(ctx, spec.Input{Op: spec.OpAcquire, Session: s, Request: req, Acked: req - 1, Resource: "r" + string(rune('A'+i)), Mode: spec.EX, NoQueue: true})
				require.NoError(t, err)
				require.Equal(t, spec.OK, r.Code)
				r, err = loop.Submit(ctx, spec.Input{Op: spec.OpRelease, Session: s, Request: req + 1, Acked: req, Resource: "r" + string(rune('A'+i))})
				require.NoError(t, err)
				require.Equal(t, spec.OK, r.Code)
			}
		}()
	}
	wg.Wait()
	require.NoError(t, loop.Stop())
	require.Equal(t, clients*21, inputs)
	t.Logf("%d inputs in %d turns", inputs, turns)
}

// TestLoopEnqueue: Enqueue never waits. With the loop held (an Inspect that
// blocks) the queue fills and the next Enqueue fails at once; once the
// loop runs, each input is answered on its channel, with its tag, in the
// order enqueued; a request that must wait is answered Pending; after Stop,
// Enqueue fails.
func TestLoopEnqueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clock := &fakeClock{}
	node, err := engine.OpenNode(engine.NodeOptions{FS: vfs.NewMem(), Dir: "db", Limits: spec.DefaultLimits()}, 0)
	require.NoError(t, err)
	const queueMax = 4
	loop := engine.StartLoop(node, engine.LoopOptions{Clock: clock, QueueMax: queueMax})
	a, b := spec.NamedSession("a"), spec.NamedSession("b")
	for _, s := range []spec.SessionID{a, b} {
		r, err := loop.Submit(ctx, spec.Input{Op: spec.OpOpen, Session: s, TTL: time.Minute})
		require.NoError(t, err)
		require.Equal(t, spec.OK, r.Code)
	}

	entered, release, inspected := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() { inspected <- loop.Inspect(ctx, func(*engine.Core) { close(entered); <-release }) }()
	<-entered
	replies := make(engine.ReplyChan, queueMax)
	acquire := func(s spec.SessionID, req spec.RequestID, name string) spec.Input {
		return spec.Input{Op: spec.OpAcquire, Session: s, Request: req, Resource: name, Mode: spec.EX, WaitTimeout: time.Minute}
	}
	ins := []spec.Input{acquire(a, 1, "x"), acquire(a, 2, "y"), acquire(b, 1, "x"), acquire(b, 2, "z")}
	for i, in := range ins {
		require.NoError(t, loop.Enqueue(in, uint64(100+i), replies))
	}
	require.ErrorIs(t, loop.Enqueue(acquire(b, 3, "w"), 999, replies), engine.ErrQueueFull)
	close(release)
	require.NoError(t, <-inspected)

	for i := range ins {
		var r engine.Reply
		select {
		case r = <-replies:
		case <-ctx.Done():
			t.Fatalf("no reply to input %d", i)
		}
		require.Equal(t, uint64(100+i), r.Tag, "replies come in the order enqueued")
		if ins[i].Session == b && ins[i].Resource == "x" {
			require.True(t, r.Result.Pending, "b waits behind a on x: %v", r.Result)
			continue
		}
		require.Equal(t, spec.OK, r.Result.Code, "%+v", r.Result)
		require.Equal(t, spec.EX, r.Result.Mode)
		require.NotZero(t, r.Result.Token)
	}
	require.NoError(t, loop.Stop())
	require.ErrorIs(t, loop.Enqueue(acquire(b, 3, "w"), 1, replies), engine.ErrLoopStopped)
}

// After a failed write the loop answers Unavailable, then and later.
func TestLoopFailStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clock := &fakeClock{}
	faults := &walFaults{}
	loop := startLoop(t, errorfs.Wrap(vfs.NewMem(), faults), clock, make(chan spec.Event, 10))
	s := spec.NamedSession("s")
	r, err := loop.Submit(ctx, spec.Input{Op: spec.OpOpen, Session: s, TTL: time.Minute})
	require.NoError(t, err)
	require.Equal(t, spec.OK, r.Code)
	faults.countdown.Store(1)
	r, err = loop.Submit(ctx, spec.Input{Op: spec.OpAcquire, Session: s, Request: 1, Resource: "x", Mode: spec.EX, NoQueue: true})
	require.NoError(t, err)
	require.Equal(t, spec.Unavailable, r.Code, r.Detail)
	<-loop.Done()
	r, err = loop.Submit(ctx, spec.Input{Op: spec.OpKeepAlive, Session: s})
	require.NoError(t, err)
	require.Equal(t, spec.Unavailable, r.Code)
	require.ErrorIs(t, loop.Stop(), engine.ErrStoreFailed)
}
