package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/client"
	"github.com/stretchr/testify/require"
)

// group is a replicated group of real bouncer serve processes on loopback.
type group struct {
	t       *testing.T
	dir     string
	clients []string // client addresses, by member index
	args    [][]string
	procs   []*proc
}

// freeAddrs returns n loopback addresses with free ports.
func freeAddrs(t *testing.T, n int) []string {
	var addrs []string
	for range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addrs = append(addrs, lis.Addr().String())
		defer lis.Close()
	}
	return addrs
}

// startGroup starts a group of n members.
func startGroup(t *testing.T, n int) *group {
	g := &group{t: t, dir: t.TempDir()}
	ports := freeAddrs(t, 2*n)
	var peers, cls []string
	for i := range n {
		g.clients = append(g.clients, ports[2*i])
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, ports[2*i+1]))
		cls = append(cls, fmt.Sprintf("%d=%s", i+1, ports[2*i]))
	}
	for i := range n {
		g.args = append(g.args, []string{"--id", strconv.Itoa(i + 1), "--peers", strings.Join(peers, ","),
			"--clients", strings.Join(cls, ",")})
	}
	g.procs = make([]*proc, n)
	for i := range n {
		g.start(i)
	}
	return g
}

func (g *group) start(i int) {
	g.procs[i] = startNode(g.t, filepath.Join(g.dir, fmt.Sprintf("member-%d", i+1)), g.clients[i], g.args[i]...)
}

func (g *group) addrList() string { return strings.Join(g.clients, ",") }

// leader waits until the members agree on a leader and returns its index.
func (g *group) leader(within time.Duration) int {
	g.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		code, out := run(g.t, "cluster", "status", "--json", "--timeout", "2s", "--addr", g.addrList())
		var st struct {
			ID     string `json:"id"`
			Leader string `json:"leader"`
		}
		if code == 0 && json.Unmarshal([]byte(out), &st) == nil && st.Leader != "0" && st.Leader == st.ID {
			id, _ := strconv.Atoi(st.Leader)
			return id - 1
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.t.Fatalf("no leader within %v", within)
	return -1
}

// loadedGroup starts a group of three and 32 lock clients given every
// member's address, and returns once they have 200 grants, with the
// leader's index.
func loadedGroup(t *testing.T) (*group, int, *load) {
	g := startGroup(t, 3)
	lead := g.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	c, err := client.Connect(client.Config{Addrs: g.clients, TTL: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	load := startLoad(ctx, t, c, 32, 8)
	load.waitFor(200)
	return g, lead, load
}

// TestE2EClusterKillLeader: 32 clients lock and unlock on a group of three
// members, given every member's address; SIGKILL the leader. A new leader
// serves within the election bound, the clients follow it with their
// sessions, no acknowledged grant is lost, tokens keep rising, and what
// the clients observed is linearizable. The killed member restarts,
// catches up and the group goes on.
func TestE2EClusterKillLeader(t *testing.T) {
	g, lead, load := loadedGroup(t)

	g.procs[lead].kill()
	killed := time.Now()
	n := load.count()
	load.waitFor(n + 1)
	first := time.Since(killed)
	load.waitFor(n + 200)
	t.Logf("member %d killed: the first grant after %v, 200 after %v", lead+1, first.Round(time.Millisecond),
		time.Since(killed).Round(time.Millisecond))
	// raft's election timeout is 10 to 20 ticks of 100 ms; the clients
	// notice a silent member within a few retry intervals.
	require.Less(t, first, 8*time.Second, "the group served again too late")

	g.start(lead)
	g.leader(10 * time.Second)
	load.waitFor(load.count() + 100)
	load.finish(t, killed, killed.Add(time.Millisecond)) // every grant sent after the kill went to a later leader
	for i, p := range g.procs {
		if i != lead {
			require.NoError(t, p.stop(t))
		}
	}
	_ = g.procs[lead].cmd.Process.Signal(syscall.SIGTERM)
}

// TestE2EClusterPauseLeader: SIGSTOP the leader past the election timeout
// while 32 clients lock and unlock, then SIGCONT it. The others elect and
// serve meanwhile; the old leader, back, answers nothing it may not: what
// the clients observed stays linearizable (no two holders, no lost grant),
// tokens keep rising, and it rejoins as a follower.
func TestE2EClusterPauseLeader(t *testing.T) {
	g, lead, load := loadedGroup(t)

	p := g.procs[lead]
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGSTOP))
	paused := time.Now()
	load.waitFor(load.count() + 200)
	t.Logf("member %d paused: 200 grants by the others within %v", lead+1, time.Since(paused).Round(time.Millisecond))
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGCONT))
	load.waitFor(load.count() + 200)
	g.leader(10 * time.Second) // the group agrees on a leader again
	load.finish(t, paused, paused.Add(time.Millisecond))
	for _, p := range g.procs {
		require.NoError(t, p.stop(t))
	}
}
