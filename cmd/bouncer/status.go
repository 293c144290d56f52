package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newStatusCmd) }

type statusFlags struct {
	clientFlags
	json    bool
	prefix  string
	session string // only this session's locks: a hex prefix of its tag
	waits   bool   // who blocks whom, for people (waits.go)
	dot     bool   // who blocks whom, as Graphviz
}

func newStatusCmd() *cobra.Command {
	var f statusFlags
	cmd := &cobra.Command{
		Use:   "status [flags] [NAME]",
		Short: "Show resources in use: holders, queues, how long, and value blocks",
		Long: `Show one resource (NAME) or every resource in use (in name order), with its
holders (tag:MODE#TOKEN and how long held), conversion queue and wait queue
(tag:MODE and how long waited), one per line, and its value block. Sessions
appear by tag, a hash of their id: ids are capabilities and never leave the
node. bouncer lock prints its own session's tag while it waits.

With --session TAG, show only the locks and requests of the session whose
tag starts with TAG (at least 4 hex digits).

With --json, print one JSON array of resources (the README's "JSON output"
documents the shape; an empty node prints []).

With --waits (or --dot, as Graphviz), show who blocks whom instead: each
queued request, how long it has waited, and each session it waits for on
its resource (a holder of a conflicting mode, or a request queued ahead).`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return status(cmd.Context(), f, args, cmd.OutOrStdout())
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON: one array of resources (the shape is in the README)")
	cmd.Flags().StringVar(&f.prefix, "prefix", "", "only resources whose names start with this")
	cmd.Flags().StringVar(&f.session, "session", "", "only the locks and requests of the session whose tag starts with this (hex, at least 4 digits)")
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
		if len(args) > 0 || f.prefix != "" || f.session != "" || f.json && f.dot {
			return usageError("--waits and --dot show every queue: no NAME, --prefix or --session, and --dot without --json")
		}
		return waits(ctx, f, out)
	}
	if len(args) == 1 {
		if err := checkName(args[0]); err != nil {
			return err
		}
	}
	var match tagMatch
	if f.session != "" {
		var err error
		if match, err = parseTagMatch(f.session); err != nil {
			return usageError("--session: %v", err)
		}
	}
	c, err := dial(f.clientFlags)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	resources, err := fetchResources(ctx, c.API(), args, f.prefix)
	if err != nil {
		return nodeError(err)
	}
	if match != "" {
		resources = sessionOnly(resources, match)
	}
	if f.json {
		return writeJSON(out, jsonResources(resources))
	}
	if len(resources) == 0 {
		switch {
		case match != "":
			fmt.Fprintf(os.Stderr, "no session tagged %s holds or waits for anything here\n", match)
		case len(args) == 1:
			fmt.Fprintf(os.Stderr, "%s is not in use\n", spec.QuoteName(args[0]))
		}
		if len(args) == 1 || match != "" {
			return nil
		}
	}
	return printResources(out, resources)
}

