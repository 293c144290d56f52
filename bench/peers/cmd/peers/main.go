// Command peers benchmarks Bouncer side by side with etcd and Redis and
// writes a Markdown report and a plot. bench/peers/run.sh builds what it
// needs and runs it; see that script for the usual flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bouncer-dlm/bouncer/bench/peers"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

type flags struct {
	bouncer, etcd, redis    string
	systems, only           string
	clients, contend, group string
	focus, tableClients     int
	floor                   bool
	failover                peers.FailoverConfig
	runs                    int
	warmup, window, timeout time.Duration
	redisRetry              time.Duration
	md, png, work           string
	command, commit         string
}

func parseFlags() flags {
	var f flags
	flag.StringVar(&f.bouncer, "bouncer", "", "the bouncer binary (required)")
	flag.StringVar(&f.etcd, "etcdnode", "", "the etcdnode binary, from ./cmd/etcdnode (required)")
	flag.StringVar(&f.redis, "redis-server", "redis-server", "the redis-server binary")
	flag.StringVar(&f.systems, "systems", "bouncer,etcd,redis-always,redis-default,bouncer-3,etcd-3", "systems to run, of those six")
	flag.StringVar(&f.only, "only", "", "run only these systems (comma-separated names of -systems'), e.g. bouncer,bouncer-3,etcd-3")
	flag.StringVar(&f.group, "group-clients", "64", "client counts of the uncontended and contended workloads on the groups (bouncer-3, etcd-3)")
	f.failover = peers.DefaultFailover
	flag.IntVar(&f.failover.Kills, "kills", f.failover.Kills, "leaders killed per group to time the failover (0: skip it)")
	flag.IntVar(&f.failover.Clients, "failover-clients", f.failover.Clients, "clients cycling locks while the leaders are killed")
	flag.IntVar(&f.failover.Grants, "failover-grants", f.failover.Grants, "the failover's second figure is the time to this many grants after the kill")
	flag.StringVar(&f.clients, "clients", "1,8,64,256", "client counts of the uncontended workload")
	flag.StringVar(&f.contend, "contended", "8,64,256", "client counts of the contended workload")
	flag.IntVar(&f.focus, "focus", 64, "client count of the try-lock and shared/exclusive workloads")
	flag.IntVar(&f.tableClients, "table-clients", 64, "clients that take the held locks (0: skip that workload)")
	flag.IntVar(&peers.LockTableSize, "table-locks", peers.LockTableSize, "locks held in the large lock table workload")
	flag.BoolVar(&f.floor, "floor", true, "measure the machine's floor (TCP and gRPC ping-pong, fsync) in each run and report Bouncer's figures as ratios to it")
	flag.IntVar(&f.runs, "runs", 3, "runs; figures are medians over them")
	flag.DurationVar(&f.warmup, "warmup", 500*time.Millisecond, "warm-up before each measured window")
	flag.DurationVar(&f.window, "window", 3*time.Second, "measured window of each cell")
	flag.DurationVar(&f.timeout, "timeout", 19*time.Minute, "give up (and stop every server) after this long")
	flag.DurationVar(&f.redisRetry, "redis-retry", peers.RedisRetry, "how long a Redis client waits before polling a held lock again (±50%)")
	flag.StringVar(&f.md, "md", "RESULTS.md", "write the Markdown report here")
	flag.StringVar(&f.png, "png", "results.png", "write the plot here (PNG)")
	flag.StringVar(&f.work, "work", "", "directory for the servers' data (default: a new one under $TMPDIR, removed after)")
	flag.StringVar(&f.command, "command", "", "the command line to quote in the report")
	flag.StringVar(&f.commit, "commit", "", "the commit of the bouncer binary, for the report")
	flag.Parse()
	return f
}

