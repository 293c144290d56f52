package server_test

import (
	"context"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestAbuseMeasurement measures what an abuser costs a well-behaved client
// and the node, with the default bounds: one client floods sessions until
// its quota refuses it and holds idle connections, while another locks and
// unlocks. It reports the well-behaved client's p99 acquire latency and
// the process's Go heap and RSS before, during and after the abuse (the
// abuser's client side runs in this process too). Run it with
//
//	BOUNCER_ABUSE=1 go test ./server -run TestAbuseMeasurement -v
func TestAbuseMeasurement(t *testing.T) {
	if os.Getenv("BOUNCER_ABUSE") == "" {
		t.Skip("set BOUNCER_ABUSE=1 to measure")
	}
	idle, _ := strconv.Atoi(os.Getenv("BOUNCER_ABUSE_CONNS"))
	if idle <= 0 {
		idle = 3000
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	abuser, good, n := clients(t, server.Options{})
	mem := func() (heapMiB, rssMiB float64) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc) / (1 << 20), rssOf() / (1 << 20)
	}
	h0, r0 := mem()

	var ids [][]byte
	start := time.Now()
	for {
		r, err := abuser.OpenSession(ctx, &pb.OpenSessionRequest{Ttl: durationpb.New(time.Hour)})
		if err != nil {
			require.Equal(t, pb.Code_CODE_LIMIT_EXCEEDED, code(t, err))
			break
		}
		ids = append(ids, r.SessionId)
	}
	flood := time.Since(start)
	var raw []net.Conn
	for range idle {
		c, err := net.Dial("tcp", n.Addr)
		require.NoError(t, err)
		raw = append(raw, c)
	}
	// The well-behaved client locks and unlocks while the abuser holds on.
	id := open(t, ctx, good, "good")
	var lat []time.Duration
	for i := range 2000 {
		t0 := time.Now()
		_, err := good.Acquire(ctx, &pb.AcquireRequest{SessionId: id, RequestId: uint64(2*i + 1), Acked: uint64(2 * i),
			Resource: []byte("r"), Mode: pb.Mode_MODE_EX})
		require.NoError(t, err)
		lat = append(lat, time.Since(t0))
		_, err = good.Release(ctx, &pb.ReleaseRequest{SessionId: id, RequestId: uint64(2*i + 2), Acked: uint64(2*i + 1), Resource: []byte("r")})
		require.NoError(t, err)
	}
	slices.Sort(lat)
	h1, r1 := mem()

	for _, c := range raw {
		_ = c.Close()
	}
	for _, id := range ids {
		_, err := abuser.CloseSession(ctx, &pb.CloseSessionRequest{SessionId: id})
		require.NoError(t, err)
	}
	connections(t, n, func(held int) bool { return held <= 2 })
	h2, r2 := mem()
	t.Logf("abuse: %d sessions opened in %v until refused (SessionsPerClientMax), %d idle TCP connections held", len(ids), flood.Round(time.Millisecond), idle)
	t.Logf("well-behaved client during the abuse: acquire p50 %v p99 %v max %v (%d acquires, fsync on, in-memory store)",
		lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1], len(lat))
	t.Logf("Go heap MiB before %.1f during %.1f after %.1f; RSS MiB before %.1f during %.1f after %.1f", h0, h1, h2, r0, r1, r2)
}

// rssOf reads this process's resident set size (Linux); 0 elsewhere.
func rssOf() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) * 1024
		}
	}
	return 0
}
