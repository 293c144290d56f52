package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
)

// waitChain sets up who-blocks-whom on c: A holds x EX, B holds y EX and
// waits for x EX, C waits for y EX. It returns the sessions and a
// function that releases everything, in order, once the waits are seen.
func waitChain(t *testing.T, ctx context.Context, c *client.Client, x, y string) (a, b, cs *client.Session, end func()) {
	t.Helper()
	sessions := make([]*client.Session, 3)
	for i := range sessions {
		s, err := c.NewSession(ctx)
		require.NoError(t, err)
		sessions[i] = s
	}
	a, b, cs = sessions[0], sessions[1], sessions[2]
	ax, err := a.Lock(ctx, x, spec.EX)
	require.NoError(t, err)
	by, err := b.Lock(ctx, y, spec.EX)
	require.NoError(t, err)
	bx, cy := make(chan *client.Lock, 1), make(chan *client.Lock, 1)
	wait := func(s *client.Session, name string, to chan *client.Lock) {
		l, err := s.Lock(ctx, name, spec.EX)
		if err != nil {
			t.Errorf("lock %s: %v", spec.QuoteName(name), err)
		}
		to <- l
	}
	go wait(b, x, bx)
	go wait(cs, y, cy)
	return a, b, cs, func() {
		require.NoError(t, ax.Unlock(ctx))
		l := <-bx
		require.NotNil(t, l)
		require.NoError(t, l.Unlock(ctx))
		require.NoError(t, by.Unlock(ctx))
		l = <-cy
		require.NotNil(t, l)
		require.NoError(t, l.Unlock(ctx))
	}
}

// awaitWaiters polls WaitGraph until it lists n waiters, each known to
// have waited at least least.
func awaitWaiters(t *testing.T, ctx context.Context, api pb.LocksClient, n int, least time.Duration) {
	t.Helper()
	for {
		g, err := api.WaitGraph(ctx, &pb.WaitGraphRequest{})
		require.NoError(t, err)
		ok := len(g.Waiters) == n
		for _, w := range g.Waiters {
			ok = ok && w.Waited != nil && w.Waited.AsDuration() >= least
		}
		if ok {
			return
		}
		require.NoError(t, ctx.Err(), "never %d waiters waiting %v: %v", n, least, g)
		time.Sleep(10 * time.Millisecond)
	}
}

var waitLineRE = regexp.MustCompile(`^([0-9a-f]{8}) waits ([0-9.]+)(s|ms) for EX on (\S+): held EX by ([0-9a-f]{8}) \(token (\d+)\)$`)

