package main

import (
	"context"
	"fmt"
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
	cmd := &cobra.Command{
		Use:   "bench [flags]",
		Short: "Load a node with lock+unlock cycles; print throughput and acquire latency",
		Long: `Run --clients clients, each with its own session (and its own connection
unless --conns says fewer, shared round-robin), locking and
unlocking --resources resources (client i uses resource i mod R: R equal to
the clients means no contention, 1 means all contend) for --duration after a
short warm-up. Without --addr (or with --local) it starts a node of its own
in this process, on loopback, with its store on disk and fsync on.`,
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
			fmt.Fprintf(cmd.OutOrStdout(), "target=%s clients=%d conns=%d resources=%d mode=%v\n%s\n", target, o.Clients, min(max(o.Conns, 0), o.Clients), o.Resources, o.Mode, r)
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
	return cmd
}
