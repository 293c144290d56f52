package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

// strictJSON decodes b into v, refusing any field the documented shape
// does not have and anything after the value.
func strictJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), "%s", b)
	require.False(t, dec.More(), "more than one value in %s", b)
}

// whoScene is a node on which session a holds "x" EX and the semaphore
// "pool" (2 of 3 permits), b waits for "x" PR, and c holds the name that
// is not UTF-8 and waits for "x" EX behind b.
type whoScene struct {
	addr    string
	flags   clientFlags
	a, b, c *client.Session
	ax      *client.Lock
	odd     string // a name that is not UTF-8
}

func newWhoScene(t *testing.T, ctx context.Context) *whoScene {
	t.Helper()
	w := &whoScene{addr: servertest.Start(t, server.Options{}), odd: "bin\xff\xfe"}
	w.flags = clientFlags{addr: w.addr, timeout: 10 * time.Second}
	c, err := client.Connect(client.Config{Addr: w.addr, TTL: 5 * time.Second, Label: "who-test"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	for _, s := range []**client.Session{&w.a, &w.b, &w.c} {
		*s, err = c.NewSession(ctx)
		require.NoError(t, err)
	}
	w.ax, err = w.a.Lock(ctx, "x", spec.EX)
	require.NoError(t, err)
	_, err = w.a.AcquirePermits(ctx, "pool", 2, 3)
	require.NoError(t, err)
	_, err = w.c.Lock(ctx, w.odd, spec.EX)
	require.NoError(t, err)
	go func() { _, _ = w.b.Lock(ctx, "x", spec.PR) }()
	w.awaitWaiting(t, ctx, 1)
	go func() { _, _ = w.c.Lock(ctx, "x", spec.EX) }()
	w.awaitWaiting(t, ctx, 2)
	return w
}

// awaitWaiting waits until n requests wait for x.
func (w *whoScene) awaitWaiting(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for {
		var out bytes.Buffer
		require.NoError(t, status(ctx, statusFlags{clientFlags: w.flags, json: true}, []string{"x"}, &out))
		var rs []jsonResource
		strictJSON(t, out.Bytes(), &rs)
		if len(rs) == 1 && len(rs[0].Waiting) == n {
			return
		}
		require.NoError(t, ctx.Err(), "never %d waiting: %s", n, out.String())
		time.Sleep(10 * time.Millisecond)
	}
}

func tagHex(s *client.Session) string { return hex.EncodeToString(s.Tag()) }

// TestStatusJSONShape: every --json output of status parses into the one
// documented shape, with names as strings (base64, flagged, only when not
// UTF-8), modes as "EX", tokens and permits as numbers, tags as hex,
// labels, durations in whole milliseconds (null where they do not apply),
// and an empty node as [].
func TestStatusJSONShape(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var empty bytes.Buffer
	addr := servertest.Start(t, server.Options{})
	require.NoError(t, status(ctx, statusFlags{clientFlags: clientFlags{addr: addr, timeout: 10 * time.Second}, json: true}, nil, &empty))
	require.Equal(t, "[]\n", empty.String(), "an empty node")
	empty.Reset()
	require.NoError(t, status(ctx, statusFlags{clientFlags: clientFlags{addr: addr, timeout: 10 * time.Second}, json: true}, []string{"none"}, &empty))
	require.Equal(t, "[]\n", empty.String(), "a resource not in use")

	w := newWhoScene(t, ctx)
	time.Sleep(150 * time.Millisecond) // so that held_ms and waited_ms are past 100
	var out bytes.Buffer
	require.NoError(t, status(ctx, statusFlags{clientFlags: w.flags, json: true}, nil, &out))
	require.Equal(t, 1, strings.Count(out.String(), "\n"), "one line: %s", out.String())
	var all []jsonResource
	strictJSON(t, out.Bytes(), &all)
	require.Len(t, all, 3, out.String())

	// In name order: the odd name's bytes, "pool", "x".
	odd := all[0]
	require.True(t, odd.NameBase64, "a name that is not UTF-8 is base64")
	b, err := base64.StdEncoding.DecodeString(odd.Name)
	require.NoError(t, err)
	require.Equal(t, w.odd, string(b))
	require.Equal(t, tagHex(w.c), odd.Holders[0].Tag)

	pool := all[1]
	require.Equal(t, "pool", pool.Name)
	require.False(t, pool.NameBase64)
	require.Equal(t, uint32(3), pool.Limit)
	require.Len(t, pool.Holders, 1)
	require.Equal(t, uint32(2), pool.Holders[0].Permits)
	require.Equal(t, "PR", pool.Holders[0].Mode)

	x := all[2]
	require.Equal(t, "x", x.Name)
	require.Equal(t, []jsonLock{}, x.Converting, "an empty list is [], not null")
	require.Len(t, x.Holders, 1)
	h := x.Holders[0]
	require.Equal(t, tagHex(w.a), h.Tag)
	require.Equal(t, "who-test", h.Label)
	require.Equal(t, "EX", h.Mode)
	require.Equal(t, uint64(w.ax.Token()), h.Token)
	require.NotNil(t, h.HeldMs)
	require.GreaterOrEqual(t, *h.HeldMs, int64(100))
	require.Nil(t, h.WaitedMs, "a holder that converts nothing has not waited")
	require.Len(t, x.Waiting, 2)
	require.Equal(t, tagHex(w.b), x.Waiting[0].Tag)
	require.Equal(t, "PR", x.Waiting[0].Mode)
	require.Equal(t, tagHex(w.c), x.Waiting[1].Tag)
	require.Equal(t, "EX", x.Waiting[1].Mode)
	for _, l := range x.Waiting {
		require.Nil(t, l.HeldMs)
		require.NotNil(t, l.WaitedMs)
		require.Zero(t, l.Token)
	}
	require.GreaterOrEqual(t, *x.Waiting[0].WaitedMs, int64(100))

	// The raw text: tokens and permits are numbers, modes bare names.
	require.Regexp(t, `"token":[1-9][0-9]*[,}]`, out.String())
	require.Regexp(t, `"permits":2[,}]`, out.String())
	require.NotContains(t, out.String(), "MODE_")

	// status NAME and status --session: the same shape.
	out.Reset()
	require.NoError(t, status(ctx, statusFlags{clientFlags: w.flags, json: true}, []string{"x"}, &out))
	var one []jsonResource
	strictJSON(t, out.Bytes(), &one)
	require.Len(t, one, 1)
	require.Equal(t, "x", one[0].Name)

	out.Reset()
	require.NoError(t, status(ctx, statusFlags{clientFlags: w.flags, json: true, session: tagHex(w.c)[:8]}, nil, &out))
	var mine []jsonResource
	strictJSON(t, out.Bytes(), &mine)
	require.Len(t, mine, 2, "c holds the odd name and waits for x: %s", out.String())
	require.True(t, mine[0].NameBase64)
	require.Equal(t, "x", mine[1].Name)
	require.Empty(t, mine[1].Holders, "only c's own locks and requests")
	require.Len(t, mine[1].Waiting, 1)
	require.Equal(t, tagHex(w.c), mine[1].Waiting[0].Tag)
}

// TestWatchJSONShape: each line of watch --json is {"time", "resources"}
// with the resources in status's shape, [] when not in use.
func TestWatchJSONShape(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := newWhoScene(t, ctx)
	for _, name := range []string{"x", "none"} {
		wctx, wcancel := context.WithCancel(ctx)
		out := &cancelOnWrite{cancel: wcancel}
		require.NoError(t, watch(wctx, watchFlags{clientFlags: w.flags, json: true}, name, out))
		var line jsonWatchLine
		strictJSON(t, []byte(out.String()), &line)
		at, err := time.Parse(time.RFC3339Nano, line.Time)
		require.NoError(t, err)
		require.WithinDuration(t, time.Now(), at, 10*time.Second)
		if name == "none" {
			require.Equal(t, []jsonResource{}, line.Resources)
			require.Contains(t, out.String(), `"resources":[]`)
			continue
		}
		require.Len(t, line.Resources, 1)
		require.Equal(t, tagHex(w.a), line.Resources[0].Holders[0].Tag)
		require.Len(t, line.Resources[0].Waiting, 2)
	}
}

// TestStatusTextShowsWhoAndHowLong: the table shows each holder with its
// token, how long it has held and its label, each waiter with how long
// it has waited, one per line; --session keeps one session's rows.
func TestStatusTextShowsWhoAndHowLong(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := newWhoScene(t, ctx)
	time.Sleep(1100 * time.Millisecond)
	var out bytes.Buffer
	require.NoError(t, status(ctx, statusFlags{clientFlags: w.flags}, []string{"x"}, &out))
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	require.Len(t, lines, 3, "a header, then the holder and first waiter, then the second waiter:\n%s", out.String())
	short := func(s *client.Session) string { return tagHex(s)[:8] }
	holder := regexp.MustCompile(regexp.QuoteMeta(short(w.a)) + `:EX#\d+ (1\.\d|[2-9]\.\d)s \[who-test\]`)
	require.Regexp(t, holder, lines[1])
	require.Regexp(t, regexp.QuoteMeta(short(w.b))+`:PR (1\.\d|[2-9]\.\d)s \[who-test\]`, lines[1])
	require.Regexp(t, `^\s+`+regexp.QuoteMeta(short(w.c))+`:EX \d`, lines[2], "the second waiter on a line of its own, under the first")
	require.Equal(t, strings.Index(lines[1], short(w.b)), strings.Index(lines[2], short(w.c)), "in the same column")

	out.Reset()
	require.NoError(t, status(ctx, statusFlags{clientFlags: w.flags, session: short(w.b)}, nil, &out))
	require.Contains(t, out.String(), short(w.b))
	require.NotContains(t, out.String(), short(w.a))
	require.NotContains(t, out.String(), short(w.c))
	require.Equal(t, 2, strings.Count(out.String(), "\n"), out.String())

	err := status(ctx, statusFlags{clientFlags: w.flags, session: "zz"}, nil, &out)
	require.Error(t, err, "a tag is 4 or more hex digits")
}

// TestStatusWrapsALongQueue: a queue past queueRowsMax shows that many
// waiters, one a line, and counts the rest.
func TestStatusWrapsALongQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := servertest.Start(t, server.Options{})
	c, err := client.Connect(client.Config{Addr: addr, TTL: 5 * time.Second})
	require.NoError(t, err)
	defer c.Close()
	n := queueRowsMax + 5
	var sessions []*client.Session
	for range n + 1 {
		s, err := c.NewSession(ctx)
		require.NoError(t, err)
		sessions = append(sessions, s)
	}
	_, err = sessions[0].Lock(ctx, "q", spec.EX)
	require.NoError(t, err)
	for _, s := range sessions[1:] {
		go func() { _, _ = s.Lock(ctx, "q", spec.EX) }()
	}
	flags := statusFlags{clientFlags: clientFlags{addr: addr, timeout: 10 * time.Second}}
	var out bytes.Buffer
	for {
		out.Reset()
		flags.json = true
		require.NoError(t, status(ctx, flags, []string{"q"}, &out))
		var rs []jsonResource
		strictJSON(t, out.Bytes(), &rs)
		if len(rs) == 1 && len(rs[0].Waiting) == n {
			break
		}
		require.NoError(t, ctx.Err(), out.String())
		time.Sleep(20 * time.Millisecond)
	}
	out.Reset()
	flags.json = false
	require.NoError(t, status(ctx, flags, []string{"q"}, &out))
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	require.Len(t, lines, 1+queueRowsMax+1, out.String())
	require.Contains(t, lines[len(lines)-1], "(+5 more)")
	for _, l := range lines[1:] {
		require.Less(t, len(l), 120, "a row stays narrow: %q", l)
	}
}

// TestReadmeJSONExample: the README's example of the JSON shape parses
// into it, so the document and the code agree.
func TestReadmeJSONExample(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	text := string(b)
	i := strings.Index(text, "### JSON output")
	require.GreaterOrEqual(t, i, 0, "README has a JSON output section")
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(text[i:], 2)
	require.Len(t, blocks, 2, "an example of status --json and one of watch --json")
	var rs []jsonResource
	strictJSON(t, []byte(blocks[0][1]), &rs)
	require.NotEmpty(t, rs)
	require.NotEmpty(t, rs[0].Holders)
	for _, line := range strings.Split(strings.TrimSpace(blocks[1][1]), "\n") {
		var wl jsonWatchLine
		strictJSON(t, []byte(line), &wl)
		_, err := time.Parse(time.RFC3339Nano, wl.Time)
		require.NoError(t, err)
	}
}

// TestStatusShowsAConversion: a holder converting PR->EX shows, among the
// holders, how long it has held, and in the conversion queue how long it
// has waited; the JSON has both.
func TestStatusShowsAConversion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := servertest.Start(t, server.Options{})
	c, err := client.Connect(client.Config{Addr: addr, TTL: 5 * time.Second, Label: "conv"})
	require.NoError(t, err)
	defer c.Close()
	a, err := c.NewSession(ctx)
	require.NoError(t, err)
	b, err := c.NewSession(ctx)
	require.NoError(t, err)
	al, err := a.Lock(ctx, "c", spec.PR)
	require.NoError(t, err)
	_, err = b.Lock(ctx, "c", spec.PR)
	require.NoError(t, err)
	time.Sleep(1100 * time.Millisecond)
	go func() { _ = al.Convert(ctx, spec.EX) }()
	flags := statusFlags{clientFlags: clientFlags{addr: addr, timeout: 10 * time.Second}, json: true}
	var rs []jsonResource
	for {
		var out bytes.Buffer
		require.NoError(t, status(ctx, flags, []string{"c"}, &out))
		strictJSON(t, out.Bytes(), &rs)
		if len(rs[0].Converting) == 1 {
			break
		}
		require.NoError(t, ctx.Err())
		time.Sleep(10 * time.Millisecond)
	}
	conv := rs[0].Converting[0]
	require.Equal(t, tagHex(a), conv.Tag)
	require.Equal(t, "PR", conv.Mode)
	require.Equal(t, "EX", conv.ConvertingTo)
	require.GreaterOrEqual(t, *conv.HeldMs, int64(1000))
	require.Less(t, *conv.WaitedMs, int64(1000))
	require.Equal(t, "EX", rs[0].Holders[0].ConvertingTo)

	var out bytes.Buffer
	flags.json = false
	require.NoError(t, status(ctx, flags, []string{"c"}, &out))
	short := tagHex(a)[:8]
	require.Regexp(t, regexp.QuoteMeta(short)+`:PR->EX#\d+ 1\.\d+s \[conv\] +`+regexp.QuoteMeta(short)+`:PR->EX \d+ms \[conv\]`, out.String())
}