// TestStatusWaits: status --waits, --dot and --json on a real node with
// B waiting for A on jobs/x and C for B on a hostile name: one line per
// waiter naming its blocker, the mode, the token and how long it waited;
// a digraph that parses, with every edge's nodes declared and exactly the
// edges B->A and C->B; the JSON graph. Once released, a one-liner, and an
// empty digraph that still parses.
func TestStatusWaits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := servertest.StartOn(t, vfs.NewMem(), "127.0.0.1:0", server.Options{})
	c, err := client.Connect(client.Config{Addr: n.Addr, TTL: 2 * time.Second})
	require.NoError(t, err)
	defer c.Close()
	flags := clientFlags{addr: n.Addr, timeout: 10 * time.Second}
	tag := func(s *client.Session) []byte { return n.Server.SessionTag(s.ID()) }

	a, b, cs, end := waitChain(t, ctx, c, "jobs/x", hostile)
	awaitWaiters(t, ctx, c.API(), 2, 100*time.Millisecond)

	var out bytes.Buffer
	require.NoError(t, status(ctx, statusFlags{clientFlags: flags, waits: true}, nil, &out))
	t.Logf("status --waits:\n%s", out.String())
	requireSafe(t, out.String(), 2)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	for i, want := range []struct {
		waiter, blocker *client.Session
		resource        string
	}{{cs, b, spec.QuoteName(hostile)}, {b, a, "jobs/x"}} { // by resource name
		// a hostile name holds spaces once quoted: match the rest around it
		line := strings.Replace(lines[i], want.resource, "NAME", 1)
		m := waitLineRE.FindStringSubmatch(line)
		require.NotNil(t, m, "line %d: %q", i, lines[i])
		require.Equal(t, shortTag(tag(want.waiter)), m[1], "line %d: the waiter", i)
		require.Equal(t, "NAME", m[4], "line %d: the resource", i)
		require.Equal(t, shortTag(tag(want.blocker)), m[5], "line %d: the blocker", i)
	}

	out.Reset()
	require.NoError(t, status(ctx, statusFlags{clientFlags: flags, dot: true}, nil, &out))
	requireSafe(t, out.String(), strings.Count(out.String(), "\n"))
	t.Logf("status --dot:\n%s", out.String())
	nodes, edges := parseDot(t, out.String())
	full := func(s *client.Session) string { return hex.EncodeToString(tag(s)) }
	require.ElementsMatch(t, []string{full(a), full(b), full(cs)}, nodes)
	require.ElementsMatch(t, [][2]string{{full(b), full(a)}, {full(cs), full(b)}}, edges)

	out.Reset()
	require.NoError(t, status(ctx, statusFlags{clientFlags: flags, waits: true, json: true}, nil, &out))
	var g jsonWaitGraph
	strictJSON(t, out.Bytes(), &g)
	require.Len(t, g.Waiters, 2)
	require.Len(t, g.Edges, 2)
	require.Equal(t, full(a), g.Edges[1].Blocker, "jobs/x comes second by name")
	require.Equal(t, "jobs/x", g.Edges[1].Name)
	require.Equal(t, "holder", g.Edges[1].Reason)
	require.Equal(t, "EX", g.Edges[1].Wanted)
	require.Equal(t, hostile, g.Waiters[0].Name, "a name as a string, escaped by JSON")
	require.NotNil(t, g.Waiters[0].WaitedMs)
	require.GreaterOrEqual(t, *g.Waiters[0].WaitedMs, int64(100))
	require.Len(t, g.Holders, 2)
	require.NotZero(t, g.Holders[0].Token)
	requireSafe(t, out.String(), 1)

	end()
	awaitWaiters(t, ctx, c.API(), 0, 0)
	out.Reset()
	require.NoError(t, status(ctx, statusFlags{clientFlags: flags, waits: true}, nil, &out))
	require.Equal(t, "no request is waiting\n", out.String())
	out.Reset()
	require.NoError(t, status(ctx, statusFlags{clientFlags: flags, dot: true}, nil, &out))
	nodes, edges = parseDot(t, out.String())
	require.Empty(t, nodes)
	require.Empty(t, edges)
	out.Reset()
	require.NoError(t, status(ctx, statusFlags{clientFlags: flags, waits: true, json: true}, nil, &out))
	require.JSONEq(t, `{"waiters":[],"edges":[],"holders":[],"truncated":false}`, out.String(), "empty lists are [], not null")

	err = status(ctx, statusFlags{clientFlags: flags, waits: true}, []string{"jobs/x"}, &out)
	require.Error(t, err, "--waits with a NAME is a usage error")
}

// dotToken is a token of the DOT language: an ID (quoted or bare), or
// punctuation.
type dotToken struct {
	text   string
	quoted bool
}

