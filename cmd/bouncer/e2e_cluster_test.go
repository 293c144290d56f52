package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/internal/linkproxy"
	"github.com/bouncer-dlm/bouncer/peer"
	"github.com/bouncer-dlm/bouncer/sequencer"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
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
			"--clients", strings.Join(cls, ","), "--snapshot-every", "256"})
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
			ID     int `json:"id"`
			Leader int `json:"leader"`
		}
		if code == 0 && json.Unmarshal([]byte(out), &st) == nil && st.Leader != 0 && st.Leader == st.ID {
			return st.Leader - 1
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

// TestE2EClusterKillLeader: 32 clients lock, convert and unlock on a group of three
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
// while 32 clients lock, convert and unlock, then SIGCONT it. The others elect and
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

// newProxy is a link proxy to target, closed at the test's end.
func newProxy(t *testing.T, target string) *linkproxy.Proxy {
	p, err := linkproxy.New(target)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// TestE2EClusterPartitionLeader: the leader is cut off from its followers
// (each raft link goes through a proxy the test controls) while the
// clients still reach every member. The minority side refuses (the old
// leader steps down and names no leader it cannot reach), the majority
// elects and serves, and after the heal the group converges on one leader;
// the clients' history stays linearizable and tokens keep rising.
func TestE2EClusterPartitionLeader(t *testing.T) {
	const n = 3
	ports := freeAddrs(t, 2*n)
	g := &group{t: t, dir: t.TempDir(), procs: make([]*proc, n)}
	var cls []string
	peerPorts := make([]string, n)
	for i := range n {
		g.clients = append(g.clients, ports[2*i])
		peerPorts[i] = ports[2*i+1]
		cls = append(cls, fmt.Sprintf("%d=%s", i+1, ports[2*i]))
	}
	// links[i][j] carries member i's raft messages to member j.
	links := make([][]*linkproxy.Proxy, n)
	for i := range n {
		links[i] = make([]*linkproxy.Proxy, n)
		var peers []string
		for j := range n {
			addr := peerPorts[j]
			if j != i {
				links[i][j] = newProxy(t, peerPorts[j])
				addr = links[i][j].Addr()
			}
			peers = append(peers, fmt.Sprintf("%d=%s", j+1, addr))
		}
		g.args = append(g.args, []string{"--id", strconv.Itoa(i + 1), "--peers", strings.Join(peers, ","),
			"--clients", strings.Join(cls, ","), "--peer-listen", peerPorts[i]})
	}
	for i := range n {
		g.start(i)
	}
	lead := g.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := client.Connect(client.Config{Addrs: g.clients, TTL: 10 * time.Second})
	require.NoError(t, err)
	defer c.Close()
	load := startLoad(ctx, t, c, 32, 8)
	load.waitFor(200)

	cut := func(on bool) {
		for j := range n {
			if j != lead {
				links[lead][j].SetCut(on)
				links[j][lead].SetCut(on)
			}
		}
	}
	cut(true)
	parted := time.Now()
	load.waitFor(load.count() + 200)
	t.Logf("member %d cut off: 200 grants by the majority within %v", lead+1, time.Since(parted).Round(time.Millisecond))
	// The old leader, alone, no longer leads: it refuses naming no one.
	code, out := run(t, "cluster", "status", "--json", "--timeout", "2s", "--addr", g.clients[lead])
	require.Equal(t, 0, code, out)
	require.Contains(t, out, `"leader":0`, "the cut-off member should know no leader: %s", out)
	cut(false)
	healed := time.Now()
	load.waitFor(load.count() + 200)
	g.leader(10 * time.Second)
	t.Logf("healed: the group agrees on a leader within %v", time.Since(healed).Round(time.Millisecond))
	load.finish(t, parted, parted.Add(time.Millisecond))
	for _, p := range g.procs {
		require.NoError(t, p.stop(t))
	}
}

// TestE2EClusterRollingRestart: under load, every member in turn is
// stopped (SIGTERM) and started again on its data; the group serves
// throughout (with pauses for elections), no session that kept its
// keepalives is lost (the clients' sessions live through all of it), and
// what they observed is linearizable.
func TestE2EClusterRollingRestart(t *testing.T) {
	g, _, load := loadedGroup(t)
	began := time.Now()
	for i := range g.procs {
		require.NoError(t, g.procs[i].stop(t))
		load.waitFor(load.count() + 50) // the others serve
		g.start(i)
		g.leader(10 * time.Second)
		load.waitFor(load.count() + 50)
	}
	t.Logf("rolling restart of %d members in %v", len(g.procs), time.Since(began).Round(time.Millisecond))
	load.finish(t, began, began)
	for _, p := range g.procs {
		require.NoError(t, p.stop(t))
	}
}

// TestE2EClusterReplaceMember: under load, a follower is removed from the
// group (cluster remove) and a fresh member joins (serve --join) and
// catches up from a snapshot (the members compact their logs every 256
// entries); the group serves throughout.
func TestE2EClusterReplaceMember(t *testing.T) {
	g, lead, load := loadedGroup(t)
	changed := time.Now()
	gone := (lead + 1) % len(g.procs)
	code, out := run(t, "cluster", "remove", strconv.Itoa(gone+1), "--addr", g.addrList())
	require.Equal(t, 0, code, out)
	require.NoError(t, g.procs[gone].stop(t))
	load.waitFor(load.count() + 100)

	addrs := freeAddrs(t, 2)
	fresh := startNode(t, filepath.Join(g.dir, "member-4"), addrs[0], "--id", "4", "--join", g.clients[lead],
		"--peer-listen", addrs[1], "--snapshot-every", "256")
	load.waitFor(load.count() + 100)
	var st struct {
		Commit  uint64 `json:"commit"`
		Members []struct {
			ID    int    `json:"id"`
			Match uint64 `json:"match"`
		} `json:"members"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for caughtUp := false; !caughtUp; {
		require.True(t, time.Now().Before(deadline), "member 4 did not catch up: %+v", st)
		code, out = run(t, "cluster", "status", "--json", "--addr", g.clients[lead])
		require.Equal(t, 0, code, out)
		require.NoError(t, json.Unmarshal([]byte(out), &st))
		for _, m := range st.Members {
			require.NotEqual(t, gone+1, m.ID, "the removed member is still listed")
			if m.ID == 4 && m.Match != 0 {
				caughtUp = true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Its own view: it installed a snapshot (its log starts after one).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	own, err := clusterStatusAt(ctx, addrs[0])
	require.NoError(t, err)
	require.Equal(t, uint64(4), own.Id)
	require.NotZero(t, own.SnapshotIndex, "member 4 caught up without a snapshot: %v", own)
	t.Logf("member 4: applied %d, snapshot %d", own.Applied, own.SnapshotIndex)
	load.finish(t, changed, changed)
	require.NoError(t, fresh.stop(t))
	for i, p := range g.procs {
		if i != gone {
			require.NoError(t, p.stop(t))
		}
	}
}

// writePeerCert makes a member's certificate for 127.0.0.1, for both ends
// of a peer link, signed by writeTestPKI's CA.
func writePeerCert(t *testing.T, dir string) (certFile, keyFile string) {
	return writeSignedCert(t, dir, "member", []net.IP{net.ParseIP("127.0.0.1")},
		x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
}

// TestE2EClusterPeerTLS: a group whose peer links require the cluster's
// certificates elects a leader and serves; a process without a
// certificate the cluster's CA signed cannot talk on a peer port.
func TestE2EClusterPeerTLS(t *testing.T) {
	pki := t.TempDir()
	ca, _, _ := writeTestPKI(t, pki)
	cert, key := writePeerCert(t, pki)
	g := &group{t: t, dir: t.TempDir()}
	ports := freeAddrs(t, 6)
	var peers, cls []string
	for i := range 3 {
		g.clients = append(g.clients, ports[2*i])
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, ports[2*i+1]))
		cls = append(cls, fmt.Sprintf("%d=%s", i+1, ports[2*i]))
	}
	for i := range 3 {
		g.args = append(g.args, []string{"--id", strconv.Itoa(i + 1), "--peers", strings.Join(peers, ","),
			"--clients", strings.Join(cls, ","), "--peer-tls-cert", cert, "--peer-tls-key", key, "--peer-tls-ca", ca})
	}
	g.procs = make([]*proc, 3)
	for i := range 3 {
		g.start(i)
	}
	g.leader(10 * time.Second)
	code, out := run(t, "lock", "--addr", g.addrList(), "tls-demo", "--", "true")
	require.Equal(t, 0, code, out)

	// No client certificate, and one from another CA: both refused.
	other := t.TempDir()
	writeTestPKI(t, other)
	otherCert, otherKey := writePeerCert(t, other)
	stranger, err := tls.LoadX509KeyPair(otherCert, otherKey)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(ca)
	require.NoError(t, err)
	require.True(t, pool.AppendCertsFromPEM(pem))
	member, err := tls.LoadX509KeyPair(cert, key)
	require.NoError(t, err)
	peerAddr := strings.TrimPrefix(peers[0], "1=")
	talk := func(certs []tls.Certificate) error { // an HTTP/2 preface, and the first bytes of the answer
		conn, err := tls.Dial("tcp", peerAddr, &tls.Config{RootCAs: pool, Certificates: certs, MinVersion: tls.VersionTLS12,
			NextProtos: []string{"h2"}})
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err != nil {
			return err
		}
		_, err = conn.Read(make([]byte, 64))
		return err
	}
	require.NoError(t, talk([]tls.Certificate{member}), "the cluster's certificate must get an answer (the check can pass)")
	for name, certs := range map[string][]tls.Certificate{"no certificate": nil, "another CA's": {stranger}} {
		require.Error(t, talk(certs), "%s: the peer port took a connection", name)
	}
	for _, p := range g.procs {
		require.NoError(t, p.stop(t))
	}
}

// TestE2EClusterPeerBadInput: bad input on a live member's peer port:
// garbage bytes, a stream of another cluster, a stream from a member id
// the group does not have. Each is refused and logged, and nothing
// changes: the group keeps its leader and term, and serves.
func TestE2EClusterPeerBadInput(t *testing.T) {
	g := startGroup(t, 3)
	lead := g.leader(10 * time.Second)
	status := func() string {
		code, out := run(t, "cluster", "status", "--json", "--addr", g.addrList())
		require.Equal(t, 0, code, out)
		var st struct{ Leader, Term uint64 }
		require.NoError(t, json.Unmarshal([]byte(out), &st))
		return fmt.Sprintf("%d/%d", st.Leader, st.Term)
	}
	before := status()
	victim := (lead + 1) % 3
	peerAddr := ""
	for _, kv := range strings.Split(g.args[victim][3], ",") { // --peers
		if id, addr, _ := strings.Cut(kv, "="); id == strconv.Itoa(victim+1) {
			peerAddr = addr
		}
	}
	require.NotEmpty(t, peerAddr)

	conn, err := net.Dial("tcp", peerAddr)
	require.NoError(t, err)
	_, _ = conn.Write([]byte("garbage, not HTTP/2 nor a frame\x00\x01\x02"))
	_ = conn.Close()
	for _, c := range []struct{ cluster, from string }{{"another-cluster", "7"}, {"bouncer", "9"}} {
		from, _ := strconv.ParseUint(c.from, 10, 64)
		tr, err := peer.New(peer.Config{ID: from, ClusterID: c.cluster,
			Peers: map[uint64]string{from: "127.0.0.1:1", uint64(victim + 1): peerAddr}})
		require.NoError(t, err)
		tr.Send([]*raftpb.Message{{Type: raftpb.MessageType_MsgVote.Enum(), To: new(uint64(victim + 1)),
			From: new(from), Term: new(uint64(1000))}})
		time.Sleep(300 * time.Millisecond)
		require.NoError(t, tr.Close())
	}
	log := g.procs[victim].log()
	require.Contains(t, log, "refused a stream of another cluster")
	require.Contains(t, log, "refused a stream of an unknown member")
	require.Equal(t, before, status(), "a refused message changed the group")
	code, out := run(t, "lock", "--addr", g.addrList(), "after-bad-input", "--", "true")
	require.Equal(t, 0, code, out)
	for _, p := range g.procs {
		require.NoError(t, p.stop(t))
	}
}

// TestE2EClusterSequencerAcrossFailover: a client's MemberPublicKeys gives
// every member's key; a sequencer issued by the leader of a group of three
// verifies against them and still checks as held after that leader is
// killed (the new leader reads the same durable state, and checks token,
// mode and grant instant; the signature is the old leader's), and as not
// held once the lock is released.
func TestE2EClusterSequencerAcrossFailover(t *testing.T) {
	g := startGroup(t, 3)
	lead := g.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Connect(client.Config{Addrs: g.clients, TTL: 10 * time.Second})
	require.NoError(t, err)
	defer c.Close()
	keys, err := c.MemberPublicKeys(ctx) // every member's: the verifier of a group trusts them all
	require.NoError(t, err)
	require.Len(t, keys, 3, "each member has a key of its own")
	for _, a := range g.clients { // each is the key that member itself shows
		one, err := client.Connect(client.Config{Addr: a})
		require.NoError(t, err)
		k, err := one.PublicKeys(ctx)
		require.NoError(t, err)
		require.Len(t, k, 1)
		require.True(t, slices.ContainsFunc(keys, func(x ed25519.PublicKey) bool { return x.Equal(k[0]) }), "member %s's key is missing", a)
		require.NoError(t, one.Close())
	}
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	l, err := s.Lock(ctx, "job", spec.PW)
	require.NoError(t, err)
	text, err := l.Sequencer(ctx)
	require.NoError(t, err)
	seq, err := sequencer.Verify(text, keys)
	require.NoError(t, err)
	require.Equal(t, l.Token(), seq.Token)

	g.procs[lead].kill()
	require.NotEqual(t, lead, g.leader(15*time.Second), "the killed member still leads")
	held, why, err := c.CheckSequencer(ctx, text)
	require.NoError(t, err)
	require.True(t, held, "after the failover the node says: %s", why)

	require.NoError(t, l.Unlock(ctx))
	held, why, err = c.CheckSequencer(ctx, text)
	require.NoError(t, err)
	require.False(t, held, "a released lock's sequencer checks as held")
	require.NotEmpty(t, why)
	require.NoError(t, s.Close(ctx))
	for i, p := range g.procs {
		if i != lead {
			require.NoError(t, p.stop(t))
		}
	}
}
