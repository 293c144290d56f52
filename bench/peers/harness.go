package peers

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// System is a lock service under test: how to start its server (or its
// group of servers) and how its clients talk to it.
type System struct {
	Name   string // as the report names it
	About  string // its configuration and locking recipe, for the report
	Shared string // how it takes shared locks; "" if it has no shared mode (n/a)
	// Members is the size of a replicated group (its Start returns a
	// *Group); 0 for a single server. A group runs the plan's GroupCells
	// and the failover, not Cells and the held locks.
	Members int
	// Ref is the system the report divides this one's figures into ("Bouncer ÷ this"); "" for none.
	Ref   string
	Start func(ctx context.Context, dir string) (Service, error)
	Dial  Dialer
}

// GroupSize is the members of the replicated groups (bouncer-3, etcd-3).
const GroupSize = 3

// Systems are Bouncer and its peers, from the binaries given: single
// servers first, then the groups of GroupSize.
func Systems(bouncerBin, etcdBin, redisBin string) []System {
	single := func(s *Server, err error) (Service, error) {
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	group := func(g *Group, err error) (Service, error) {
		if err != nil {
			return nil, err
		}
		return g, nil
	}
	b3, e3 := fmt.Sprintf("bouncer-%d", GroupSize), fmt.Sprintf("etcd-%d", GroupSize)
	return []System{
		{Name: "bouncer", About: "`bouncer serve`, Pebble on disk, fsync before every acknowledgement; the `client` package, one session per client",
			Shared: "PR mode", Dial: DialBouncer,
			Start: func(ctx context.Context, dir string) (Service, error) {
				return single(StartBouncer(ctx, bouncerBin, dir))
			}},
		{Name: "etcd", About: "embedded etcd server (embed, defaults: WAL fsynced), own process; concurrency.Mutex and TryLock, one session (lease) per client",
			Shared: "recipe.RWMutex (experimental recipes)", Dial: DialEtcd, Ref: "bouncer",
			Start: func(ctx context.Context, dir string) (Service, error) { return single(StartEtcd(ctx, etcdBin, dir)) }},
		{Name: "redis-always", About: "redis-server, `appendonly yes`, `appendfsync always`; SET NX PX + compare-and-delete script, polling when held",
			Dial: DialRedis, Ref: "bouncer",
			Start: func(ctx context.Context, dir string) (Service, error) {
				return single(StartRedis(ctx, redisBin, dir, true))
			}},
		{Name: "redis-default", About: "redis-server with its built-in defaults (no AOF, RDB snapshots); same recipe",
			Dial: DialRedis, Ref: "bouncer",
			Start: func(ctx context.Context, dir string) (Service, error) {
				return single(StartRedis(ctx, redisBin, dir, false))
			}},
		{Name: b3, Members: GroupSize, Shared: "PR mode", Dial: DialBouncer,
			About: fmt.Sprintf("a replicated group of %d `bouncer serve --id N --peers ... --clients ...` processes, each with its own Pebble "+
				"data directory and fsync before every acknowledgement, default raft timing (100ms tick, election after 10-20 ticks); "+
				"the `client` package given every member's address (it follows the leader), one session per client", GroupSize),
			Start: func(ctx context.Context, dir string) (Service, error) {
				return group(StartBouncerGroup(ctx, bouncerBin, dir, b3, GroupSize, false))
			}},
		{Name: e3, Members: GroupSize, Shared: "recipe.RWMutex (experimental recipes)", Dial: DialEtcd, Ref: b3,
			About: fmt.Sprintf("a cluster of %d `cmd/etcdnode` processes (embed, defaults: WAL fsynced, 100ms heartbeat, 1s election timeout), "+
				"each with its own data directory; clientv3 given every member's endpoint, concurrency.Mutex, one session (lease) per client", GroupSize),
			Start: func(ctx context.Context, dir string) (Service, error) {
				return group(StartEtcdGroup(ctx, etcdBin, dir, e3, GroupSize, false))
			}},
	}
}

// Cell is a workload at a client count.
type Cell struct {
	Workload Workload
	Clients  int
}

// Plan is a whole benchmark.
type Plan struct {
	Systems      []System
	Cells        []Cell // measured in every run, on every single-server system
	GroupCells   []Cell // measured in every run, on every group
	Runs         int    // medians are over this many runs
	Timing       Timing
	TableClients int            // clients of the Table workload (0: skip it), run once per single-server system
	Failover     FailoverConfig // once per group, after the runs (Kills 0: skip it)
	WorkDir      string
	Floor        bool // measure the machine's floor at the start of each run
	Log          io.Writer
}

// CellsOf are the cells the plan measures on sys.
func (p Plan) CellsOf(sys System) []Cell {
	if sys.Members > 0 {
		return p.GroupCells
	}
	return p.Cells
}

// AllCells are every system's cells, each once: Cells, then the GroupCells
// not among them.
func (p Plan) AllCells() []Cell {
	cells := slices.Clone(p.Cells)
	for _, c := range p.GroupCells {
		if !slices.Contains(cells, c) {
			cells = append(cells, c)
		}
	}
	return cells
}

// Key names a row of the results.
type Key struct {
	Workload Workload
	Clients  int
	System   string
}

// Results are the samples of a plan, by row.
type Results struct {
	Plan            Plan
	Samples         map[Key][]Sample
	Errors          map[Key][]string
	Failover        map[string][]FailoverSample // by system
	FailoverErrors  map[string][]string
	Floors          []FloorSample // one per run, if the plan measures the floor
	Start, Finished time.Time
}

// Estimate is roughly how long the plan takes (server starts and client
// set-up not counted; a kill of the failover is taken as 5s).
func (p Plan) Estimate() time.Duration {
	cell := p.Timing.Warmup + p.Timing.Window
	var d time.Duration
	for _, sys := range p.Systems {
		d += time.Duration(p.Runs*len(p.CellsOf(sys))) * cell
		if sys.Members > 0 {
			d += time.Duration(p.Failover.Kills) * 5 * time.Second
		}
	}
	return d
}

// Run carries out the plan. Each run starts every system afresh, in an
// order rotated by one per run, measures every cell and stops it. A failed
// cell is recorded and the plan goes on; a cancelled ctx ends it with the
// results so far.
func (p Plan) Run(ctx context.Context) (*Results, error) {
	r := &Results{Plan: p, Samples: map[Key][]Sample{}, Errors: map[Key][]string{},
		Failover: map[string][]FailoverSample{}, FailoverErrors: map[string][]string{}, Start: time.Now()}
	defer func() { r.Finished = time.Now() }()
	for run := range p.Runs {
		if p.Floor {
			if err := os.MkdirAll(p.WorkDir, 0o755); err != nil {
				return r, err
			}
			f, err := MeasureFloor(p.WorkDir)
			if err != nil {
				return r, fmt.Errorf("floor: %w", err)
			}
			r.Floors = append(r.Floors, f)
			p.logf("run %d/%d floor: %v", run+1, p.Runs, f)
		}
		order := slices.Concat(p.Systems[run%len(p.Systems):], p.Systems[:run%len(p.Systems)])
		for _, sys := range order {
			dir := filepath.Join(p.WorkDir, fmt.Sprintf("run%d-%s", run+1, sys.Name))
			if err := p.runSystem(ctx, r, sys, dir, run); err != nil {
				return r, err
			}
		}
	}
	if p.Failover.Kills > 0 {
		for _, sys := range p.Systems {
			if sys.Members == 0 {
				continue
			}
			dir := filepath.Join(p.WorkDir, "failover-"+sys.Name)
			if err := p.runFailover(ctx, r, sys, dir); err != nil {
				return r, err
			}
		}
	}
	if p.TableClients > 0 {
		for _, sys := range p.Systems {
			if sys.Members > 0 {
				continue
			}
			dir := filepath.Join(p.WorkDir, "table-"+sys.Name)
			if err := p.runTable(ctx, r, sys, dir); err != nil {
				return r, err
			}
		}
	}
	return r, nil
}

func (p Plan) runSystem(ctx context.Context, r *Results, sys System, dir string, run int) error {
	srv, err := sys.Start(ctx, dir)
	if err != nil {
		if ctx.Err() == nil && sys.Members > 0 { // a group that did not start fails its cells, not the plan
			for _, c := range p.CellsOf(sys) {
				r.record(Key{c.Workload, c.Clients, sys.Name}, Sample{}, err)
			}
			p.logf("run %d/%d %-13s FAILED to start: %v", run+1, p.Runs, sys.Name, err)
			return nil
		}
		return err
	}
	defer srv.Stop()
	for i, c := range p.CellsOf(sys) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.Workload == Mixed && sys.Shared == "" {
			continue // n/a: no shared mode to measure
		}
		s, err := RunCell(ctx, srv, srv.Endpoint(), sys.Dial, c.Workload, c.Clients, p.Timing, fmt.Sprintf("c%d", i))
		r.record(Key{c.Workload, c.Clients, sys.Name}, s, err)
		p.logf("run %d/%d %-13s %-20v %3d clients: %s", run+1, p.Runs, sys.Name, c.Workload, c.Clients, describe(s, err))
	}
	return ctx.Err()
}

