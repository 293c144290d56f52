package peers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Service is a started lock service: one server process (*Server) or a
// replicated group of them (*Group).
type Service interface {
	Process
	// Endpoint is what the system's Dialer is given: a server's address,
	// or every member's, comma-separated.
	Endpoint() string
	// Stop ends every process and removes the data.
	Stop() error
}

// Group is a replicated lock service: members, each a process of its own
// on loopback with its own data directory, that clients reach through
// every member's address.
type Group struct {
	Name  string
	Addrs []string // the members' client addresses, by member index

	dir      string
	mu       sync.Mutex
	members  []*Server // nil while a member is down
	restarts []int     // by member index
	// start starts member i (again, on the same data, if restart > 0).
	start func(ctx context.Context, i, restart int) (*Server, error)
	// status finds the leader (a member index); whole reports whether
	// every member follows it and has nearly caught up.
	status func(ctx context.Context) (leader int, whole bool, err error)
	// partition cuts member i off from the others' raft traffic (i < 0:
	// heals); nil unless the group was started partitionable.
	partition func(i int)
	// closeLinks ends the proxies of a partitionable group.
	closeLinks func()
}

// groupLagMax is how far (in log entries) a member may trail the leader
// for the group to count as whole: under load the log moves on by
// thousands of entries a second.
const groupLagMax = 1000

// groupReadyTimeout bounds the wait for a started or healed group to be
// whole.
const groupReadyTimeout = 60 * time.Second

func (g *Group) Endpoint() string { return strings.Join(g.Addrs, ",") }

// up is every member's process that runs now.
func (g *Group) up() []*Server {
	g.mu.Lock()
	defer g.mu.Unlock()
	var up []*Server
	for _, m := range g.members {
		if m != nil {
			up = append(up, m)
		}
	}
	return up
}

// RSS is the sum over the members that run.
func (g *Group) RSS() (int64, error) {
	var sum int64
	for _, m := range g.up() {
		b, err := m.RSS()
		if err != nil {
			return 0, err
		}
		sum += b
	}
	return sum, nil
}

