package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/cluster"
	"github.com/bouncer-dlm/bouncer/peer"
	"github.com/bouncer-dlm/bouncer/replica"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// memberFlags are serve's flags for a member of a replicated group.
type memberFlags struct {
	id                                 uint64
	peers, clients, peerListen, join   string
	clusterID                          string
	peerTLSCert, peerTLSKey, peerTLSCA string
	tick                               time.Duration
	electionTicks                      int
	snapshotEvery                      uint64
	advertiseClient, advertisePeer     string
}

func (f *memberFlags) register(fl *pflag.FlagSet) {
	fl.Uint64Var(&f.id, "id", 0, "this member's id in its group (> 0); with --peers or --join, serve a member of a replicated group")
	fl.StringVar(&f.peers, "peers", "", "the group's first members and their peer addresses: 1=HOST:PORT,2=HOST:PORT,3=HOST:PORT (this one's included)")
	fl.StringVar(&f.clients, "clients", "", "the first members' client addresses, named in the refusals of members that are not the leader: 1=HOST:PORT,...")
	fl.StringVar(&f.peerListen, "peer-listen", "", "address of the peer port, for raft's messages (default: this member's address in --peers)")
	fl.StringVar(&f.join, "join", "", "join a running group: the client address of one of its members; this member starts empty and catches up")
	fl.StringVar(&f.advertiseClient, "advertise-client", "", "with --join: the client address the others name (default --listen)")
	fl.StringVar(&f.advertisePeer, "advertise-peer", "", "with --join: the peer address the others send to (default --peer-listen)")
	fl.StringVar(&f.clusterID, "cluster-id", "bouncer", "the group's name: members refuse peers of another group")
	fl.StringVar(&f.peerTLSCert, "peer-tls-cert", "", "the member's certificate (PEM) on peer links, as server and as client")
	fl.StringVar(&f.peerTLSKey, "peer-tls-key", "", "its private key (PEM)")
	fl.StringVar(&f.peerTLSCA, "peer-tls-ca", "", "CA bundle (PEM) that every member's certificate chains to; peers without one are refused")
	fl.DurationVar(&f.tick, "raft-tick", 100*time.Millisecond, "raft's tick: heartbeats every tick")
	fl.IntVar(&f.electionTicks, "election-ticks", 10, "ticks without a leader before a member campaigns (plus up to as many again)")
	fl.Uint64Var(&f.snapshotEvery, "snapshot-every", 4096, "applied entries the log keeps beyond its last snapshot before a new snapshot compacts it")
}

func (f *memberFlags) enabled() bool { return f.peers != "" || f.join != "" }

// parseIDMap parses ID=ADDR,ID=ADDR.
func parseIDMap(flag, s string) (map[uint64]string, error) {
	m := map[uint64]string{}
	if s == "" {
		return m, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		id, err := strconv.ParseUint(k, 10, 64)
		if !ok || err != nil || id == 0 || v == "" {
			return nil, fmt.Errorf("--%s: %q is not ID=HOST:PORT with an id > 0", flag, kv)
		}
		if _, _, err := net.SplitHostPort(v); err != nil {
			return nil, fmt.Errorf("--%s: member %d: %w", flag, id, err)
		}
		if _, dup := m[id]; dup {
			return nil, fmt.Errorf("--%s: member %d named twice", flag, id)
		}
		m[id] = v
	}
	return m, nil
}

// member is a running member: its server, its loop, and how to stop the
// parts the server does not own.
type member struct {
	srv  *server.Server
	loop *cluster.Loop
	stop func()
}

