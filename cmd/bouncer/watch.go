package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

func init() { commands = append(commands, newWatchCmd) }

type watchFlags struct {
	clientFlags
	json bool
}

// How soon watch tries again after losing its node: from watchRetryMin,
// doubling to watchRetryMax, so that a node back after a restart is seen
// within watchRetryMax, and a node down for long costs a call every
// watchRetryMax.
const (
	watchRetryMin = 100 * time.Millisecond
	watchRetryMax = 2 * time.Second
)

func newWatchCmd() *cobra.Command {
	var f watchFlags
	cmd := &cobra.Command{
		Use:   "watch [flags] NAME",
		Short: "Print a resource's state now and after every change",
		Long: `Print the resource NAME now and after every change, until interrupted.
If the node goes away (a restart, a lost connection, a leader change),
watch says so on stderr, tries again every few seconds at most, and goes
on with the state it finds when the node is back.

With --json, each line is {"time": ..., "resources": [...]}: the time it
was seen and the resource as status NAME --json prints it ([] when not in
use); the README's "JSON output" documents the shape.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return watch(cmd.Context(), f, args[0], cmd.OutOrStdout())
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON lines, each with its time (the shape is in the README)")
	return cmd
}

func watch(ctx context.Context, f watchFlags, name string, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := checkName(name); err != nil {
		return err
	}
	c, err := dial(f.clientFlags)
	if err != nil {
		return err
	}
	defer c.Close()
	w := watcher{f: f, name: name, out: out}
	retry := watchRetryMin
	for {
		got, err := w.stream(ctx, c.API())
		if ctx.Err() != nil {
			return nil
		}
		if !w.started || !watchRetryable(err) {
			// A node never reached, or a refusal that will not change by
			// asking again (bad name, no access), ends the watch.
			return nodeError(err)
		}
		if got {
			retry = watchRetryMin
		}
		if !w.lost {
			fmt.Fprintf(os.Stderr, "bouncer: watch: lost the node at %s (%s); trying again\n", f.addr, whyLost(err))
			w.lost = true
		}
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		retry = min(2*retry, watchRetryMax)
	}
}

// watcher prints one resource's states across reconnects.
type watcher struct {
	f       watchFlags
	name    string
	out     io.Writer
	started bool // a state was printed: from then on a lost node is waited for
	lost    bool // the node was lost and has not answered since
}

// stream follows one Watch stream until it ends, printing each state. It
// says whether it printed any, and why the stream ended.
func (w *watcher) stream(ctx context.Context, api pb.LocksClient) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := api.Watch(ctx, &pb.WatchRequest{Resource: []byte(w.name)})
	if err != nil {
		return false, err
	}
	got := false
	for {
		m, err := stream.Recv()
		if err != nil {
			return got, err
		}
		if w.lost {
			fmt.Fprintf(os.Stderr, "bouncer: watch: the node at %s answers again\n", w.f.addr)
			w.lost = false
		}
		got, w.started = true, true
		if err := w.print(m); err != nil {
			return got, err
		}
	}
}

func (w *watcher) print(m *pb.WatchResponse) error {
	var rs []*pb.Resource
	if m.Exists {
		rs = append(rs, m.Resource)
	}
	switch {
	case w.f.json:
		return writeWatchLine(w.out, time.Now(), rs)
	case !m.Exists:
		_, err := fmt.Fprintf(w.out, "%s: not in use\n", spec.QuoteName(w.name))
		return err
	}
	return printResources(w.out, rs)
}

// watchRetryable says whether a watch that ended with err may go on by
// asking again: the node went away or stopped the stream (a restart, a
// lost connection, a move of the leader), as opposed to a refusal of the
// request itself, or a failure to write the output.
func watchRetryable(err error) bool {
	if errors.Is(err, io.EOF) {
		return true // the node ended the stream: it is stopping
	}
	st, ok := grpcstatus.FromError(err)
	if !ok {
		return false // not the node's: our output failed
	}
	switch st.Code() {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated, codes.Unimplemented,
		codes.ResourceExhausted, codes.OutOfRange, codes.FailedPrecondition:
		return false
	}
	return true
}

// whyLost says in a few words why the stream ended: the node's message,
// without gRPC's "rpc error: code = ..." wrapping.
func whyLost(err error) string {
	if errors.Is(err, io.EOF) {
		return "the node ended the stream"
	}
	if st, ok := grpcstatus.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}
