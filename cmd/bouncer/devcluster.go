package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newDevClusterCmd) }

type devClusterFlags struct {
	nodes int
	dir   string
	port  int
	host  string
	pprof bool
}

func newDevClusterCmd() *cobra.Command {
	var f devClusterFlags
	cmd := &cobra.Command{
		Use:   "dev-cluster",
		Short: "Run a replicated group of lock nodes on this machine, to try it",
		Long: `Start --nodes members of one replicated group on loopback, each a
'bouncer serve' process with its data under --dir, and print the address
list for the clients (BOUNCER_ADDR). Member i serves clients on port
--port+10*i and raft on the port after it. Kill a member (its pid is
printed) to see a failover; start it again with the command printed for it.
Ctrl-C stops them all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return devCluster(cmd.Context(), f, cmd.OutOrStdout()) },
	}
	fl := cmd.Flags()
	fl.IntVar(&f.nodes, "nodes", 3, "members of the group (1 to 7)")
	fl.StringVar(&f.dir, "dir", "./bouncer-dev", "folder of the members' data (member-1, member-2, ...)")
	fl.IntVar(&f.port, "port", 7400, "base port: member i listens on port+10*i (clients) and port+10*i+1 (raft)")
	fl.StringVar(&f.host, "host", "127.0.0.1", "the address every member listens on")
	fl.BoolVar(&f.pprof, "pprof", false, "members serve Go's profiles on their metrics endpoints (port+10*i+2)")
	return cmd
}

// devMembers returns each member's serve arguments and its client address.
func devMembers(f devClusterFlags) (args [][]string, clients []string) {
	var peers, cls []string
	for i := 1; i <= f.nodes; i++ {
		client := fmt.Sprintf("%s:%d", f.host, f.port+10*i)
		peers = append(peers, fmt.Sprintf("%d=%s:%d", i, f.host, f.port+10*i+1))
		cls = append(cls, fmt.Sprintf("%d=%s", i, client))
		clients = append(clients, client)
	}
	for i := 1; i <= f.nodes; i++ {
		args = append(args, []string{"serve", "--id", fmt.Sprint(i),
			"--peers", strings.Join(peers, ","), "--clients", strings.Join(cls, ","),
			"--listen", clients[i-1], "--metrics", fmt.Sprintf("%s:%d", f.host, f.port+10*i+2),
			"--data", filepath.Join(f.dir, fmt.Sprintf("member-%d", i))})
		if f.pprof {
			args[i-1] = append(args[i-1], "--pprof")
		}
	}
	return args, clients
}

func devCluster(ctx context.Context, f devClusterFlags, out io.Writer) error {
	if f.nodes < 1 || f.nodes > 7 {
		return usageError("--nodes %d: want 1 to 7", f.nodes)
	}
	if f.port < 1 || f.port+10*f.nodes+2 > 65535 {
		return usageError("--port %d: the members' ports would not fit", f.port)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return err
	}
	args, clients := devMembers(f)
	type proc struct {
		cmd  *exec.Cmd
		done chan error
	}
	var procs []*proc
	stopAll := func() {
		for _, p := range procs {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
	}
	for i, a := range args {
		logf, err := os.Create(filepath.Join(f.dir, fmt.Sprintf("member-%d.log", i+1)))
		if err != nil {
			stopAll()
			return err
		}
		cmd := exec.Command(self, a...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			_ = logf.Close()
			stopAll()
			return fmt.Errorf("member %d: %w", i+1, err)
		}
		p := &proc{cmd: cmd, done: make(chan error, 1)}
		go func() { p.done <- cmd.Wait(); _ = logf.Close() }()
		procs = append(procs, p)
		fmt.Fprintf(out, "member %d: pid %d, clients %s, log %s\n  restart: %s %s\n", i+1, cmd.Process.Pid, clients[i],
			logf.Name(), self, strings.Join(a, " "))
	}
	fmt.Fprintf(out, "\nexport BOUNCER_ADDR=%s\n", strings.Join(clients, ","))
	fmt.Fprintf(out, "then: bouncer lock demo -- sh -c 'echo holding $BOUNCER_TOKEN; sleep 5'\n")
	fmt.Fprintf(out, "      bouncer cluster status\n")
	fmt.Fprintf(out, "      kill -9 <the leader's pid> (see cluster status), and lock again\n")
	fmt.Fprintf(out, "Ctrl-C stops the group.\n")

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	exited := make(chan int, len(procs))
	for i, p := range procs {
		go func() {
			err := <-p.done
			p.done <- err // for stopAll
			exited <- i
		}()
	}
	alive := len(procs)
	for alive > 0 {
		select {
		case <-sig:
			fmt.Fprintln(out, "stopping the group")
			stopAll()
			return nil
		case <-ctx.Done():
			stopAll()
			return nil
		case i := <-exited:
			alive--
			fmt.Fprintf(out, "member %d exited (%v); the others go on\n", i+1, exitText(procs[i].cmd))
		}
	}
	return errors.New("every member exited")
}

func exitText(cmd *exec.Cmd) string {
	if cmd.ProcessState == nil {
		return "running"
	}
	return cmd.ProcessState.String()
}
