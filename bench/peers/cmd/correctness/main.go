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
	"path/filepath"
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
	duration := flag.Duration("duration", 10*time.Second, "length of one run (5s to 2m): clients take locks until then, and every fault is over by 3s + 2 TTLs")
	ttl := flag.Duration("ttl", 3*time.Second, "lease of sessions and locks, whole seconds (2s to 10s)")
	checkTimeout := flag.Duration("check-timeout", time.Minute, "bound on each bouncer check")
	md := flag.String("md", "", "write the report (markdown) here")
	plotPath := flag.String("plot", "", "draw the plot (PNG) here, shown in the report (default: beside -md, NAME.png, NAME its name in lower case)")
	pages := flag.String("pages", "", "copy the failed checks' replay and Porcupine pages into this directory, linked from the report; its *.html are replaced (default: beside -md, NAME-pages)")
	command := flag.String("command", "", "the command line to name in the report")
	commit := flag.String("commit", "", "the commit to name in the report")
	timeout := flag.Duration("timeout", 14*time.Minute, "give up after this long")
	again := flag.Bool("report-again", false, "run nothing: write the report (-md) again from the last run's records in -work")
	also := flag.String("also", "", "the work directory (-work) of a second run with other seeds, whose table the report shows too")
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
	if *again {
		if *work == "" || *md == "" {
			log.Fatal("correctness: -report-again needs -work and -md")
		}
		rec, err := peers.LoadRecord(*work)
		if err != nil {
			log.Fatalf("correctness: %v", err)
		}
		if err := writeReport(*md, *plotPath, *pages, *also, rec.Meta, rec.Rows, rec.Planted); err != nil {
			log.Fatalf("correctness: %v", err)
		}
		fmt.Fprintf(os.Stderr, "correctness: wrote %s again from %s\n", *md, *work)
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
	case *duration < 4*time.Second+2**ttl:
		log.Fatalf("correctness: -duration must be at least 4s + 2 TTLs (%v), so that every fault is over a second before the clients stop", 4*time.Second+2**ttl)
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
	meta := peers.ReportMeta{Command: *command, Commit: *commit, Started: start, Took: time.Since(start), Config: cfg}
	if err := peers.SaveRecord(peers.RunRecord{Meta: meta, Rows: rows, Planted: planted}); err != nil {
		log.Fatalf("correctness: %v", err)
	}
	if *md != "" {
		if err := writeReport(*md, *plotPath, *pages, *also, meta, rows, planted); err != nil {
			log.Fatalf("correctness: %v", err)
		}
		fmt.Fprintf(os.Stderr, "correctness: wrote %s\n", *md)
	}
}

// writeReport writes the report at md, the plot at plotPath and the failed
// checks' pages into pages ("": beside md, named after it), with the table
// of the run in also too (if not "").
func writeReport(md, plotPath, pages, also string, meta peers.ReportMeta, rows []peers.CheckRow, planted []peers.PlantedCheck) error {
	var second *peers.RunRecord
	if also != "" {
		rec, err := peers.LoadRecord(also)
		if err != nil {
			return fmt.Errorf("-also: %w", err)
		}
		second = &rec
	}
	name := filepath.Join(filepath.Dir(md), strings.ToLower(strings.TrimSuffix(filepath.Base(md), filepath.Ext(md))))
	if plotPath == "" {
		plotPath = name + ".png"
	}
	if pages == "" {
		pages = name + "-pages"
	}
	cfg := meta.Config
	drawn, err := peers.WriteCorrectnessPlot(plotPath, rows, cfg.Systems, cfg.Faults)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if drawn {
		meta.Plot = relativeTo(md, plotPath)
	}
	if err := peers.CopyPages(pages, peers.Shown(cfg.Faults, cfg.Systems, rows)); err != nil {
		return fmt.Errorf("pages: %w", err)
	}
	meta.Pages = relativeTo(md, pages)
	f, err := os.Create(md)
	if err != nil {
		return err
	}
	if err := peers.WriteCorrectnessReport(f, meta, rows, planted, second); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// relativeTo is target as the report at md links it.
func relativeTo(md, target string) string {
	rel, err := filepath.Rel(filepath.Dir(md), target)
	if err != nil {
		return target
	}
	return filepath.ToSlash(rel)
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
