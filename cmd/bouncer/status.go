package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
)

func init() { commands = append(commands, newStatusCmd, newWatchCmd) }

type statusFlags struct {
	clientFlags
	json   bool
	prefix string
	waits  bool // who blocks whom, for people (waits.go)
	dot    bool // who blocks whom, as Graphviz
}

func newStatusCmd() *cobra.Command {
	var f statusFlags
	cmd := &cobra.Command{
		Use:   "status [flags] [NAME]",
		Short: "Show resources in use: holders, queues and value blocks",
		Long: `Show one resource (NAME) or every resource in use (in name order), with its
holders, conversion queue, wait queue and value block. Sessions appear by
tag, a hash of their id: ids are capabilities and never leave the node.

With --waits (or --dot, as Graphviz), show who blocks whom instead: each
queued request, how long it has waited, and each session it waits for on
its resource (a holder of a conflicting mode, or a request queued ahead).`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return status(cmd.Context(), f, args, cmd.OutOrStdout())
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON (one object per resource)")
	cmd.Flags().StringVar(&f.prefix, "prefix", "", "only resources whose names start with this")
	cmd.Flags().BoolVar(&f.waits, "waits", false,
		"show who blocks whom instead: each queued request, how long it has waited and the sessions it waits for (with --json, the graph as one object)")
	cmd.Flags().BoolVar(&f.dot, "dot", false, "show who blocks whom as a Graphviz digraph (pipe it to dot -Tsvg)")
	return cmd
}

// dial connects for one command: clientFlags.connect checks --addr and
// that the node takes connections, so that a node that is down fails at once.
func dial(f clientFlags) (*client.Client, error) { return f.connect() }

func status(ctx context.Context, f statusFlags, args []string, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.waits || f.dot {
		if len(args) > 0 || f.prefix != "" || f.json && f.dot {
			return usageError("--waits and --dot show every queue: no NAME or --prefix, and --dot without --json")
		}
		return waits(ctx, f, out)
	}
	c, err := dial(f.clientFlags)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	var resources []*pb.Resource
	if len(args) == 1 {
		d, err := c.API().Describe(ctx, &pb.DescribeRequest{Resource: []byte(args[0])})
		if err != nil {
			return nodeError(err)
		}
		if !d.Exists {
			fmt.Fprintf(os.Stderr, "%s is not in use\n", spec.QuoteName(args[0]))
			return nil
		}
		resources = append(resources, d.Resource)
	} else {
		var after []byte
		for {
			page, err := c.API().List(ctx, &pb.ListRequest{Prefix: []byte(f.prefix), StartAfter: after, Limit: 1000})
			if err != nil {
				return nodeError(err)
			}
			resources = append(resources, page.Resources...)
			if len(page.Next) == 0 {
				break
			}
			after = page.Next
		}
	}
	if f.json {
		for _, r := range resources {
			b, err := protojson.Marshal(r)
			if err != nil {
				return err
			}
			fmt.Fprintln(out, string(b))
		}
		return nil
	}
	return printResources(out, resources)
}

func printResources(out io.Writer, resources []*pb.Resource) error {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tHOLDERS\tCONVERTING\tWAITING\tVALUE")
	for _, r := range resources {
		value := fmt.Sprintf("%q", r.Value)
		if !r.ValueValid {
			value += " (invalid)"
		}
		if r.DelayRemaining != nil {
			value += fmt.Sprintf(" lock-delay %v", r.DelayRemaining.AsDuration())
		}
		if r.Limit != 0 {
			value += fmt.Sprintf(" limit=%d", r.Limit)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", spec.QuoteName(string(r.Name)), locks(r.Holders, true), locks(r.Converting, false),
			locks(r.Waiting, false), value)
	}
	return tw.Flush()
}

func locks(ls []*pb.Lock, tokens bool) string {
	if len(ls) == 0 {
		return "-"
	}
	var parts []string
	for _, l := range ls {
		p := hex.EncodeToString(l.SessionTag)[:8] + ":" + modeName(l.Mode)
		if l.ConvertingTo != pb.Mode_MODE_UNSPECIFIED {
			p += "->" + modeName(l.ConvertingTo)
		}
		if l.Permits != 0 {
			p += fmt.Sprintf("x%d", l.Permits) // a semaphore's permits
		}
		if tokens && l.Token != 0 {
			p += fmt.Sprintf("#%d", l.Token)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

// modeName is spec's name of a wire mode; one this side does not know is
// shown by its number, never as another mode.
func modeName(m pb.Mode) string {
	sm, err := wire.ModeFromWire(m)
	if err != nil {
		return fmt.Sprintf("?%d", int32(m))
	}
	return sm.String()
}

type watchFlags struct {
	clientFlags
	json bool
}

func newWatchCmd() *cobra.Command {
	var f watchFlags
	cmd := &cobra.Command{
		Use:   "watch [flags] NAME",
		Short: "Print a resource's state now and after every change",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return watch(cmd.Context(), f, args[0], cmd.OutOrStdout())
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON lines")
	return cmd
}

func watch(ctx context.Context, f watchFlags, name string, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	c, err := dial(f.clientFlags)
	if err != nil {
		return err
	}
	defer c.Close()
	stream, err := c.API().Watch(ctx, &pb.WatchRequest{Resource: []byte(name)})
	if err != nil {
		return nodeError(err)
	}
	for {
		w, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return nodeError(err)
		}
		switch {
		case f.json:
			b, err := protojson.Marshal(w)
			if err != nil {
				return err
			}
			fmt.Fprintln(out, string(b))
		case !w.Exists:
			fmt.Fprintf(out, "%s: not in use\n", spec.QuoteName(name))
		default:
			if err := printResources(out, []*pb.Resource{w.Resource}); err != nil {
				return err
			}
		}
	}
}
