package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestServeAccessFileReloadsOnHangup: bouncer serve --access-file judges
// calls by the file; SIGHUP rereads it; a bad file on SIGHUP keeps the old
// rules and says why in the log; both reloads are counted on /metrics.
func TestServeAccessFileReloadsOnHangup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	access := filepath.Join(dir, "access.json")
	write := func(text string) { require.NoError(t, os.WriteFile(access, []byte(text), 0o600)) }
	write(`{"identities": [{"name": "worker", "token": "w", "grants": [{"prefix": "jobs/", "rights": ["lock"]}]}]}`)
	// The node picks its metrics port and names it in its log: a port
	// picked here could be taken by another test's process before it binds.
	p := startNode(t, filepath.Join(dir, "data"), "127.0.0.1:0", "--access-file", access, "--metrics", "127.0.0.1:0")
	found := regexp.MustCompile(`msg=serving .*metrics=(127\.0\.0\.1:[0-9]+)`).FindStringSubmatch(p.log())
	require.NotNil(t, found, "no metrics address in the log:\n%s", p.log())
	metricsAddr := found[1]

	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	c := pb.NewLocksClient(conn)
	wctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer w")
	s, err := c.OpenSession(wctx, &pb.OpenSessionRequest{Ttl: durationpb.New(time.Minute)})
	require.NoError(t, err)
	req := uint64(0)
	acquire := func(name string) error {
		req++
		_, err := c.Acquire(wctx, &pb.AcquireRequest{SessionId: s.SessionId, RequestId: req, Resource: []byte(name),
			Mode: pb.Mode_MODE_EX, NoQueue: true})
		return err
	}
	require.NoError(t, acquire("jobs/1"))
	err = acquire("billing/1")
	require.Equal(t, codes.PermissionDenied, grpcstatus.Code(err), "%v", err)
	require.Contains(t, err.Error(), `Acquire needs the lock right on resource "billing/1"`)
	_, err = c.OpenSession(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer x"), &pb.OpenSessionRequest{})
	require.Equal(t, codes.Unauthenticated, grpcstatus.Code(err), "%v", err)

	// A good file and SIGHUP: billing/ is granted once the node has reread it.
	write(`{"identities": [{"name": "worker", "token": "w", "grants": [{"prefix": "jobs/", "rights": ["lock"]},
		{"prefix": "billing/", "rights": ["lock"]}]}]}`)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, p, "access rules reloaded")
	require.NoError(t, acquire("billing/1"))

	// A bad file and SIGHUP: the node says why and keeps the rules it had.
	write(`{"identities": [{"name": "worker", "token": "w", "grants": [{"prefix": "", "rights": ["lock", "everything"]}]}]}`)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, p, "access file reload failed: the old rules stay")
	require.Contains(t, p.log(), `unknown right \"everything\"`)
	require.NoError(t, acquire("billing/2"))
	require.Equal(t, codes.PermissionDenied, grpcstatus.Code(acquire("other/1")))

	m := scrape(t, metricsAddr)
	require.Contains(t, m, `bouncer_access_reloads_total{result="ok"} 1`)
	require.Contains(t, m, `bouncer_access_reloads_total{result="failed"} 1`)
	require.NoError(t, p.stop(t), p.log())
}

// TestServeAccessFileRefusals: serve refuses a bad access file at start,
// naming it and the entry, and refuses --access-file with
// --auth-token-file.
func TestServeAccessFileRefusals(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"identities": [{"name": "a", "token": "t", "grants": [{"prefix": "", "rights": ["lok"]}]}]}`), 0o600))
	code, out := run(t, "serve", "--data", filepath.Join(dir, "d1"), "--listen", "127.0.0.1:0", "--metrics", "", "--access-file", bad)
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "access file "+bad+`: identity 1 ("a"): grant 1: unknown right "lok"`)

	tokens := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte("t\n"), 0o600))
	code, out = run(t, "serve", "--data", filepath.Join(dir, "d2"), "--listen", "127.0.0.1:0", "--metrics", "",
		"--access-file", bad, "--auth-token-file", tokens)
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "--access-file and --auth-token-file do not go together")
}

// waitLog waits until the node's log holds text.
func waitLog(t *testing.T, p *proc, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.log(), text) {
		require.True(t, time.Now().Before(deadline), "no %q in the log:\n%s", text, p.log())
		time.Sleep(10 * time.Millisecond)
	}
}

// freeLoopbackAddr is a loopback address whose port was free a moment ago.
func freeLoopbackAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// scrape reads the node's metrics, waiting for the endpoint to be up.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := hc.Get("http://" + addr + "/metrics")
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			require.NoError(t, err)
			return string(b)
		}
		require.True(t, time.Now().Before(deadline), "metrics endpoint: %v", err)
		time.Sleep(20 * time.Millisecond)
	}
}
