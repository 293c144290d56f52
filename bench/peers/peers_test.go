package peers

import (
	"context"
	"errors"
	"github.com/bouncer-dlm/bouncer/bench"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// memLocks is a lock service in memory, for testing the harness itself.
type memLocks struct {
	mu    sync.Mutex
	freed *sync.Cond
	held  map[string]*memState
}

type memState struct{ exclusive, shared int }

func newMemLocks() *memLocks {
	m := &memLocks{held: map[string]*memState{}}
	m.freed = sync.NewCond(&m.mu)
	return m
}

func (m *memLocks) dial(context.Context, string) (Client, error) { return memClient{m}, nil }

type memClient struct{ m *memLocks }

func (c memClient) grantable(r string, mode Mode) bool {
	st := c.m.held[r]
	if st == nil {
		st = &memState{}
		c.m.held[r] = st
	}
	if st.exclusive > 0 || mode == Exclusive && st.shared > 0 {
		return false
	}
	if mode == Shared {
		st.shared++
	} else {
		st.exclusive++
	}
	return true
}

func (c memClient) Lock(_ context.Context, r string, mode Mode) (Held, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	for !c.grantable(r, mode) {
		c.m.freed.Wait()
	}
	return memHeld{c.m, r, mode}, nil
}

func (c memClient) TryLock(_ context.Context, r string) (Held, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if !c.grantable(r, Exclusive) {
		return nil, ErrBusy
	}
	return memHeld{c.m, r, Exclusive}, nil
}

func (memClient) Close() error { return nil }

type memHeld struct {
	m    *memLocks
	r    string
	mode Mode
}

func (h memHeld) Unlock(context.Context) error {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	if h.mode == Shared {
		h.m.held[h.r].shared--
	} else {
		h.m.held[h.r].exclusive--
	}
	h.m.freed.Broadcast()
	return nil
}

// self stands for the server process: this one.
type self struct{}

func (self) RSS() (int64, error)         { return 1 << 20, nil }
func (self) CPU() (time.Duration, error) { return processCPU("self") }

func TestRunCellWorkloads(t *testing.T) {
	tm := Timing{Warmup: 10 * time.Millisecond, Window: 100 * time.Millisecond}
	for _, w := range []Workload{Uncontended, Contended, TryLock, Mixed} {
		t.Run(w.String(), func(t *testing.T) {
			s, err := RunCell(context.Background(), self{}, "", newMemLocks().dial, w, 4, tm, "t")
			if err != nil {
				t.Fatal(err)
			}
			if s.Ops == 0 || s.Granted == 0 || s.Granted > s.Ops {
				t.Fatalf("ops %d granted %d", s.Ops, s.Granted)
			}
			if w != TryLock && s.Granted != s.Ops {
				t.Fatalf("ops %d granted %d: every lock is granted", s.Ops, s.Granted)
			}
			if !(s.P50 <= s.P99 && s.P99 <= s.P999) || s.Elapsed != tm.Window {
				t.Fatalf("percentiles %v %v %v, elapsed %v", s.P50, s.P99, s.P999, s.Elapsed)
			}
		})
	}
}

func TestRunCellTable(t *testing.T) {
	defer func(n int) { LockTableSize = n }(LockTableSize)
	LockTableSize = 1000
	m := newMemLocks()
	s, err := RunCell(context.Background(), self{}, "", m.dial, Table, 7, Timing{}, "t")
	if err != nil {
		t.Fatal(err)
	}
	if s.Ops != 1000 || len(m.held) != 1000 {
		t.Fatalf("ops %d, %d resources held; want 1000", s.Ops, len(m.held))
	}
}

func TestGuardsCatchConflicts(t *testing.T) {
	var g guards
	leave, err := g.enter("r", Shared)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.enter("r", Shared); err != nil {
		t.Fatalf("two readers: %v", err)
	}
	if _, err := g.enter("r", Exclusive); !errors.Is(err, errExclusion) {
		t.Fatalf("writer with readers: %v", err)
	}
	leave()
	if _, err := g.enter("other", Exclusive); err != nil {
		t.Fatal(err)
	}
	if _, err := g.enter("other", Exclusive); !errors.Is(err, errExclusion) {
		t.Fatalf("two writers: %v", err)
	}
}

func TestMedian(t *testing.T) {
	r := &Results{Samples: map[Key][]Sample{}}
	k := Key{Uncontended, 8, "bouncer"}
	for _, ops := range []int{300, 100, 200} {
		r.Samples[k] = append(r.Samples[k], Sample{Ops: ops, Granted: ops, Elapsed: time.Second,
			P99: time.Duration(ops) * time.Millisecond, ServerCPU: time.Duration(ops) * time.Millisecond})
	}
	row, ok := r.Median(k)
	if !ok || row.Rate != 200 || row.P99 != 200*time.Millisecond || row.Runs != 3 || row.ServerCPUPerOp != time.Millisecond {
		t.Fatalf("median %+v", row)
	}
	r.Samples[k] = r.Samples[k][:2]
	if row, _ := r.Median(k); row.Rate != 200 {
		t.Fatalf("median of 300 and 100: %v", row.Rate)
	}
	if _, ok := r.Median(Key{Contended, 8, "bouncer"}); ok {
		t.Fatal("a row never measured has a median")
	}
}

func TestMarkdown(t *testing.T) {
	sys := Systems("bouncer", "etcdnode", "redis-server")
	p := Plan{Systems: sys, Runs: 1, Timing: Timing{Warmup: time.Second, Window: time.Second}, TableClients: 64,
		Cells: []Cell{{Uncontended, 64}, {Contended, 64}, {Mixed, 64}}}
	r := &Results{Plan: p, Samples: map[Key][]Sample{}, Errors: map[Key][]string{}, Start: time.Now(), Finished: time.Now()}
	add := func(w Workload, system string, ops int, p99 time.Duration, rss int64) {
		r.Samples[Key{w, 64, system}] = []Sample{{Ops: ops, Granted: ops, Elapsed: time.Second, P99: p99, RSS: rss}}
	}
	add(Uncontended, "bouncer", 6000, 10*time.Millisecond, 40<<20)
	add(Uncontended, "etcd", 1000, 40*time.Millisecond, 50<<20)
	add(Uncontended, "redis-always", 8000, 5*time.Millisecond, 10<<20)
	add(Contended, "bouncer", 500, 100*time.Millisecond, 40<<20)
	add(Mixed, "bouncer", 500, 100*time.Millisecond, 40<<20)
	r.Errors[Key{Contended, 64, "etcd"}] = []string{"etcd: boom | pipe"}
	md := Report{Results: r, Machine: Machine{CPU: "test"}, Plot: "results.png"}.Markdown()
	for _, want := range []string{
		"| uncontended | 64 | etcd | 1,000 | 0.00 ms | 40.0 ms |",
		"| 6.00x | 0.25x | 0.80x |",
		"| shared/exclusive mix | 64 | redis-always | n/a |",
		"| contended | 64 | etcd | failed |", "etcd: boom / pipe",
		"| uncontended throughput vs etcd | ≥ 5x | 6.00x | met |",
		"| uncontended throughput vs Redis (appendfsync always) | ≥ 1x | 0.75x | **missed**: at 75% of the target |",
		"| uncontended p99 acquire latency vs etcd | ≤ 0.5x | 0.25x | met |",
		"| contended throughput vs etcd | ≥ 5x | not measured | |",
		"![throughput and p99 acquire latency by client count](results.png)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestFormats(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{rate(1234567), "1,234,567"}, {rate(999.6), "1,000"}, {rate(12.34), "12.3"}, {rate(1.234), "1.23"},
		{lat(1500 * time.Microsecond), "1.50 ms"}, {lat(25 * time.Millisecond), "25.0 ms"}, {lat(2 * time.Second), "2000 ms"},
		{ratio(3, 2), "1.50x"}, {ratio(1, 0), "–"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestWritePlot(t *testing.T) {
	p := Plan{Systems: Systems("b", "e", "r")[:2], Cells: []Cell{{Uncontended, 1}, {Uncontended, 8}, {Contended, 8}}}
	r := &Results{Plan: p, Samples: map[Key][]Sample{}}
	path := filepath.Join(t.TempDir(), "p.png")
	if ok, err := WritePlot(r, path); ok || err != nil {
		t.Fatalf("nothing measured: plotted %v, %v", ok, err)
	}
	for _, c := range p.Cells {
		for i, sys := range p.Systems {
			r.Samples[Key{c.Workload, c.Clients, sys.Name}] = []Sample{{Ops: 100 * (i + 1) * c.Clients,
				Elapsed: time.Second, P99: time.Duration(c.Clients) * time.Millisecond}}
		}
	}
	if ok, err := WritePlot(r, path); !ok || err != nil {
		t.Fatalf("plotted %v, %v", ok, err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatal(err)
	}
}

// TestFloorReport checks the floor's medians and the verdicts against it,
// met and missed.
func TestFloorReport(t *testing.T) {
	p := Plan{Systems: Systems("bouncer", "etcdnode", "redis-server"), Runs: 3}
	r := &Results{Plan: p, Samples: map[Key][]Sample{}, Errors: map[Key][]string{}}
	floor := func(grpcCPU time.Duration, fsync time.Duration) FloorSample {
		return FloorSample{TCP: bench.Floor{RoundTrips: 50_000, Elapsed: time.Second, CPU: 50_000 * 5 * time.Microsecond},
			GRPC:  bench.Floor{RoundTrips: 20_000, Elapsed: time.Second, CPU: 20_000 * grpcCPU},
			OneRT: 50 * time.Microsecond, Fsync: fsync}
	}
	r.Floors = []FloorSample{floor(20*time.Microsecond, 200*time.Microsecond), floor(10*time.Microsecond, 900*time.Microsecond),
		floor(15*time.Microsecond, 150*time.Microsecond)}
	f, ok := r.Floor()
	if !ok || f.GRPC.CPUPer() != 15*time.Microsecond || f.Fsync != 200*time.Microsecond || f.TCP.CPUPer() != 5*time.Microsecond {
		t.Fatalf("median floor %+v (%v %v), want gRPC 15µs, fsync 200µs, tcp 5µs", f, f.GRPC.CPUPer(), f.TCP.CPUPer())
	}
	add := func(w Workload, n int, system string, ops int, p50, server, clients time.Duration) {
		r.Samples[Key{w, n, system}] = []Sample{{Ops: ops, Elapsed: time.Second, P50: p50,
			ServerCPU: server * time.Duration(ops), ClientCPU: clients * time.Duration(ops)}}
	}
	add(Uncontended, 64, "bouncer", 10_000, time.Millisecond, 60*time.Microsecond, 40*time.Microsecond)
	add(Uncontended, 64, "redis-always", 10_000, time.Millisecond, 20*time.Microsecond, 20*time.Microsecond)
	add(Uncontended, 1, "bouncer", 1_000, 250*time.Microsecond, 100*time.Microsecond, 100*time.Microsecond)
	add(Contended, 64, "bouncer", 1_000, 50*time.Millisecond, 100*time.Microsecond, 100*time.Microsecond)
	md := Report{Results: r, Machine: Machine{CPU: "test"}}.Markdown()
	for _, want := range []string{
		"| gRPC bidirectional-stream ping-pong, 64 connections | 20,000 | 15.0 µs | |",
		"| write 4 KiB + fdatasync in the servers' work directory (p50) | | | 200.0 µs |",
		// 100 µs per cycle over two gRPC round trips of 15 µs: 3.33x, missed
		"÷ two gRPC-stream round trips (30.0 µs) | ≤ 3x | 3.33x (10.0x two raw TCP round trips) | **missed**: 1.11x over the target |",
		"bouncer (60.0 µs) ÷ redis-always (20.0 µs) | ≤ 2x | 3.00x | **missed**: 1.50x over the target |",
		"one client: acquire p50 (250.0 µs) ÷ (fsync p50 + 100 µs = 300.0 µs) | ≤ 1x | 0.83x | met |",
		// 1/(200 µs + 50 µs) = 4,000/s; 1,000/s is 0.25x
		"cycles/s (1,000) ÷ 1/(fsync p50 + one round trip) (4,000/s) | ≥ 0.5x | 0.25x | **missed**: at 50% of the target |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