// CPU is the sum over the members that run.
func (g *Group) CPU() (time.Duration, error) {
	var sum time.Duration
	for _, m := range g.up() {
		d, err := m.CPU()
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// Stop ends every member gracefully and removes the group's data.
func (g *Group) Stop() error {
	var errs []error
	for _, m := range g.up() {
		errs = append(errs, m.Stop())
	}
	g.mu.Lock()
	clear(g.members)
	g.mu.Unlock()
	if g.closeLinks != nil {
		g.closeLinks()
	}
	return errors.Join(append(errs, os.RemoveAll(g.dir))...)
}

// Leader waits until the group is whole (every member runs, follows one
// leader and has nearly caught up) and returns the leader's index.
func (g *Group) Leader(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, groupReadyTimeout)
	defer cancel()
	var last error
	for {
		lead, whole, err := g.status(ctx)
		switch {
		case err != nil:
			last = err
		case !whole:
			last = errors.New("not every member follows the leader yet")
		case len(g.up()) != len(g.Addrs):
			last = errors.New("a member is down")
		default:
			return lead, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("%s: not whole after %v: %w", g.Name, groupReadyTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ElectedSince is the first time at or after t that a running member said
// it became the leader, if one did.
func (g *Group) ElectedSince(t time.Time) (time.Time, bool) {
	var first time.Time
	for _, m := range g.up() {
		if at, ok := m.LeadingSince(t); ok && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

// Kill sends SIGKILL to member i and waits until the process has gone; its
// data stays.
func (g *Group) Kill(i int) error {
	g.mu.Lock()
	m := g.members[i]
	g.members[i] = nil
	g.mu.Unlock()
	if m == nil {
		return fmt.Errorf("%s: member %d is down already", g.Name, i+1)
	}
	m.Kill()
	return nil
}

// Partition cuts member i off from the other members' raft traffic (the
// clients still reach it); i < 0 heals. The group must have been started
// partitionable.
func (g *Group) Partition(i int) error {
	if g.partition == nil {
		return fmt.Errorf("%s: not started partitionable", g.Name)
	}
	g.partition(i)
	return nil
}

// Restart starts member i again on its data.
func (g *Group) Restart(ctx context.Context, i int) error {
	g.mu.Lock()
	g.restarts[i]++
	n := g.restarts[i]
	g.mu.Unlock()
	m, err := g.start(ctx, i, n)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.members[i] = m
	g.mu.Unlock()
	return nil
}

// startGroup starts every member at once (a member of a new group may
// wait for the others before it says it serves) and waits until the group
// is whole.
func startGroup(ctx context.Context, g *Group) (*Group, error) {
	g.members, g.restarts = make([]*Server, len(g.Addrs)), make([]int, len(g.Addrs))
	errs := make([]error, len(g.Addrs))
	var wg sync.WaitGroup
	for i := range g.Addrs {
		wg.Go(func() { g.members[i], errs[i] = g.start(ctx, i, 0) })
	}
	wg.Wait()
	err := errors.Join(errs...)
	if err == nil {
		_, err = g.Leader(ctx)
	}
	if err != nil {
		_ = g.Stop()
		return nil, err
	}
	return g, nil
}

// memberName names member i's log: NAME-mI.log, NAME-mI-rN.log after the
// Nth restart.
func memberName(group string, i, restart int) string {
	if restart == 0 {
		return fmt.Sprintf("%s-m%d", group, i+1)
	}
	return fmt.Sprintf("%s-m%d-r%d", group, i+1, restart)
}

// StartBouncerGroup runs a group of n `bouncer serve` members (ids 1..n),
// each with its own data directory under dir; if partitionable, each
// member reaches each other one through a proxy (Group.Partition).
func StartBouncerGroup(ctx context.Context, bin, dir, name string, n int, partitionable bool) (*Group, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	var clientList, peerAddrs []string
	g := &Group{Name: name, dir: dir}
	for i := range n {
		g.Addrs = append(g.Addrs, ports[2*i])
		clientList = append(clientList, fmt.Sprintf("%d=%s", i+1, ports[2*i]))
		peerAddrs = append(peerAddrs, ports[2*i+1])
	}
	var links pairLinks
	if partitionable {
		if links, err = newPairLinks(peerAddrs); err != nil {
			return nil, err
		}
		g.partition, g.closeLinks = links.cut, links.close
	}
	// peerList is member i's view of the others' peer addresses.
	peerList := func(i int) string {
		var l []string
		for j, a := range peerAddrs {
			if links != nil && i != j {
				a = links[i][j].Addr()
			}
			l = append(l, fmt.Sprintf("%d=%s", j+1, a))
		}
		return strings.Join(l, ",")
	}
	re := regexp.MustCompile(`msg=serving listen=(\S+)`)
	leader := regexp.MustCompile(`msg=leader id=\d+ self=true`)
	g.start = func(ctx context.Context, i, restart int) (*Server, error) {
		mdir := filepath.Join(dir, fmt.Sprintf("m%d", i+1))
		return startMember(ctx, memberName(name, i, restart), mdir, re, leader, "", bin, "serve",
			"--id", strconv.Itoa(i+1), "--peers", peerList(i), "--peer-listen", peerAddrs[i], "--clients", strings.Join(clientList, ","),
			"--listen", g.Addrs[i], "--data", filepath.Join(mdir, "data"), "--metrics", "")
	}
	g.status = func(ctx context.Context) (int, bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, "cluster", "status", "--json", "--timeout", "2s",
			"--addr", g.Endpoint()).Output()
		if err != nil {
			return -1, false, fmt.Errorf("bouncer cluster status: %w", err)
		}
		return parseBouncerStatus(out, n)
	}
	return startGroup(ctx, g)
}

// bouncerStatus is what `bouncer cluster status --json` prints (the
// command's JSON shape: numbers as numbers, snake_case names).
type bouncerStatus struct {
	ID      uint64 `json:"id"`
	Leader  uint64 `json:"leader"`
	Commit  uint64 `json:"commit"`
	Members []struct {
		ID           uint64 `json:"id"`
		Match        uint64 `json:"match"`
		RecentActive bool   `json:"recent_active"`
	} `json:"members"`
}

// parseBouncerStatus reads the leader's index (member id - 1) from a
// status answer, and whether the group of n is whole: the answer is the
// leader's own, and every member is active and within groupLagMax of its
// commit index. An answer from a member that is not the leader (the
// leader could not be reached) names no leader.
func parseBouncerStatus(b []byte, n int) (int, bool, error) {
	var st bouncerStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return -1, false, fmt.Errorf("bouncer cluster status: %w", err)
	}
	if st.Leader == 0 || st.Leader != st.ID {
		return -1, false, fmt.Errorf("bouncer cluster status: member %d answered, leader %d", st.ID, st.Leader)
	}
	if st.Leader > uint64(n) {
		return -1, false, fmt.Errorf("bouncer cluster status: leader %d is not a member 1..%d", st.Leader, n)
	}
	whole := len(st.Members) == n
	for _, m := range st.Members {
		if !m.RecentActive || m.Match+groupLagMax < st.Commit {
			whole = false
		}
	}
	return int(st.Leader) - 1, whole, nil
}

// StartEtcdGroup runs a cluster of n cmd/etcdnode members, each with its
// own data directory under dir; if partitionable, the others reach each
// member through a proxy (Group.Partition).
func StartEtcdGroup(ctx context.Context, bin, dir, name string, n int, partitionable bool) (*Group, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	var peerAddrs []string
	g := &Group{Name: name, dir: dir}
	for i := range n {
		g.Addrs = append(g.Addrs, ports[2*i])
		peerAddrs = append(peerAddrs, ports[2*i+1])
	}
	advertised := peerAddrs
	var links *httpLinks
	if partitionable {
		if links, err = newHTTPLinks(peerAddrs); err != nil {
			return nil, err
		}
		advertised = links.addrs
		g.partition, g.closeLinks = links.cut, links.close
	}
	var initial []string
	for i, a := range advertised {
		initial = append(initial, fmt.Sprintf("m%d=http://%s", i+1, a))
	}
	re := regexp.MustCompile(`^ready listen=(\S+)`)
	leader := regexp.MustCompile(`^leader id=\S+ self=true`)
	g.start = func(ctx context.Context, i, restart int) (*Server, error) {
		mdir := filepath.Join(dir, fmt.Sprintf("m%d", i+1))
		return startMember(ctx, memberName(name, i, restart), mdir, re, leader, "", bin, "--data", filepath.Join(mdir, "data"),
			"--client", ports[2*i], "--peer", peerAddrs[i], "--advertise-peer", advertised[i], "--name", fmt.Sprintf("m%d", i+1),
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-token", name)
	}
	g.status = func(ctx context.Context) (int, bool, error) { return etcdStatus(ctx, g.Addrs) }
	if g, err = startGroup(ctx, g); err != nil || links == nil {
		return g, err
	}
	ids, err := etcdMemberIDs(ctx, g.Addrs)
	if err != nil {
		_ = g.Stop()
		return nil, err
	}
	links.learn(ids)
	return g, nil
}
