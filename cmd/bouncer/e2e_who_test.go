package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

// waitingOn polls Describe until name has n waiters and returns them.
func waitingOn(t *testing.T, ctx context.Context, api pb.LocksClient, name string, n int) []*pb.Lock {
	t.Helper()
	for {
		d, err := api.Describe(ctx, &pb.DescribeRequest{Resource: []byte(name)})
		require.NoError(t, err)
		if d.Exists && len(d.Resource.Waiting) == n {
			return d.Resource.Waiting
		}
		require.NoError(t, ctx.Err(), "never %d waiting on %s", n, name)
		time.Sleep(20 * time.Millisecond)
	}
}

// TestE2ELockSaysWhoHoldsAndWhoIsAhead: bouncer lock, while it waits,
// prints its own session's tag, the holder (tag, mode, token, how long,
// label) and the request ahead of it; again when that changes, and not
// at every look when nothing has.
func TestE2ELockSaysWhoHoldsAndWhoIsAhead(t *testing.T) {
	p := startNode(t, t.TempDir(), "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Connect(client.Config{Addr: p.addr, Label: "holder-a"})
	require.NoError(t, err)
	defer c.Close()
	a, err := c.NewSession(ctx)
	require.NoError(t, err)
	b, err := c.NewSession(ctx)
	require.NoError(t, err)
	ax, err := a.Lock(ctx, "jobs/x", spec.EX)
	require.NoError(t, err)
	bx := make(chan *client.Lock, 1)
	go func() {
		l, err := b.Lock(ctx, "jobs/x", spec.PR)
		if err != nil {
			t.Errorf("b: %v", err)
		}
		bx <- l
	}()
	waitingOn(t, ctx, c.API(), "jobs/x", 1)

	var stderr syncBuffer
	cmd := exec.CommandContext(ctx, bin, "lock", "--addr", p.addr, "jobs/x", "--", "true")
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	me := waitingOn(t, ctx, c.API(), "jobs/x", 2)[1].SessionTag
	short := func(tag []byte) string { return hex.EncodeToString(tag)[:8] }
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "ahead") }, 10*time.Second, 20*time.Millisecond)
	got := stderr.String()
	require.Contains(t, got, "bouncer: session "+short(me)+" waits ", "its own tag")
	require.Contains(t, got, " for EX on jobs/x")
	require.Regexp(t, `held by +`+short(a.Tag())+` EX token `+fmt.Sprint(ax.Token())+` for \S+ \[holder-a\]`, got)
	require.Regexp(t, `ahead +`+short(b.Tag())+` PR waiting \S+ \[holder-a\]`, got)

	time.Sleep(2500 * time.Millisecond) // two more looks, nothing changed
	require.Equal(t, 1, strings.Count(stderr.String(), "bouncer: session"), "speaks only on a change:\n%s", stderr.String())

	require.NoError(t, ax.Unlock(ctx)) // b is granted: it holds, no one is ahead
	var lb *client.Lock
	select {
	case lb = <-bx:
	case <-ctx.Done():
		t.Fatal("b never granted")
	}
	require.Eventually(t, func() bool { return strings.Count(stderr.String(), "bouncer: session") == 2 }, 10*time.Second, 20*time.Millisecond)
	second := stderr.String()[strings.LastIndex(stderr.String(), "bouncer: session"):]
	require.Regexp(t, `held by +`+short(b.Tag())+` PR token \d+`, second)
	require.NotContains(t, second, "ahead")

	require.NoError(t, lb.Unlock(ctx))
	require.NoError(t, cmd.Wait(), stderr.String())
}

// TestE2ECLILabelsItsSession: bouncer lock's session carries the label
// host/pid/program by default, and status shows it beside the tag.
func TestE2ECLILabelsItsSession(t *testing.T) {
	p := startNode(t, t.TempDir(), "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "lock", "--addr", p.addr, "labelled", "--", "sleep", "3")
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Wait() }()
	host, err := os.Hostname()
	require.NoError(t, err)
	want := fmt.Sprintf("%s/%d/bouncer", host, cmd.Process.Pid)
	var rs []jsonResource
	require.Eventually(t, func() bool {
		code, out := run(t, "status", "--json", "--addr", p.addr, "labelled")
		require.Equal(t, 0, code, out)
		strictJSON(t, []byte(out), &rs)
		return len(rs) == 1
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, want, rs[0].Holders[0].Label)
	code, out := run(t, "status", "--addr", p.addr, "labelled")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "["+want+"]")
}

// TestE2ELockLabel: lock --label gives the session the label asked for,
// and status shows it (quoted, as it has spaces).
func TestE2ELockLabel(t *testing.T) {
	p := startNode(t, t.TempDir(), "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "lock", "--addr", p.addr, "--label", "nightly report on db1", "labelled", "--", "sleep", "3")
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Wait() }()
	require.Eventually(t, func() bool {
		code, out := run(t, "status", "--addr", p.addr, "labelled")
		return code == 0 && strings.Contains(out, `["nightly report on db1"]`) // quoted: it has spaces
	}, 10*time.Second, 20*time.Millisecond)
}

// TestE2EWatchReconnects: watch --json goes on across a restart of the
// node (the same address and data), and reports the state it finds
// after it, each line timestamped.
func TestE2EWatchReconnects(t *testing.T) {
	data := t.TempDir()
	p := startNode(t, data, "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stderr syncBuffer
	cmd := exec.CommandContext(ctx, bin, "watch", "--json", "--addr", p.addr, "w")
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	lines := make(chan jsonWatchLine, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l jsonWatchLine
			dec := json.NewDecoder(strings.NewReader(sc.Text()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&l); err != nil {
				t.Errorf("a line not in the shape: %q: %v", sc.Text(), err)
				return
			}
			lines <- l
		}
	}()
	next := func(what string) jsonWatchLine {
		t.Helper()
		select {
		case l, ok := <-lines:
			require.True(t, ok, "watch ended before %s; stderr:\n%s", what, stderr.String())
			_, err := time.Parse(time.RFC3339Nano, l.Time)
			require.NoError(t, err)
			return l
		case <-ctx.Done():
			t.Fatalf("no line for %s; stderr:\n%s", what, stderr.String())
			return jsonWatchLine{}
		}
	}
	require.Empty(t, next("the first state").Resources)

	p.kill()
	p = startNode(t, data, p.addr)
	c, err := client.Connect(client.Config{Addr: p.addr})
	require.NoError(t, err)
	defer c.Close()
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	l, err := s.Lock(ctx, "w", spec.EX)
	require.NoError(t, err)
	for {
		got := next("the lock taken after the restart")
		if len(got.Resources) == 1 && len(got.Resources[0].Holders) == 1 {
			require.Equal(t, hex.EncodeToString(s.Tag()), got.Resources[0].Holders[0].Tag)
			break
		}
	}
	require.Eventually(t, func() bool {
		return strings.Contains(stderr.String(), "lost the node at "+p.addr) && strings.Contains(stderr.String(), "answers again")
	}, 5*time.Second, 10*time.Millisecond, stderr.String())
	require.NotContains(t, stderr.String(), "rpc error")
	require.NoError(t, l.Unlock(ctx))
	require.Empty(t, next("the release").Resources)
}
