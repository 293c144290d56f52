package peers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Workload is a pattern of lock requests.
type Workload int

const (
	// Uncontended: client i locks and unlocks a resource of its own.
	Uncontended Workload = iota
	// Contended: every client locks and unlocks the same resource.
	Contended
	// TryLock: every client try-locks one resource, unlocking when granted.
	TryLock
	// Mixed: every client locks one resource, shared (as a reader) 9 times
	// in 10 and exclusive (as a writer) otherwise.
	Mixed
	// Table: the clients take LockTableSize distinct locks and keep them.
	Table
)

// LockTableSize is how many locks the Table workload holds.
var LockTableSize = 100_000

var workloadNames = [...]string{"uncontended", "contended", "try-lock", "shared/exclusive mix", "held locks"}

func (w Workload) String() string {
	if w == Table {
		return tableSize() + " held locks"
	}
	return workloadNames[w]
}

// tableSize is LockTableSize, short: 100k for 100,000.
func tableSize() string {
	if LockTableSize%1000 == 0 {
		return fmt.Sprintf("%dk", LockTableSize/1000)
	}
	return fmt.Sprint(LockTableSize)
}

// Timing is the warm-up and measured window of a cell.
type Timing struct {
	Warmup, Window time.Duration
}

// Sample is what one run of one workload measured on one system.
type Sample struct {
	Ops     int           // requests completed in the window (cycles, attempts, or locks taken)
	Granted int           // of which granted (TryLock; otherwise Ops)
	Elapsed time.Duration // the measured window (Table: the time to take every lock)
	// Acquire latency: the lock (or try-lock) call, as the client saw it.
	P50, P99, P999 time.Duration
	RSS            int64 // server RSS at the end, bytes
	RSSBefore      int64 // server RSS before the locks were taken (Table)
	// CPU time used during the window by the server process and by this
	// process (the clients, load generator and all).
	ServerCPU, ClientCPU time.Duration
}

// Process is what a cell reads of the server process.
type Process interface {
	RSS() (int64, error)
	CPU() (time.Duration, error)
}

// cpuMeter reads the server's and this process's CPU time.
type cpuMeter struct {
	srv                  Process
	server0, client0     time.Duration
	serverCPU, clientCPU time.Duration
	err                  error
}

func (m *cpuMeter) start() {
	var e1, e2 error
	m.server0, e1 = m.srv.CPU()
	m.client0, e2 = processCPU("self")
	m.err = errors.Join(e1, e2)
}

func (m *cpuMeter) stop() {
	s, e1 := m.srv.CPU()
	c, e2 := processCPU("self")
	m.serverCPU, m.clientCPU = s-m.server0, c-m.client0
	m.err = errors.Join(m.err, e1, e2)
}

// meterWindow reads the CPU times at from and at until.
func meterWindow(ctx context.Context, m *cpuMeter, from, until time.Time) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, at := range []struct {
			t time.Time
			f func()
		}{{from, m.start}, {until, m.stop}} {
			select {
			case <-time.After(time.Until(at.t)):
				at.f()
			case <-ctx.Done():
				m.err = ctx.Err()
				return
			}
		}
	}()
	return done
}

// PerSecond is the throughput.
func (s Sample) PerSecond() float64 { return float64(s.Ops) / s.Elapsed.Seconds() }

// dialClients opens n clients, several at a time.
func dialClients(ctx context.Context, dial Dialer, addr string, n int) ([]Client, error) {
	clients := make([]Client, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			clients[i], errs[i] = dial(ctx, addr)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeClients(clients)
		return nil, err
	}
	return clients, nil
}

func closeClients(clients []Client) {
	var wg sync.WaitGroup
	for _, c := range clients {
		if c != nil {
			wg.Go(func() { _ = c.Close() })
		}
	}
	wg.Wait()
}

// op is one request of a workload by client i; granted false is a try-lock
// that found the resource busy. lat is the acquire latency.
type op func(ctx context.Context, c Client, i int, rng *rand.Rand) (granted bool, lat time.Duration, err error)

// guards check, client side and as a sanity check, that what each system grants excludes what
// it should: a cell fails if two clients ever believe at once that they
// hold conflicting modes of one resource. (Holders count themselves in
// after the grant returns and out before they send the release, so a
// correct lock never trips it.)
type guards struct{ m sync.Map } // resource name -> *guard

type guard struct{ exclusive, shared atomic.Int32 }

var errExclusion = errors.New("peers: mutual exclusion violated: conflicting modes granted at once")

func (g *guards) enter(resource string, mode Mode) (leave func(), err error) {
	v, _ := g.m.LoadOrStore(resource, new(guard))
	x := v.(*guard)
	if mode == Shared {
		x.shared.Add(1)
		leave = func() { x.shared.Add(-1) }
		if x.exclusive.Load() != 0 {
			err = errExclusion
		}
		return leave, err
	}
	n := x.exclusive.Add(1)
	leave = func() { x.exclusive.Add(-1) }
	if n != 1 || x.shared.Load() != 0 {
		err = errExclusion
	}
	return leave, err
}

func cycle(g *guards, resource func(i int) string, mode func(rng *rand.Rand) Mode) op {
	return func(ctx context.Context, c Client, i int, rng *rand.Rand) (bool, time.Duration, error) {
		name, m := resource(i), mode(rng)
		t0 := time.Now()
		h, err := c.Lock(ctx, name, m)
		if err != nil {
			return false, 0, err
		}
		lat := time.Since(t0)
		leave, err := g.enter(name, m)
		runtime.Gosched() // hold a moment: let another's wrong grant show
		leave()
		if err != nil {
			return false, 0, err
		}
		return true, lat, h.Unlock(ctx)
	}
}