// fetchResources reads the resource NAME (args[0]; none if not in use),
// or every resource in use whose name starts with prefix, a page at a time.
func fetchResources(ctx context.Context, api pb.LocksClient, args []string, prefix string) ([]*pb.Resource, error) {
	if len(args) == 1 {
		d, err := api.Describe(ctx, &pb.DescribeRequest{Resource: []byte(args[0])})
		if err != nil || !d.Exists {
			return nil, err
		}
		if prefix != "" && !strings.HasPrefix(args[0], prefix) {
			return nil, nil
		}
		return []*pb.Resource{d.Resource}, nil
	}
	var resources []*pb.Resource
	var after []byte
	for {
		page, err := api.List(ctx, &pb.ListRequest{Prefix: []byte(prefix), StartAfter: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		resources = append(resources, page.Resources...)
		if len(page.Next) == 0 {
			return resources, nil
		}
		after = page.Next
	}
}

// tagMatch is what --session matches: a prefix of a session's tag in
// lower-case hex.
type tagMatch string

// tagMatchMin is the fewest hex digits --session takes: fewer would match
// too many sessions to mean one.
const tagMatchMin = 4

func parseTagMatch(s string) (tagMatch, error) {
	s = strings.ToLower(s)
	if len(s) < tagMatchMin || len(s) > 2*8 {
		return "", fmt.Errorf("%q: a tag is %d to 16 hex digits", s, tagMatchMin)
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return "", fmt.Errorf("%q: a tag is hex digits", s)
		}
	}
	return tagMatch(s), nil
}

func (m tagMatch) matches(l *pb.Lock) bool {
	return strings.HasPrefix(hex.EncodeToString(l.SessionTag), string(m))
}

// sessionOnly keeps, of each resource, the locks and requests of the
// sessions m matches, and drops the resources left with none. The node
// has no index by session (nor any call that takes a tag), and the tag is
// all that others may know of a session; so the filter runs here, over
// the same pages status reads anyway.
func sessionOnly(rs []*pb.Resource, m tagMatch) []*pb.Resource {
	keep := func(ls []*pb.Lock) []*pb.Lock {
		var out []*pb.Lock
		for _, l := range ls {
			if m.matches(l) {
				out = append(out, l)
			}
		}
		return out
	}
	var out []*pb.Resource
	for _, r := range rs {
		c := &pb.Resource{Name: r.Name, Value: r.Value, ValueValid: r.ValueValid, DelayRemaining: r.DelayRemaining,
			Limit: r.Limit, Holders: keep(r.Holders), Converting: keep(r.Converting), Waiting: keep(r.Waiting)}
		if len(c.Holders)+len(c.Converting)+len(c.Waiting) > 0 {
			out = append(out, c)
		}
	}
	return out
}

// queueRowsMax is how many holders, conversions or waiters of one
// resource the table shows, one a line; the rest are counted on a last
// line (--json lists them all).
const queueRowsMax = 20

// printResources prints a table of resources: a row per resource, and
// when one has several holders or waiters, one under another on the rows
// below, so that a long queue reads down a column instead of across the
// screen.
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
		cols := [3][]string{lockLines(r.Holders, true), lockLines(r.Converting, false), lockLines(r.Waiting, false)}
		rows := max(1, len(cols[0]), len(cols[1]), len(cols[2]))
		for i := range rows {
			name, val := "", ""
			if i == 0 {
				name, val = spec.QuoteName(string(r.Name)), value
			}
			cell := func(c []string) string {
				switch {
				case i < len(c):
					return c[i]
				case i == 0:
					return "-"
				}
				return ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, cell(cols[0]), cell(cols[1]), cell(cols[2]), val)
		}
	}
	return tw.Flush()
}

// lockLines is a column of the table: one line per lock, at most
// queueRowsMax and a count of the rest.
func lockLines(ls []*pb.Lock, holder bool) []string {
	var lines []string
	for i, l := range ls {
		if i == queueRowsMax {
			lines = append(lines, fmt.Sprintf("(+%d more)", len(ls)-i))
			break
		}
		lines = append(lines, lockText(l, holder))
	}
	return lines
}

// lockText is one lock for people: "a1b2c3d4:EX#17 12.3s" for a holder
// (how long held; "PR->EX" if it converts), "e5f6a7b8:EX 3.1s" for a
// waiter and "a1b2c3d4:PR->EX 3.1s" in the conversion queue (how long
// waited), with the session's label after it when it has one.
func lockText(l *pb.Lock, holder bool) string {
	p := shortTag(l.SessionTag) + ":" + modeName(l.Mode)
	if l.ConvertingTo != pb.Mode_MODE_UNSPECIFIED {
		p += "->" + modeName(l.ConvertingTo)
	}
	if l.Permits != 0 {
		p += fmt.Sprintf("x%d", l.Permits) // a semaphore's permits
	}
	if holder && l.Token != 0 {
		p += fmt.Sprintf("#%d", l.Token)
	}
	if holder {
		p += " " + durText(l.HeldFor.AsDuration())
	} else {
		p += " " + durText(l.WaitedFor.AsDuration())
	}
	if label := l.Label; label != "" {
		p += " " + quoteLabel(label)
	}
	return p
}

// durText is a duration for people: "340ms", "12.3s", "4m5s".
func durText(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// quoteLabel shows a label as a name is shown (a client chose it: it may
// hold anything), in brackets.
func quoteLabel(label string) string { return "[" + spec.QuoteName(label) + "]" }

// modeName is spec's name of a wire mode; one this side does not know is
// shown by its number, never as another mode.
func modeName(m pb.Mode) string {
	sm, err := wire.ModeFromWire(m)
	if err != nil {
		return fmt.Sprintf("?%d", int32(m))
	}
	return sm.String()
}