func run() error {
	f := parseFlags()
	if f.bouncer == "" || f.etcd == "" {
		return errors.New("-bouncer and -etcdnode are required")
	}
	peers.RedisRetry = f.redisRetry
	redisBin, lookErr := exec.LookPath(f.redis)
	if lookErr != nil {
		redisBin = f.redis
	}
	plan, err := makePlan(f, redisBin)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(plan.Systems, func(s peers.System) bool { return strings.HasPrefix(s.Name, "redis") }) {
		redisBin = "" // only a run with Redis needs redis-server
	} else if lookErr != nil {
		return fmt.Errorf("-redis-server: %w (bench/peers/setup.sh installs it)", lookErr)
	}
	work := f.work
	if work == "" {
		if work, err = os.MkdirTemp("", "bouncer-peers"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	plan.WorkDir = work
	machine := peers.DescribeMachine(redisBin) // before the run: its load average
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	fmt.Fprintf(os.Stderr, "peers: %d systems x %d cells x %d runs (groups: %d cells), about %v of measuring and failover plus the lock table; data in %s\n",
		len(plan.Systems), len(plan.Cells), plan.Runs, len(plan.GroupCells), plan.Estimate().Round(time.Second), work)
	res, runErr := plan.Run(ctx)
	rep := peers.Report{Results: res, Command: f.command, Commit: f.commit,
		Machine: machine}
	if err := rep.Write(f.md, f.png); err != nil {
		return errors.Join(runErr, err)
	}
	if runErr != nil {
		return fmt.Errorf("stopped early (partial report written): %w", runErr)
	}
	fmt.Fprintf(os.Stderr, "peers: wrote %s and %s in %v\n", f.md, f.png, res.Finished.Sub(res.Start).Round(time.Second))
	return nil
}

func makePlan(f flags, redisBin string) (peers.Plan, error) {
	p := peers.Plan{Runs: f.runs, Timing: peers.Timing{Warmup: f.warmup, Window: f.window},
		TableClients: f.tableClients, Floor: f.floor, Log: os.Stderr}
	all := peers.Systems(f.bouncer, f.etcd, redisBin)
	list := f.systems
	if f.only != "" {
		list = f.only
	}
	var names []string
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if !slices.ContainsFunc(all, func(s peers.System) bool { return s.Name == name }) {
			return p, fmt.Errorf("-systems/-only: no system %q", name)
		}
		names = append(names, name)
	}
	for _, s := range all { // in the usual order: the single servers, then the groups
		if slices.Contains(names, s.Name) {
			p.Systems = append(p.Systems, s)
		}
	}
	if len(p.Systems) == 0 {
		return p, errors.New("-systems/-only: no system to run")
	}
	p.Failover = f.failover
	if p.Failover.Kills < 0 || p.Failover.Clients < 1 || p.Failover.Grants < 1 {
		return p, errors.New("-kills must not be negative, -failover-clients and -failover-grants positive")
	}
	counts := func(list string) ([]int, error) {
		var ns []int
		for _, c := range strings.Split(list, ",") {
			if c == "" {
				continue
			}
			n, err := strconv.Atoi(c)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("client count %q: want a positive integer", c)
			}
			ns = append(ns, n)
		}
		return ns, nil
	}
	gs, err := counts(f.group)
	if err != nil {
		return p, err
	}
	for _, w := range []peers.Workload{peers.Uncontended, peers.Contended} {
		for _, n := range gs {
			p.GroupCells = append(p.GroupCells, peers.Cell{Workload: w, Clients: n})
		}
	}
	for _, sweep := range []struct {
		w    peers.Workload
		list string
	}{{peers.Uncontended, f.clients}, {peers.Contended, f.contend}} {
		ns, err := counts(sweep.list)
		if err != nil {
			return p, err
		}
		for _, n := range ns {
			p.Cells = append(p.Cells, peers.Cell{Workload: sweep.w, Clients: n})
		}
	}
	p.Cells = append(p.Cells, peers.Cell{Workload: peers.TryLock, Clients: f.focus},
		peers.Cell{Workload: peers.Mixed, Clients: f.focus})
	if p.Runs < 1 || f.window <= 0 || f.warmup < 0 {
		return p, errors.New("-runs must be positive, -window positive, -warmup not negative")
	}
	return p, nil
}