// lexDot splits s into DOT tokens, failing on an unterminated string or a
// byte DOT does not allow here.
func lexDot(t *testing.T, s string) []dotToken {
	t.Helper()
	var toks []dotToken
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\n' || c == '\t':
			i++
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					j++
					require.Less(t, j, len(s), "a backslash ends the input")
				}
				require.NotEqual(t, byte('\n'), s[j], "a raw newline in a quoted string at %d", j)
				b.WriteByte(s[j])
			}
			require.Less(t, j, len(s), "unterminated string at %d", i)
			toks = append(toks, dotToken{b.String(), true})
			i = j + 1
		case strings.HasPrefix(s[i:], "->"):
			toks = append(toks, dotToken{text: "->"})
			i += 2
		case strings.ContainsRune("{}[];,=", rune(c)):
			toks = append(toks, dotToken{text: string(c)})
			i++
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			j := i
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			toks = append(toks, dotToken{text: s[i:j]})
			i = j
		default:
			t.Fatalf("byte %q at %d is not DOT", c, i)
		}
	}
	return toks
}

// parseDot checks that s is one digraph of node, edge and attribute
// statements with balanced braces and brackets, every edge between
// declared nodes, and returns the nodes and edges.
func parseDot(t *testing.T, s string) (nodes []string, edges [][2]string) {
	t.Helper()
	toks := lexDot(t, s)
	require.GreaterOrEqual(t, len(toks), 4, "%q", s)
	require.Equal(t, "digraph", toks[0].text)
	body := toks[2:]
	if toks[1].text == "{" && !toks[1].quoted {
		body = toks[1:]
	}
	require.Equal(t, "{", body[0].text, "the graph's body opens")
	require.Equal(t, "}", body[len(body)-1].text, "the graph's body closes, and nothing follows")
	body = body[1 : len(body)-1]
	// statements, split at ';' outside brackets
	var stmts [][]dotToken
	var cur []dotToken
	depth := 0
	for _, tk := range body {
		switch {
		case tk.quoted:
		case tk.text == "[":
			depth++
		case tk.text == "]":
			depth--
			require.GreaterOrEqual(t, depth, 0, "unbalanced ]")
		case tk.text == "{" || tk.text == "}":
			t.Fatalf("a brace inside the body: %q", s)
		case tk.text == ";" && depth == 0:
			stmts = append(stmts, cur)
			cur = nil
			continue
		}
		cur = append(cur, tk)
	}
	require.Zero(t, depth, "unbalanced [")
	require.Empty(t, cur, "a statement without its ';'")
	declared := map[string]bool{}
	for _, st := range stmts {
		require.NotEmpty(t, st)
		attrs := func(from int) {
			if from == len(st) {
				return
			}
			require.Equal(t, "[", st[from].text, "%v", st)
			require.Equal(t, "]", st[len(st)-1].text, "%v", st)
			inner := st[from+1 : len(st)-1]
			for i := 0; i < len(inner); {
				require.GreaterOrEqual(t, len(inner)-i, 3, "attribute %v", inner[i:])
				require.Equal(t, "=", inner[i+1].text, "attribute %v", inner[i:])
				i += 3
				if i < len(inner) {
					require.Equal(t, ",", inner[i].text)
					i++
				}
			}
		}
		switch {
		case len(st) >= 3 && st[1].text == "->" && !st[1].quoted:
			edges = append(edges, [2]string{st[0].text, st[2].text})
			attrs(3)
		case len(st) == 3 && st[1].text == "=":
			// a graph attribute: label="..."
		case !st[0].quoted && (st[0].text == "node" || st[0].text == "edge" || st[0].text == "graph"):
			attrs(1)
		default:
			require.True(t, st[0].quoted, "a node is named by a quoted tag: %v", st)
			declared[st[0].text] = true
			nodes = append(nodes, st[0].text)
			attrs(1)
		}
	}
	for _, e := range edges {
		require.True(t, declared[e[0]] && declared[e[1]], "edge %v between undeclared nodes (%v)", e, nodes)
	}
	return nodes, edges
}

// TestDotQuote: a name with quotes, backslashes and a newline stays one
// quoted DOT string.
func TestDotQuote(t *testing.T) {
	name := "a\"b\\c\nd"
	toks := lexDot(t, fmt.Sprintf("x [label=%s];", dotQuote(name)))
	require.Len(t, toks, 7)
	require.True(t, toks[4].quoted)
}

