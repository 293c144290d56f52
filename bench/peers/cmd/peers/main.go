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
	bouncer, etcd, redis      string
	systems, clients, contend string
	focus, tableClients       int
	runs                      int
	warmup, window, timeout   time.Duration
	redisRetry                time.Duration
	md, png, work             string
	command, commit           string
}

func parseFlags() flags {
	var f flags
	flag.StringVar(&f.bouncer, "bouncer", "", "the bouncer binary (required)")
	flag.StringVar(&f.etcd, "etcdnode", "", "the etcdnode binary, from ./cmd/etcdnode (required)")
	flag.StringVar(&f.redis, "redis-server", "redis-server", "the redis-server binary")
	flag.StringVar(&f.systems, "systems", "bouncer,etcd,redis-always,redis-default", "systems to run, of those four")
	flag.StringVar(&f.clients, "clients", "1,8,64,256", "client counts of the uncontended workload")
	flag.StringVar(&f.contend, "contended", "8,64,256", "client counts of the contended workload")
	flag.IntVar(&f.focus, "focus", 64, "client count of the try-lock and shared/exclusive workloads")
	flag.IntVar(&f.tableClients, "table-clients", 64, "clients that take the held locks (0: skip that workload)")
	flag.IntVar(&peers.LockTableSize, "table-locks", peers.LockTableSize, "locks held in the large lock table workload")
	flag.IntVar(&f.runs, "runs", 3, "runs; figures are medians over them")
	flag.DurationVar(&f.warmup, "warmup", 500*time.Millisecond, "warm-up before each measured window")
	flag.DurationVar(&f.window, "window", 3*time.Second, "measured window of each cell")
	flag.DurationVar(&f.timeout, "timeout", 14*time.Minute, "give up (and stop every server) after this long")
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
	redisBin, err := exec.LookPath(f.redis)
	if err != nil {
		return fmt.Errorf("-redis-server: %w (bench/peers/setup.sh installs it)", err)
	}
	peers.RedisRetry = f.redisRetry
	plan, err := makePlan(f, redisBin)
	if err != nil {
		return err
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
	fmt.Fprintf(os.Stderr, "peers: %d systems x %d cells x %d runs, about %v of measuring plus the lock table; data in %s\n",
		len(plan.Systems), len(plan.Cells), plan.Runs, plan.Estimate().Round(time.Second), work)
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
		TableClients: f.tableClients, Log: os.Stderr}
	all := peers.Systems(f.bouncer, f.etcd, redisBin)
	for _, name := range strings.Split(f.systems, ",") {
		i := slices.IndexFunc(all, func(s peers.System) bool { return s.Name == name })
		if i < 0 {
			return p, fmt.Errorf("-systems: no system %q", name)
		}
		p.Systems = append(p.Systems, all[i])
	}
	if len(p.Systems) == 0 || p.Systems[0].Name != "bouncer" {
		return p, errors.New("-systems: bouncer must come first (the ratios are to it)")
	}
	for _, sweep := range []struct {
		w    peers.Workload
		list string
	}{{peers.Uncontended, f.clients}, {peers.Contended, f.contend}} {
		for _, c := range strings.Split(sweep.list, ",") {
			if c == "" {
				continue
			}
			n, err := strconv.Atoi(c)
			if err != nil || n < 1 {
				return p, fmt.Errorf("client count %q: want a positive integer", c)
			}
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
