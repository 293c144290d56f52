// Package servertest starts lock nodes on loopback for tests: in-process,
// over an in-memory store, stopped with the test.
package servertest

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/grpc"
)

// Start serves a fresh node on 127.0.0.1 and returns its address. Zero
// opts.Limits means spec.DefaultLimits.
func Start(t testing.TB, opts server.Options) string {
	t.Helper()
	return StartOn(t, vfs.NewMem(), "127.0.0.1:0", opts).Addr
}

// Node is a running node.
type Node struct {
	Addr   string
	FS     vfs.FS // its disk: start another node on it to restart
	Server *server.Server

	once sync.Once
	stop func()
}

// Stop stops the node (gracefully, closing its store); later calls do
// nothing. The test's cleanup calls it too.
func (n *Node) Stop() { n.once.Do(n.stop) }

// StartOn serves a node whose store is directory "db" of fs on addr (port 0:
// any free port). To restart a node, Stop it and StartOn its FS and Addr;
// StartOn waits briefly for the old listener's port to be free.
func StartOn(t testing.TB, fs vfs.FS, addr string, opts server.Options) *Node {
	t.Helper()
	if opts.Limits == (spec.Limits{}) {
		opts.Limits = spec.DefaultLimits()
	}
	n, err := engine.OpenNode(engine.NodeOptions{FS: fs, Dir: "db", Limits: opts.Limits}, 0) // the store's own clock
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(n, opts)
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	var lis net.Listener
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if lis, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		_ = srv.Stop()
		t.Fatal(err)
	}
	lis = srv.Listen(lis, false)
	go func() { _ = g.Serve(lis) }()
	node := &Node{Addr: lis.Addr().String(), FS: fs, Server: srv, stop: func() {
		g.Stop()
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	}}
	t.Cleanup(node.Stop)
	return node
}