func tryCycle(g *guards, resource string) op {
	return func(ctx context.Context, c Client, _ int, _ *rand.Rand) (bool, time.Duration, error) {
		t0 := time.Now()
		h, err := c.TryLock(ctx, resource)
		lat := time.Since(t0)
		if errors.Is(err, ErrBusy) {
			return false, lat, nil
		}
		if err != nil {
			return false, 0, err
		}
		leave, err := g.enter(resource, Exclusive)
		runtime.Gosched()
		leave()
		if err != nil {
			return false, 0, err
		}
		return true, lat, h.Unlock(ctx)
	}
}

// opFor returns the request pattern of w; tag keeps each cell's resources
// apart from the previous cells'.
func opFor(w Workload, tag string) op {
	g := new(guards)
	exclusive := func(*rand.Rand) Mode { return Exclusive }
	switch w {
	case Uncontended:
		return cycle(g, func(i int) string { return fmt.Sprintf("%s-u%d", tag, i) }, exclusive)
	case Contended:
		hot := tag + "-hot"
		return cycle(g, func(int) string { return hot }, exclusive)
	case TryLock:
		return tryCycle(g, tag+"-try")
	case Mixed:
		mix := rwPrefix + tag
		return cycle(g, func(int) string { return mix }, func(rng *rand.Rand) Mode {
			if rng.IntN(10) == 0 {
				return Exclusive
			}
			return Shared
		})
	}
	panic(fmt.Sprintf("peers: no op for workload %v", w))
}

// RunCell opens n clients on the server at addr, runs w for the warm-up and then the
// measured window, and closes them. Latency percentiles are over every
// request that started in the window.
func RunCell(ctx context.Context, srv Process, addr string, dial Dialer, w Workload, n int, tm Timing, tag string) (Sample, error) {
	if w == Table {
		return runTable(ctx, srv, addr, dial, n, tag)
	}
	clients, err := dialClients(ctx, dial, addr, n)
	if err != nil {
		return Sample{}, err
	}
	defer closeClients(clients)
	// Requests in flight at the end of the window must finish; a system
	// that leaves one waiting past this bound fails the cell.
	ctx, cancel := context.WithTimeout(ctx, tm.Warmup+tm.Window+60*time.Second)
	defer cancel()
	do := opFor(w, tag)
	start := time.Now()
	from, until := start.Add(tm.Warmup), start.Add(tm.Warmup+tm.Window)
	lats := make([][]time.Duration, n)
	granted := make([]int, n)
	fail := failer(cancel)
	meter := &cpuMeter{srv: srv}
	metered := meterWindow(ctx, meter, from, until)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for {
				t0 := time.Now()
				if !t0.Before(until) {
					return
				}
				ok, lat, err := do(ctx, c, i, rng)
				if err != nil {
					fail.set(err) // one failure ends and fails the cell
					return
				}
				if !t0.Before(from) {
					lats[i] = append(lats[i], lat)
					if ok {
						granted[i]++
					}
				}
			}
		})
	}
	wg.Wait()
	<-metered
	if err := fail.get(); err != nil {
		return Sample{}, fmt.Errorf("%v, %d clients: %w", w, n, err)
	}
	if meter.err != nil {
		return Sample{}, fmt.Errorf("cpu time: %w", meter.err)
	}
	s := summarize(slices.Concat(lats...))
	s.Elapsed, s.ServerCPU, s.ClientCPU = tm.Window, meter.serverCPU, meter.clientCPU
	for _, g := range granted {
		s.Granted += g
	}
	s.RSS, err = srv.RSS()
	return s, err
}

// firstFailure keeps the first error of a cell's clients (the others'
// are mostly the cancellation it causes) and cancels the cell.
type firstFailure struct {
	mu     sync.Mutex
	err    error
	cancel context.CancelFunc
}

func failer(cancel context.CancelFunc) *firstFailure { return &firstFailure{cancel: cancel} }

func (f *firstFailure) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
		f.cancel()
	}
}

func (f *firstFailure) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// summarize sorts lat and fills Ops and the percentiles.
func summarize(lat []time.Duration) Sample {
	if len(lat) == 0 {
		return Sample{}
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(int(p*float64(len(lat))), len(lat)-1)] }
	return Sample{Ops: len(lat), P50: q(0.5), P99: q(0.99), P999: q(0.999)}
}

// runTable has n clients take LockTableSize distinct locks between them and
// keep them, then reads the server's memory. Throughput is locks taken per
// second while the table fills; latency is that of every acquire.
func runTable(ctx context.Context, srv Process, addr string, dial Dialer, n int, tag string) (Sample, error) {
	clients, err := dialClients(ctx, dial, addr, n)
	if err != nil {
		return Sample{}, err
	}
	defer closeClients(clients)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	before, err := srv.RSS()
	if err != nil {
		return Sample{}, err
	}
	lats := make([][]time.Duration, n)
	fail := failer(cancel)
	meter := &cpuMeter{srv: srv}
	meter.start()
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			for j := i; j < LockTableSize; j += n {
				t0 := time.Now()
				if _, err := c.Lock(ctx, fmt.Sprintf("%s-t%d", tag, j), Exclusive); err != nil {
					fail.set(fmt.Errorf("lock %d: %w", j, err))
					return
				}
				lats[i] = append(lats[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	meter.stop()
	if err := fail.get(); err != nil {
		return Sample{}, fmt.Errorf("%v: %w", Table, err)
	}
	s := summarize(slices.Concat(lats...))
	if meter.err != nil {
		return Sample{}, fmt.Errorf("cpu time: %w", meter.err)
	}
	s.Elapsed, s.Granted, s.RSSBefore = elapsed, s.Ops, before
	s.ServerCPU, s.ClientCPU = meter.serverCPU, meter.clientCPU
	s.RSS, err = srv.RSS()
	return s, err
}
