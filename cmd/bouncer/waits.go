package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
)

// waitsLimit is how many queued requests status --waits asks for: the
// most a node answers by default (ListLimitMax).
const waitsLimit = 1000

// waits prints who blocks whom (status --waits, --dot): the node's
// wait-for graph, for people, as Graphviz, or as JSON.
func waits(ctx context.Context, f statusFlags, out io.Writer) error {
	c, err := dial(f.clientFlags)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	g, err := c.API().WaitGraph(ctx, &pb.WaitGraphRequest{Limit: waitsLimit})
	if err != nil {
		return nodeError(err)
	}
	switch {
	case f.json:
		return writeJSON(out, jsonWaitGraphOf(g))
	case f.dot:
		return printWaitsDot(out, g)
	}
	return printWaits(out, g)
}

// shortTag is the part of a session tag that status shows (as its table
// does): enough to tell a few sessions apart by eye.
func shortTag(tag []byte) string {
	return hex.EncodeToString(tag[:min(len(tag), 4)])
}

// waitedText says how long a waiter has waited: "12.3s", "340ms", or "?"
// when the node cannot tell.
func waitedText(w *pb.Waiter) string {
	if w.Waited == nil {
		return "?"
	}
	d := w.Waited.AsDuration()
	if d >= time.Second {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Millisecond).String()
}

// wantText says what a waiter waits for: "EX", "PR->EX" for a conversion,
// or "2 permits" on a semaphore.
func wantText(w *pb.Waiter) string {
	switch {
	case w.Permits != 0:
		return permitsText(w.Permits)
	case w.Conversion:
		return modeName(w.Held) + "->" + modeName(w.Mode)
	}
	return modeName(w.Mode)
}

// modeText is a lock's mode, or its permits on a semaphore.
func modeText(mode pb.Mode, permits uint32) string {
	if permits != 0 {
		return permitsText(permits)
	}
	return modeName(mode)
}

func permitsText(n uint32) string {
	if n == 1 {
		return "1 permit"
	}
	return fmt.Sprintf("%d permits", n)
}

// edgesOf returns the edges out of waiter w, in the node's order.
func edgesOf(g *pb.WaitGraphResponse, w *pb.Waiter) []*pb.WaitEdge {
	var out []*pb.WaitEdge
	for _, e := range g.Edges {
		if string(e.WaiterTag) == string(w.SessionTag) && string(e.Resource) == string(w.Resource) {
			out = append(out, e)
		}
	}
	return out
}

// tokenOf is the token of the holder blocker on resource, 0 if not listed.
func tokenOf(g *pb.WaitGraphResponse, blocker, resource []byte) uint64 {
	for _, h := range g.Holders {
		if string(h.SessionTag) == string(blocker) && string(h.Resource) == string(resource) {
			return h.Token
		}
	}
	return 0
}

// blockerText says why one edge blocks: "held PR by d4e5f6a7 (token 17)"
// or "queued behind e5f6a7b8 (EX)".
func blockerText(g *pb.WaitGraphResponse, e *pb.WaitEdge) string {
	if e.Reason == pb.WaitReason_WAIT_REASON_HOLDER {
		s := fmt.Sprintf("held %s by %s", modeText(e.Blocking, e.Permits), shortTag(e.BlockerTag))
		if tok := tokenOf(g, e.BlockerTag, e.Resource); tok != 0 {
			s += fmt.Sprintf(" (token %d)", tok)
		}
		return s
	}
	return fmt.Sprintf("queued behind %s (%s)", shortTag(e.BlockerTag), modeText(e.Blocking, e.Permits))
}

// printWaits prints one line per queued request, e.g.
// "a1b2c3d4 waits 12.3s for EX on jobs/x: held PR by d4e5f6a7 (token 17)".
func printWaits(out io.Writer, g *pb.WaitGraphResponse) error {
	if len(g.Waiters) == 0 {
		_, err := fmt.Fprintln(out, "no request is waiting")
		return err
	}
	var b strings.Builder
	for _, w := range g.Waiters {
		fmt.Fprintf(&b, "%s waits %s for %s on %s: ", shortTag(w.SessionTag), waitedText(w), wantText(w),
			spec.QuoteName(string(w.Resource)))
		var why []string
		for _, e := range edgesOf(g, w) {
			why = append(why, blockerText(g, e))
		}
		if len(why) == 0 {
			why = append(why, "no session (a lock-delay, or about to be granted)")
		}
		b.WriteString(strings.Join(why, "; "))
		b.WriteByte('\n')
	}
	if g.Truncated {
		fmt.Fprintf(&b, "(more requests wait than shown: the first %d by resource name)\n", len(g.Waiters))
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// dotQuote makes s a DOT quoted string: within quotes only the quote and
// the backslash need escaping, and a newline is written as \n (a line
// break in a label). s should already hold no other control bytes
// (spec.QuoteName escapes them).
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`)
	return `"` + r.Replace(s) + `"`
}

// wantOf says what the waiter of e wants: its mode, or its permits.
func wantOf(g *pb.WaitGraphResponse, e *pb.WaitEdge) string {
	for _, w := range g.Waiters {
		if string(w.SessionTag) == string(e.WaiterTag) && string(w.Resource) == string(e.Resource) {
			return wantText(w)
		}
	}
	return modeName(e.Wanted)
}

// printWaitsDot prints g as a Graphviz digraph: a node per session (named
// by its full tag, labelled by its short one and what it waits for), an
// edge per wait, labelled with the resource and why.
func printWaitsDot(out io.Writer, g *pb.WaitGraphResponse) error {
	var b strings.Builder
	b.WriteString("digraph waits {\n")
	b.WriteString("  node [shape=box, fontname=monospace];\n")
	if len(g.Waiters) == 0 {
		b.WriteString("  label=\"no request is waiting\";\n")
	}
	if g.Truncated {
		b.WriteString("  label=\"more requests wait than shown\";\n")
	}
	labels := map[string][]string{} // lines of each session's label, by full tag
	var order []string
	node := func(tag []byte) string {
		id := hex.EncodeToString(tag)
		if _, ok := labels[id]; !ok {
			labels[id] = []string{shortTag(tag)}
			order = append(order, id)
		}
		return id
	}
	for _, w := range g.Waiters {
		id := node(w.SessionTag)
		labels[id] = append(labels[id], fmt.Sprintf("waits %s for %s on %s", waitedText(w), wantText(w),
			spec.QuoteName(string(w.Resource))))
	}
	for _, h := range g.Holders {
		id := node(h.SessionTag)
		labels[id] = append(labels[id], fmt.Sprintf("holds %s on %s (token %d)", modeText(h.Mode, h.Permits),
			spec.QuoteName(string(h.Resource)), h.Token))
	}
	for _, e := range g.Edges {
		node(e.WaiterTag)
		node(e.BlockerTag)
	}
	for _, id := range order {
		fmt.Fprintf(&b, "  %s [label=%s];\n", dotQuote(id), dotQuote(strings.Join(labels[id], "\n")))
	}
	for _, e := range g.Edges {
		why := "held " + modeText(e.Blocking, e.Permits)
		if e.Reason != pb.WaitReason_WAIT_REASON_HOLDER {
			why = "behind " + modeText(e.Blocking, e.Permits)
		}
		label := fmt.Sprintf("%s: wants %s, %s", spec.QuoteName(string(e.Resource)), wantOf(g, e), why)
		fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", dotQuote(hex.EncodeToString(e.WaiterTag)),
			dotQuote(hex.EncodeToString(e.BlockerTag)), dotQuote(label))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(out, b.String())
	return err
}