func (p Plan) runTable(ctx context.Context, r *Results, sys System, dir string) error {
	srv, err := sys.Start(ctx, dir)
	if err != nil {
		return err
	}
	defer srv.Stop()
	s, err := RunCell(ctx, srv, srv.Endpoint(), sys.Dial, Table, p.TableClients, p.Timing, "t")
	r.record(Key{Table, p.TableClients, sys.Name}, s, err)
	p.logf("%-13s %-20v %3d clients: %s rss %s -> %s", sys.Name, Table, p.TableClients, describe(s, err),
		mib(s.RSSBefore), mib(s.RSS))
	return ctx.Err()
}

// runFailover starts the group sys and measures its failover.
func (p Plan) runFailover(ctx context.Context, r *Results, sys System, dir string) error {
	srv, err := sys.Start(ctx, dir)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		r.FailoverErrors[sys.Name] = append(r.FailoverErrors[sys.Name], err.Error())
		p.logf("%-13s failover: FAILED to start: %v", sys.Name, err)
		return nil
	}
	defer srv.Stop()
	g, ok := srv.(Failing)
	if !ok {
		return fmt.Errorf("%s: not a group", sys.Name)
	}
	logf := func(format string, args ...any) {
		p.logf("%-13s failover "+format, append([]any{sys.Name}, args...)...)
	}
	ss, errs := RunFailover(ctx, g, sys.Dial, p.Failover, "fo", logf)
	r.Failover[sys.Name] = ss
	for _, err := range errs {
		r.FailoverErrors[sys.Name] = append(r.FailoverErrors[sys.Name], err.Error())
		logf("FAILED: %v", err)
	}
	return ctx.Err()
}

