// Package bench measures Bouncer: load against a node over the network
// (Run, behind `bouncer bench`), alongside the engine's own go test
// benchmarks. Peer comparisons live in bench/peers, a module of its own.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/grpc"
)

// Options describe a load run.
type Options struct {
	Addr      string        // node to load; empty: start one on loopback, on disk, fsync on
	Clients   int           // concurrent clients, each with its own session
	Conns     int           // connections the clients' sessions share round-robin (0: one per client)
	Resources int           // clients spread over this many resources (1: all contend)
	Duration  time.Duration // how long to measure (after a short warm-up)
	Mode      spec.Mode
	Config    client.Config // TLS, token (Addr is set from Addr)
}

// Result is what a run measured.
type Result struct {
	Cycles              int // lock+unlock cycles completed
	Elapsed             time.Duration
	P50, P99, P999, Max time.Duration // acquire latency
	// CPU is this process's CPU over the measured window: the clients', and
	// the node's too when Run started it (Options.Addr empty).
	CPU time.Duration
}

// CPUPerCycle is the CPU one cycle cost this process.
func (r Result) CPUPerCycle() time.Duration {
	if r.Cycles == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Cycles)
}

// CyclesPerSecond is the throughput.
func (r Result) CyclesPerSecond() float64 { return float64(r.Cycles) / r.Elapsed.Seconds() }

func (r Result) String() string {
	return fmt.Sprintf("cycles=%d elapsed=%v cycles/s=%.0f acquire p50=%v p99=%v p999=%v max=%v cpu/cycle=%v",
		r.Cycles, r.Elapsed.Round(time.Millisecond), r.CyclesPerSecond(), r.P50, r.P99, r.P999, r.Max,
		r.CPUPerCycle().Round(100*time.Nanosecond))
}

// Run loads a node with lock+unlock cycles and reports throughput and
// acquire latency.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Clients <= 0 || o.Resources <= 0 || o.Duration <= 0 {
		return Result{}, errors.New("bench: clients, resources and duration must be positive")
	}
	addr := o.Addr
	if addr == "" {
		stop, a, err := StartNode()
		if err != nil {
			return Result{}, err
		}
		defer stop()
		addr = a
	}
	o.Config.Addr = addr
	if o.Conns <= 0 || o.Conns > o.Clients {
		o.Conns = o.Clients
	}
	conns := make([]*client.Client, o.Conns)
	for i := range conns {
		c, err := client.Connect(o.Config)
		if err != nil {
			return Result{}, err
		}
		defer c.Close()
		conns[i] = c
	}
	sessions := make([]*client.Session, o.Clients)
	for i := range sessions {
		var err error
		if sessions[i], err = conns[i%o.Conns].NewSession(ctx); err != nil {
			return Result{}, fmt.Errorf("bench: open session: %w", err)
		}
		defer sessions[i].Close(context.Background())
	}
	warmup := min(o.Duration/5, 2*time.Second)
	start := time.Now()
	measureFrom, until := start.Add(warmup), start.Add(warmup+o.Duration)
	lat := make([][]time.Duration, o.Clients)
	errs := make(chan error, o.Clients)
	var wg sync.WaitGroup
	var cpuFrom atomic.Int64 // the CPU when the measured window opened
	cpuTimer := time.AfterFunc(time.Until(measureFrom), func() { cpuFrom.Store(int64(processCPU())) })
	for i, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("bench-%d", i%o.Resources)
			for {
				t0 := time.Now()
				if t0.After(until) {
					return
				}
				l, err := s.Lock(ctx, name, o.Mode)
				if err != nil {
					errs <- err
					return
				}
				if t0.After(measureFrom) {
					lat[i] = append(lat[i], time.Since(t0))
				}
				if err := l.Unlock(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	cpuTimer.Stop()
	cpuUntil := processCPU() // the window closed as the last cycles ended
	close(errs)
	if err := <-errs; err != nil {
		return Result{}, fmt.Errorf("bench: %w", err)
	}
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return Result{}, errors.New("bench: no cycle completed in the measured window")
	}
	slices.Sort(all)
	q := func(p float64) time.Duration { return all[min(int(p*float64(len(all))), len(all)-1)] }
	r := Result{Cycles: len(all), Elapsed: o.Duration, P50: q(0.5), P99: q(0.99), P999: q(0.999), Max: all[len(all)-1]}
	if from := time.Duration(cpuFrom.Load()); from > 0 && cpuUntil > from {
		r.CPU = cpuUntil - from
	}
	return r, nil
}

// StartNode serves a node in this process on 127.0.0.1, with its store in
// a fresh temporary directory on disk (fsync on). stop shuts it down and
// removes the directory.
func StartNode() (stop func(), addr string, err error) {
	dir, err := os.MkdirTemp("", "bouncer-bench")
	if err != nil {
		return nil, "", err
	}
	lim := spec.DefaultLimits()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	node, err := engine.OpenNode(engine.NodeOptions{FS: vfs.Default, Dir: dir, Limits: lim, Log: log}, 0)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", err
	}
	srv := server.New(node, server.Options{Limits: lim, Log: log})
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = srv.Stop()
		_ = os.RemoveAll(dir)
		return nil, "", err
	}
	go func() { _ = g.Serve(lis) }()
	return func() {
		g.Stop()
		_ = srv.Stop()
		_ = os.RemoveAll(dir)
	}, lis.Addr().String(), nil
}
