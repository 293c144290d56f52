// Package servertest starts lock nodes on loopback for tests: in-process,
// over an in-memory store, stopped with the test.
package servertest

import (
	"net"
	"testing"

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
	if opts.Limits == (spec.Limits{}) {
		opts.Limits = spec.DefaultLimits()
	}
	n, err := engine.OpenNode(engine.NodeOptions{FS: vfs.NewMem(), Dir: "db", Limits: opts.Limits}, engine.WallClock{}.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(n, opts)
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(func() {
		g.Stop()
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return lis.Addr().String()
}
