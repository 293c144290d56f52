package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
)

// How `bouncer lock` watches its own wait: it first looks after
// waitFirstLook (a lock had at once says nothing), then every waitLook.
// waitShownMax bounds the holders and the requests ahead it names.
const (
	waitFirstLook = 200 * time.Millisecond
	waitLook      = time.Second
	waitShownMax  = 10
)

// reportWait tells the user on w, while the session tagged tag waits for
// name, who holds name and who is ahead, each by tag (and label), mode
// and how long; and its own tag, to find it in status. It looks with
// Describe on a connection of its own, and speaks only when who holds or
// who is ahead changes (not at every tick of their clocks). The returned
// stop ends it and returns once it is silent for good.
func reportWait(ctx context.Context, f clientFlags, tag []byte, name string, w io.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var done sync.WaitGroup
	done.Add(1)
	go func() {
		defer done.Done()
		if len(tag) == 0 {
			return // a node that does not tell a session its tag: it cannot be found
		}
		c, err := dial(f)
		if err != nil {
			return
		}
		defer c.Close()
		last := ""
		t := time.NewTimer(waitFirstLook)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			lctx, lcancel := context.WithTimeout(ctx, f.timeout)
			d, err := c.API().Describe(lctx, &pb.DescribeRequest{Resource: []byte(name)})
			lcancel()
			if err == nil && d.Exists {
				if msg, key := waitMessage(d.Resource, tag); key != "" && key != last && ctx.Err() == nil {
					_, _ = io.WriteString(w, msg)
					last = key
				}
			}
			t.Reset(waitLook)
		}
	}()
	return func() {
		cancel()
		done.Wait()
	}
}

// waitMessage says who holds r and who is ahead of the session tagged tag
// in its queues; key is the same for the same holders and queue (modes
// included, times left out), "" if the session is not queued on r.
func waitMessage(r *pb.Resource, tag []byte) (msg, key string) {
	var me *pb.Lock
	var ahead []*pb.Lock
	ahead = append(ahead, r.Converting...) // conversions go first
	for _, l := range r.Waiting {
		if bytes.Equal(l.SessionTag, tag) {
			me = l
			break
		}
		ahead = append(ahead, l)
	}
	if me == nil {
		return "", ""
	}
	var b, k strings.Builder
	fmt.Fprintf(&b, "bouncer: session %s waits %s for %s on %s", shortTag(tag), durText(me.WaitedFor.AsDuration()),
		modeText(me.Mode, me.Permits), spec.QuoteName(string(r.Name)))
	if label := me.Label; label != "" {
		fmt.Fprintf(&b, " %s", quoteLabel(label))
	}
	b.WriteString(":\n")
	line := func(what string, l *pb.Lock, how string, d time.Duration) {
		fmt.Fprintf(&b, "  %-9s %s %s", what, shortTag(l.SessionTag), modeText(l.Mode, l.Permits))
		if l.ConvertingTo != pb.Mode_MODE_UNSPECIFIED {
			fmt.Fprintf(&b, "->%s", modeName(l.ConvertingTo))
		}
		if l.Token != 0 {
			fmt.Fprintf(&b, " token %d", l.Token)
		}
		fmt.Fprintf(&b, " %s %s", how, durText(d))
		if label := l.Label; label != "" {
			fmt.Fprintf(&b, " %s", quoteLabel(label))
		}
		b.WriteByte('\n')
		fmt.Fprintf(&k, "%s %x %d %d %d %d|", what, l.SessionTag, l.Mode, l.ConvertingTo, l.Permits, l.Token)
	}
	list := func(what string, ls []*pb.Lock, how string, since func(*pb.Lock) time.Duration) {
		for i, l := range ls {
			if i == waitShownMax {
				fmt.Fprintf(&b, "  (+%d more %s)\n", len(ls)-i, strings.TrimSpace(what))
				fmt.Fprintf(&k, "+%d %s|", len(ls)-i, what)
				return
			}
			line(what, l, how, since(l))
		}
	}
	list("held by", r.Holders, "for", func(l *pb.Lock) time.Duration { return l.HeldFor.AsDuration() })
	list("ahead", ahead, "waiting", func(l *pb.Lock) time.Duration { return l.WaitedFor.AsDuration() })
	if len(r.Holders) == 0 && len(ahead) == 0 {
		b.WriteString("  no holder and no one ahead: a lock-delay, or about to be granted\n")
		k.WriteString("none")
	}
	return b.String(), k.String()
}
