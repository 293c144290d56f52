// Command etcdnode runs one embedded etcd server (go.etcd.io/etcd/server/v3/embed)
// with its data on disk, in a process of its own so that the peer benchmark
// can read its memory (RSS) apart from the load generator's. It prints
// "ready listen=ADDR id=MEMBER" on stdout once it serves, "leader id=ID self=BOOL" on
// every change of leader after that, and stops cleanly on SIGTERM or SIGINT.
//
// Alone it is a cluster of one. A member of a cluster of several is given
// its --name and the --initial-cluster (NAME=http://HOST:PORT of every
// member's peer address, its own included); the members must be started
// together, since a member is ready only once the cluster has a leader.
// Restarted on the same --data, a member rejoins from its WAL and ignores
// --initial-cluster.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	data := flag.String("data", "", "data directory (required)")
	client := flag.String("client", "127.0.0.1:2379", "client address (loopback)")
	peer := flag.String("peer", "127.0.0.1:2380", "peer address (loopback; unused by a single member)")
	advertisePeer := flag.String("advertise-peer", "", "peer address the other members reach this one at, e.g. a proxy's (default: --peer)")
	name := flag.String("name", "bench", "this member's name")
	initial := flag.String("initial-cluster", "", "every member's NAME=http://HOST:PORT (peer address), comma-separated (default: this member alone)")
	token := flag.String("initial-cluster-token", "", "the cluster's token, so that members of another cluster are refused (default: etcd's)")
	flag.Parse()
	if *data == "" {
		log.Fatal("etcdnode: --data is required")
	}
	cu, err := url.Parse("http://" + *client)
	if err != nil {
		log.Fatalf("etcdnode: --client: %v", err)
	}
	pu, err := url.Parse("http://" + *peer)
	if err != nil {
		log.Fatalf("etcdnode: --peer: %v", err)
	}
	apu := pu
	if *advertisePeer != "" {
		if apu, err = url.Parse("http://" + *advertisePeer); err != nil {
			log.Fatalf("etcdnode: --advertise-peer: %v", err)
		}
	}
	// Defaults everywhere else: the WAL is fsynced before every
	// acknowledged write, as a user of etcd would run it.
	cfg := embed.NewConfig()
	cfg.Name = *name
	cfg.Dir = *data
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*apu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	if *initial != "" {
		cfg.InitialCluster = *initial
	}
	if *token != "" {
		cfg.InitialClusterToken = *token
	}
	cfg.LogLevel = "error"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatalf("etcdnode: start: %v", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		log.Fatal("etcdnode: not ready after 60s")
	}
	fmt.Printf("ready listen=%s id=%s\n", e.Clients[0].Addr(), e.Server.MemberID())
	// Every change of leader, so that a benchmark can time elections.
	go func() {
		for {
			select {
			case <-e.Server.LeaderChangedNotify():
			case <-e.Server.StopNotify():
				return
			}
			lead := e.Server.Leader()
			fmt.Printf("leader id=%s self=%v\n", lead, lead == e.Server.MemberID())
		}
	}()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case err := <-e.Err():
		log.Printf("etcdnode: %v", err)
	}
	e.Close()
}