func (r *Results) record(k Key, s Sample, err error) {
	if err != nil {
		r.Errors[k] = append(r.Errors[k], err.Error())
		return
	}
	r.Samples[k] = append(r.Samples[k], s)
}

func describe(s Sample, err error) string {
	if err != nil {
		return "FAILED: " + err.Error()
	}
	return fmt.Sprintf("%8.0f/s p50 %v p99 %v p999 %v rss %s cpu/op server %v clients %v", s.PerSecond(), s.P50, s.P99, s.P999,
		mib(s.RSS), perOp(s.ServerCPU, s.Ops), perOp(s.ClientCPU, s.Ops))
}

func (p Plan) logf(format string, args ...any) {
	if p.Log != nil {
		fmt.Fprintf(p.Log, format+"\n", args...)
	}
}

// Row is the median of a row's samples: each field's median over the runs.
type Row struct {
	Rate, GrantedRate float64 // per second
	P50, P99, P999    time.Duration
	RSS, RSSBefore    int64
	// CPU time per op, of the server and of the clients' process.
	ServerCPUPerOp, ClientCPUPerOp time.Duration
	Runs                           int // samples the medians are over
}

// Median is the row k, if any run measured it.
func (r *Results) Median(k Key) (Row, bool) {
	ss := r.Samples[k]
	if len(ss) == 0 {
		return Row{}, false
	}
	med := func(f func(Sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	d := func(f func(Sample) time.Duration) time.Duration {
		return time.Duration(med(func(s Sample) float64 { return float64(f(s)) }))
	}
	return Row{
		Rate:           med(Sample.PerSecond),
		GrantedRate:    med(func(s Sample) float64 { return float64(s.Granted) / s.Elapsed.Seconds() }),
		P50:            d(func(s Sample) time.Duration { return s.P50 }),
		P99:            d(func(s Sample) time.Duration { return s.P99 }),
		P999:           d(func(s Sample) time.Duration { return s.P999 }),
		RSS:            int64(med(func(s Sample) float64 { return float64(s.RSS) })),
		RSSBefore:      int64(med(func(s Sample) float64 { return float64(s.RSSBefore) })),
		ServerCPUPerOp: d(func(s Sample) time.Duration { return perOp(s.ServerCPU, s.Ops) }),
		ClientCPUPerOp: d(func(s Sample) time.Duration { return perOp(s.ClientCPU, s.Ops) }),
		Runs:           len(ss),
	}, true
}

func perOp(d time.Duration, ops int) time.Duration {
	if ops == 0 {
		return 0
	}
	return d / time.Duration(ops)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
