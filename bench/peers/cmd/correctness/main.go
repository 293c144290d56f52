// Command correctness runs the same lock workload against Bouncer, etcd and
// Redis under the same faults, and judges each: linearizability of what the
// clients observed (bouncer check), client-view mutual exclusion, writes a
// fenced store took out of grant order, and availability. correctness.sh
// builds everything and runs it; see bench/peers/CORRECTNESS.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bouncer-dlm/bouncer/bench/peers"
)

func main() {
	client := flag.String("client", "", "internal: run as one client with this JSON configuration")
	bouncer := flag.String("bouncer", "bouncer", "the bouncer binary (serve, check)")
	etcdnode := flag.String("etcdnode", "etcdnode", "the etcd server binary (cmd/etcdnode)")
	redis := flag.String("redis", "/usr/bin/redis-server", "the redis-server binary")
	work := flag.String("work", "", "directory for each run's histories, beliefs and store log (required)")
	systems := flag.String("systems", strings.Join(peers.CheckSystems, ","), "systems, comma-separated (NAME-3: a group of three)")
	faults := flag.String("faults", strings.Join(peers.Faults, ","), "faults, comma-separated")
	seeds := flag.String("seeds", "1,2", "seeds, comma-separated: each gives the fault's timing and the clients' choices")
	clients := flag.Int("clients", 3, "client processes per run (1 to 16)")
	resources := flag.Int("resources", 2, "resources the clients lock (1 to 16)")
	duration := flag.Duration("duration", 15*time.Second, "length of one run (5s to 2m)")
	ttl := flag.Duration("ttl", 3*time.Second, "lease of sessions and locks, whole seconds (2s to 10s)")
	checkTimeout := flag.Duration("check-timeout", time.Minute, "bound on each bouncer check")
	md := flag.String("md", "", "write the report (markdown) here")
	command := flag.String("command", "", "the command line to name in the report")
	commit := flag.String("commit", "", "the commit to name in the report")
	timeout := flag.Duration("timeout", 14*time.Minute, "give up after this long")
	flag.Parse()
	log.SetFlags(0)

	if *client != "" {
		var cc peers.ClientConfig
		if err := json.Unmarshal([]byte(*client), &cc); err != nil {
			log.Fatalf("correctness client: %v", err)
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		if err := peers.RunClient(ctx, cc, os.Stdout); err != nil {
			log.Fatalf("correctness client %d: %v", cc.ID, err)
		}
		return
	}
	switch {
	case *work == "":
		log.Fatal("correctness: -work is required")
	case *clients < 1 || *clients > 16:
		log.Fatal("correctness: -clients must be 1 to 16")
	case *resources < 1 || *resources > 16:
		log.Fatal("correctness: -resources must be 1 to 16")
	case *duration < 5*time.Second || *duration > 2*time.Minute:
		log.Fatal("correctness: -duration must be 5s to 2m")
	case *ttl < 2*time.Second || *ttl > 10*time.Second || *ttl%time.Second != 0:
		log.Fatal("correctness: -ttl must be whole seconds, 2s to 10s (etcd's leases count in seconds)")
	}
	var seedList []uint64
	for _, s := range strings.Split(*seeds, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			log.Fatalf("correctness: -seeds: %q is not a number", s)
		}
		seedList = append(seedList, n)
	}
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cfg := peers.CorrectnessConfig{Bouncer: *bouncer, EtcdNode: *etcdnode, Redis: *redis, Self: self, Work: *work,
		Systems: split(*systems), Faults: split(*faults), Seeds: seedList, Clients: *clients, Resources: *resources,
		Duration: *duration, TTL: *ttl, CheckTimeout: *checkTimeout,
		Log: func(f string, a ...any) { log.Printf("correctness: "+f, a...) }}
	start := time.Now()
	rows, err := peers.RunCorrectness(ctx, cfg)
	if err != nil {
		log.Fatalf("correctness: %v", err)
	}
	planted, err := peers.Plant(cfg, rows)
	if err != nil {
		log.Fatalf("correctness: %v", err)
	}
	if *md != "" {
		f, err := os.Create(*md)
		if err != nil {
			log.Fatal(err)
		}
		meta := peers.ReportMeta{Command: *command, Commit: *commit, Started: start, Took: time.Since(start), Config: cfg}
		if err := peers.WriteCorrectnessReport(f, meta, rows, planted); err != nil {
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "correctness: wrote %s\n", *md)
	}
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
