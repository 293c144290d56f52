package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/bouncer-dlm/bouncer/bench"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newBenchCmd) }

func newBenchCmd() *cobra.Command {
	var f clientFlags
	var o bench.Options
	var mode string
	var local bool
	var cpuProfile string
	var floor bool
	var fsyncDir string
	cmd := &cobra.Command{
		Use:   "bench [flags]",
		Short: "Load a node with lock+unlock cycles; print throughput and acquire latency",
		Long: `Run --clients clients, each with its own session (and its own connection
unless --conns says fewer, shared round-robin), locking and
unlocking --resources resources (client i uses resource i mod R: R equal to
the clients means no contention, 1 means all contend) for --duration after a
short warm-up. Without --addr (or with --local) it starts a node of its own
in this process, on loopback, with its store on disk and fsync on.

After the load it measures, in the same process, the floor of a cycle on this
machine (--floor): a raw TCP ping-pong and a gRPC stream ping-pong over as
many loopback connections, and the latency of a small write and fdatasync in
--fsync-dir; and it prints the cycle's CPU and latency as ratios to them. A
cycle is two round trips. The CPU per cycle is this process's: the clients'
and, with a local node, the node's too.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := spec.ParseMode(mode)
			if err != nil {
				return usageError("--mode: %v", err)
			}
			o.Mode = m
			if !local && cmd.Flags().Changed("addr") {
				cfg, err := f.config()
				if err != nil {
					return usageError("%v", err)
				}
				addrs, err := hostPorts(f.addr)
				if err != nil {
					return err
				}
				if err := reach(addrs, max(f.timeout, time.Millisecond)); err != nil {
					return err
				}
				o.Addr, o.Config = f.addr, cfg
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if cpuProfile != "" {
				out, err := os.Create(cpuProfile)
				if err != nil {
					return usageError("--cpuprofile: %v", err)
				}
				defer out.Close()
				if err := pprof.StartCPUProfile(out); err != nil {
					return usageError("--cpuprofile: %v", err)
				}
				defer pprof.StopCPUProfile()
			}
			r, err := bench.Run(ctx, o)
			if err != nil {
				return nodeError(err)
			}
			target := o.Addr
			if target == "" {
				target = "local node (disk, fsync on)"
			}
			conns := o.Clients
			if o.Conns > 0 {
				conns = min(o.Conns, o.Clients)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "target=%s clients=%d conns=%d resources=%d mode=%v\n%s\n", target, o.Clients, conns, o.Resources, o.Mode, r)
			if floor {
				return printFloor(out, r, conns, min(o.Duration, 3*time.Second), fsyncDir, o.Addr == "")
			}
			return nil
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().IntVar(&o.Clients, "clients", 64, "concurrent clients")
	cmd.Flags().IntVar(&o.Resources, "resources", 64, "resources the clients spread over")
	cmd.Flags().IntVar(&o.Conns, "conns", 0, "connections the clients share (0: one per client)")
	cmd.Flags().DurationVar(&o.Duration, "duration", 10*time.Second, "how long to measure")
	cmd.Flags().StringVar(&mode, "mode", "EX", "lock mode")
	cmd.Flags().BoolVar(&local, "local", false, "start a node in this process even if --addr is set")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run (client and, if local, node) to this file")
	cmd.Flags().BoolVar(&floor, "floor", true, "also measure the transport floor and fsync latency, and print ratios to them")
	cmd.Flags().StringVar(&fsyncDir, "fsync-dir", "", "directory whose file system's fsync latency to measure (default: the temporary directory, where a local node's store is)")
	return cmd
}

// printFloor measures the floor of a cycle (two round trips of a raw TCP
// and of a gRPC stream ping-pong over conns connections, for d each; an
// fsync in dir) and prints the run's figures as ratios to it.
func printFloor(out io.Writer, r bench.Result, conns int, d time.Duration, dir string, local bool) error {
	tcp, err := bench.TCPFloor(conns, d)
	if err != nil {
		return fmt.Errorf("tcp floor: %w", err)
	}
	stream, err := bench.GRPCStreamFloor(conns, d)
	if err != nil {
		return fmt.Errorf("grpc stream floor: %w", err)
	}
	fsync, err := bench.FsyncLatency(dir, 200)
	if err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	fmt.Fprintf(out, "floor (%d connections): tcp %v; grpc stream %v; fsync p50=%v\n", conns, tcp, stream,
		fsync.Round(time.Microsecond))
	ratio := func(a, b time.Duration) string {
		if b <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1fx", float64(a)/float64(b))
	}
	whose := "clients only (the node is elsewhere)"
	if local {
		whose = "clients and node"
	}
	fmt.Fprintf(out, "ratios: cpu/cycle (%s) = %s two tcp round trips, %s two grpc stream round trips; acquire p50 = %s fsync\n",
		whose, ratio(r.CPUPerCycle(), 2*tcp.CPUPer()), ratio(r.CPUPerCycle(), 2*stream.CPUPer()), ratio(r.P50, fsync))
	return nil
}