// startMember opens the member's replica in data and starts its peer port,
// transport and server.
func startMember(f *memberFlags, data, listen string, lim spec.Limits, opts server.Options, log *slog.Logger) (*member, error) {
	if f.id == 0 {
		return nil, errors.New("--id: a member needs an id > 0")
	}
	peers, err := parseIDMap("peers", f.peers)
	if err != nil {
		return nil, err
	}
	clients, err := parseIDMap("clients", f.clients)
	if err != nil {
		return nil, err
	}
	join := f.join != ""
	if join == (len(peers) > 0) {
		return nil, errors.New("a member takes --peers (a new group, or a restart) or --join (a new member of a running group), not both")
	}
	if !join {
		if _, ok := peers[f.id]; !ok {
			return nil, fmt.Errorf("--peers: this member's id %d is not among them", f.id)
		}
		for id := range clients {
			if _, ok := peers[id]; !ok {
				return nil, fmt.Errorf("--clients: member %d is not in --peers", id)
			}
		}
	}
	peerListen := f.peerListen
	if peerListen == "" {
		peerListen = peers[f.id]
	}
	if peerListen == "" {
		return nil, errors.New("--peer-listen: a joining member needs its peer address")
	}
	serverTLS, clientTLS, err := peerTLS(f)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var joined *pb.ClusterStatus
	if join {
		if joined, err = clusterStatusAt(ctx, f.join); err != nil {
			return nil, fmt.Errorf("--join %s: %w", f.join, err)
		}
		for _, m := range joined.Members {
			if m.Id == f.id {
				return nil, fmt.Errorf("--join: member %d is in the group already", f.id)
			}
			peers[m.Id], clients[m.Id] = m.PeerAddr, m.ClientAddr
		}
		if f.clusterID != joined.ClusterId {
			return nil, fmt.Errorf("--join: the group is %q, not --cluster-id %q", joined.ClusterId, f.clusterID)
		}
	}
	tpeers := map[uint64]string{f.id: peerListen}
	for id, a := range peers {
		tpeers[id] = a
	}
	tr, err := peer.New(peer.Config{ID: f.id, ClusterID: f.clusterID, Peers: tpeers, ServerTLS: serverTLS,
		ClientTLS: clientTLS, Log: log})
	if err != nil {
		return nil, err
	}
	plis, err := net.Listen("tcp", peerListen)
	if err != nil {
		_ = tr.Close()
		return nil, fmt.Errorf("peer listen: %w", err)
	}
	pg := grpc.NewServer(tr.ServerOptions()...)
	tr.Register(pg)
	go func() { _ = pg.Serve(plis) }()
	fail := func(err error) (*member, error) {
		pg.Stop()
		_ = tr.Close()
		return nil, err
	}

	ids := slices.Sorted(func(yield func(uint64) bool) {
		for id := range peers {
			if !yield(id) {
				return
			}
		}
	})
	r, err := replica.New(replica.Config{ID: f.id, Peers: ids, Join: join, Limits: lim, FS: vfs.Default, Dir: data,
		Log: log, ElectionTick: f.electionTicks, HeartbeatTick: 1, CompactAfter: f.snapshotEvery})
	if err != nil {
		return fail(err)
	}
	members := map[uint64]cluster.Addrs{}
	for id, a := range peers {
		members[id] = cluster.Addrs{Peer: a, Client: clients[id]}
	}
	var known sync.Map // peers the transport sends to, by id
	for id := range tpeers {
		known.Store(id, true)
	}
	onMembers := func(voters []uint64, addrs map[uint64]cluster.Addrs) {
		for id, a := range addrs {
			if id != f.id && a.Peer != "" {
				tr.SetPeer(id, a.Peer)
				known.Store(id, true)
			}
		}
		var ids []uint64
		known.Range(func(k, _ any) bool {
			ids = append(ids, k.(uint64))
			return true
		})
		for _, id := range stalePeers(f.id, voters, ids, join) {
			tr.RemovePeer(id)
			known.Delete(id)
		}
		log.Info("members", "voters", voters)
	}
	opts.ClusterID = f.clusterID
	srv, loop := server.NewMember(r, tr, cluster.Options{Tick: f.tick, Members: members, OnMembers: onMembers}, opts)
	go func() {
		for {
			select {
			case rep := <-tr.Reports():
				switch {
				case rep.Snapshot:
					loop.ReportSnapshot(rep.To, rep.Failed)
				case rep.Unreachable:
					loop.ReportUnreachable(rep.To)
				}
			case <-loop.Done():
				return
			}
		}
	}()
	m := &member{srv: srv, loop: loop, stop: func() {
		pg.Stop()
		_ = tr.Close()
	}}
	if join {
		client := f.advertiseClient
		if client == "" {
			client = listen
		}
		adv := f.advertisePeer
		if adv == "" {
			adv = peerListen
		}
		if err := askToJoin(ctx, f.join, &pb.AddMemberRequest{Id: f.id, PeerAddr: adv, ClientAddr: client}); err != nil {
			_ = srv.Stop()
			m.stop()
			return nil, fmt.Errorf("--join: %w", err)
		}
		log.Info("joined", "group", f.clusterID, "via", f.join)
	}
	return m, nil
}

// peerTLS builds the peer links' TLS from the flags (nil, nil: plaintext).
func peerTLS(f *memberFlags) (server, client *tls.Config, err error) {
	if f.peerTLSCert == "" && f.peerTLSKey == "" && f.peerTLSCA == "" {
		return nil, nil, nil
	}
	if f.peerTLSCert == "" || f.peerTLSKey == "" || f.peerTLSCA == "" {
		return nil, nil, errors.New("--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together")
	}
	cert, err := tls.LoadX509KeyPair(f.peerTLSCert, f.peerTLSKey)
	if err != nil {
		return nil, nil, fmt.Errorf("peer tls: %w", err)
	}
	pool, err := loadPool(f.peerTLSCA)
	if err != nil {
		return nil, nil, err
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client, nil
}

// clusterStatusAt asks the member at addr (a client address) for its view.
func clusterStatusAt(ctx context.Context, addr string) (*pb.ClusterStatus, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return pb.NewClusterClient(conn).Status(ctx, &pb.ClusterStatusRequest{})
}

// askToJoin asks the group's leader, found from addr by following the
// members' refusals, to add this member.
func askToJoin(ctx context.Context, addr string, req *pb.AddMemberRequest) error {
	for range 8 {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		_, err = pb.NewClusterClient(conn).AddMember(ctx, req)
		_ = conn.Close()
		leader, notLeader := wire.LeaderHint(err)
		switch {
		case err == nil:
			return nil
		case notLeader && leader != "":
			addr = leader
		case notLeader:
			select { // no leader known yet
			case <-time.After(500 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		default:
			return err
		}
	}
	return errors.New("could not find the group's leader")
}

// stalePeers are the peers among known that the transport should forget:
// neither this member (self) nor a voter. Until a member sees a
// configuration (voters is empty) it forgets none; a member that joined a
// running group forgets none until it sees itself among the voters, since
// until then it may hold a configuration older than the group's.
func stalePeers(self uint64, voters, known []uint64, joined bool) []uint64 {
	if len(voters) == 0 || joined && !slices.Contains(voters, self) {
		return nil
	}
	var stale []uint64
	for _, id := range known {
		if id != self && !slices.Contains(voters, id) {
			stale = append(stale, id)
		}
	}
	return stale
}