// TestE2EClusterWaits: on a group of three bouncer serve processes, the
// same chain seen through the Go client (which follows the leader) and
// through the binary's status --waits given every member (followers
// refuse, naming the leader; the read on the leader is linearizable).
func TestE2EClusterWaits(t *testing.T) {
	g := startGroup(t, 3)
	lead := g.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Connect(client.Config{Addrs: g.clients, TTL: 2 * time.Second})
	require.NoError(t, err)
	defer c.Close()

	_, _, _, end := waitChain(t, ctx, c, "jobs/x", "jobs/y")
	awaitWaiters(t, ctx, c.API(), 2, 100*time.Millisecond)
	wg, err := c.API().WaitGraph(ctx, &pb.WaitGraphRequest{})
	require.NoError(t, err)
	require.Len(t, wg.Edges, 2)
	// B waits for A on x, C for B on y: B is the blocker of y's edge and the
	// waiter of x's
	require.Equal(t, "jobs/x", string(wg.Edges[0].Resource))
	require.Equal(t, "jobs/y", string(wg.Edges[1].Resource))
	require.Equal(t, wg.Edges[0].WaiterTag, wg.Edges[1].BlockerTag)

	// a follower first in the list: the command finds the leader
	follower := (lead + 1) % 3
	addrs := strings.Join([]string{g.clients[follower], g.clients[lead]}, ",")
	code, out := run(t, "status", "--waits", "--addr", addrs)
	require.Zero(t, code, out)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 2, out)
	for i, e := range wg.Edges {
		m := waitLineRE.FindStringSubmatch(lines[i])
		require.NotNil(t, m, "line %d: %q", i, lines[i])
		require.Equal(t, shortTag(e.WaiterTag), m[1])
		require.Equal(t, string(e.Resource), m[4])
		require.Equal(t, shortTag(e.BlockerTag), m[5])
	}
	code, out = run(t, "status", "--dot", "--addr", addrs)
	require.Zero(t, code, out)
	_, edges := parseDot(t, out)
	require.Len(t, edges, 2)

	end()
	awaitWaiters(t, ctx, c.API(), 0, 0)
	code, out = run(t, "status", "--waits", "--addr", g.addrList())
	require.Zero(t, code, out)
	require.Equal(t, "no request is waiting\n", out)
}

// TestPrintWaitsSemaphore: on a semaphore, waits and holdings are told in
// permits, not modes.
func TestPrintWaitsSemaphore(t *testing.T) {
	g := &pb.WaitGraphResponse{
		Waiters: []*pb.Waiter{{SessionTag: []byte{1, 2, 3, 4, 5}, Resource: []byte("pool"), Mode: pb.Mode_MODE_PR,
			Permits: 2, Waited: durationpb.New(1500 * time.Millisecond)}},
		Edges: []*pb.WaitEdge{{WaiterTag: []byte{1, 2, 3, 4, 5}, BlockerTag: []byte{9, 9, 9, 9, 9}, Resource: []byte("pool"),
			Reason: pb.WaitReason_WAIT_REASON_HOLDER, Wanted: pb.Mode_MODE_PR, Blocking: pb.Mode_MODE_PR, Permits: 3}},
		Holders: []*pb.Holding{{SessionTag: []byte{9, 9, 9, 9, 9}, Resource: []byte("pool"), Mode: pb.Mode_MODE_PR,
			Token: 7, Permits: 3}},
	}
	var out bytes.Buffer
	require.NoError(t, printWaits(&out, g))
	require.Equal(t, "01020304 waits 1.5s for 2 permits on pool: held 3 permits by 09090909 (token 7)\n", out.String())
	out.Reset()
	require.NoError(t, printWaitsDot(&out, g))
	require.Contains(t, out.String(), `[label="pool: wants 2 permits, held 3 permits"]`)
	parseDot(t, out.String())
}
