package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/cluster"
	"github.com/bouncer-dlm/bouncer/replica"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Access rules against a real node: a member of a group of one (so that it
// serves the Cluster service too) on 127.0.0.1, under TLS that verifies
// client certificates when given, with an access file.

// testPKI is a CA in memory and the certificates it issues.
type testPKI struct {
	pool *x509.CertPool
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T) *testPKI {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{pool: pool, ca: ca, key: key}
}

// issue makes a certificate for cn (and the DNS names and IPs) with usage.
func (p *testPKI) issue(t *testing.T, cn string, dns []string, ips []net.IP, usage x509.ExtKeyUsage) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: dns, IPAddresses: ips,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// accessNode is a running member with access rules.
type accessNode struct {
	addr string
	srv  *Server
	pki  *testPKI
	reg  *prometheus.Registry
	log  *syncBuffer
}

// syncBuffer is a log sink that tests read while the node writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startAccessNode serves a member of a group of one with the access file
// at path, and waits until it leads.
func startAccessNode(t *testing.T, path string) *accessNode {
	t.Helper()
	rules, err := LoadAccessFile(path)
	require.NoError(t, err)
	pki := newTestPKI(t)
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	r, err := replica.New(replica.Config{ID: 1, Peers: []uint64{1}, Limits: spec.DefaultLimits(), FS: vfs.NewMem(),
		ElectionTick: 10, HeartbeatTick: 1})
	require.NoError(t, err)
	srv, _ := NewMember(r, nowhere{make(chan *raftpb.Message)}, cluster.Options{Tick: 5 * time.Millisecond,
		Members: map[uint64]cluster.Addrs{1: {Peer: "p1", Client: "c1"}}},
		Options{Limits: spec.DefaultLimits(), Access: rules, Registry: reg, Log: slog.New(slog.NewTextHandler(logs, nil))})
	serverCert := pki.issue(t, "node", nil, []net.IP{net.ParseIP("127.0.0.1")}, x509.ExtKeyUsageServerAuth)
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pki.pool,
		ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12})
	g := grpc.NewServer(append(srv.ServerOptions(), grpc.Creds(creds))...)
	srv.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = g.Serve(srv.Listen(lis, true)) }()
	t.Cleanup(func() {
		g.Stop()
		_ = srv.Stop()
	})
	deadline := time.Now().Add(10 * time.Second)
	for healthOf(t, srv) != healthpb.HealthCheckResponse_SERVING {
		require.True(t, time.Now().Before(deadline), "the member never led")
		time.Sleep(5 * time.Millisecond)
	}
	return &accessNode{addr: lis.Addr().String(), srv: srv, pki: pki, reg: reg, log: logs}
}

// caller is one identity's way to the node.
type caller struct {
	name    string
	ctx     context.Context // carries its bearer token, if any
	locks   pb.LocksClient
	cluster pb.ClusterClient
	health  healthpb.HealthClient
}

// dial connects as a caller: with a bearer token, or a client certificate.
func (n *accessNode) dial(t *testing.T, ctx context.Context, name, token string, cert *tls.Certificate) *caller {
	t.Helper()
	cfg := &tls.Config{RootCAs: n.pki.pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	return &caller{name: name, ctx: ctx, locks: pb.NewLocksClient(conn), cluster: pb.NewClusterClient(conn),
		health: healthpb.NewHealthClient(conn)}
}

const accessRolesFile = `{"identities": [
	{"name": "worker", "token": "worker-token", "grants": [{"prefix": "jobs/", "rights": ["lock"]}]},
	{"name": "reader", "token": "reader-token", "grants": [{"prefix": "", "rights": ["read"]}]},
	{"name": "admin", "token": "admin-token", "grants": [{"prefix": "", "rights": ["admin"]}]},
	{"name": "certw", "cert": "certw.test", "grants": [{"prefix": "certs/", "rights": ["lock", "read"]}]}
]}`

var reqIDs atomic.Uint64 // request ids, unique across every session of a test

func nextReq() uint64 { return reqIDs.Add(1) }

// accessCase is one RPC tried by a role on a target: run makes the call
// (after setup, run by the target's owner) and returns its error; after,
// for a mutation, reports whether the call took effect, seen by a reader.
type accessCase struct {
	rpc string
	// want: per role (worker reader admin certw nobody stranger), y
	// allowed, n PermissionDenied, u Unauthenticated; by target prefix
	// ("jobs/", "certs/"), or "" for both.
	want map[string]string
	run  func(e *accessEnv, c *caller, target string) error
	// mutates: the target's state before, and whether the call changed it
	// (read afterwards by the reader).
	setup   func(e *accessEnv, target string)
	changed func(e *accessEnv, target string) bool
}

// accessEnv is the node, its callers, and a session of each lock role.
type accessEnv struct {
	t       *testing.T
	node    *accessNode
	reader  *caller
	owners  map[string]*caller // by target prefix: the role that may lock there
	session map[string][]byte  // by target prefix: a live session of its owner
	extra   map[string][]byte  // by target: a second session used by setup
}

func (e *accessEnv) prefixOf(target string) string {
	for p := range e.owners {
		if len(target) >= len(p) && target[:len(p)] == p {
			return p
		}
	}
	panic(target)
}

func (e *accessEnv) open(c *caller) []byte {
	r, err := c.locks.OpenSession(c.ctx, &pb.OpenSessionRequest{Ttl: durationpb.New(time.Minute)})
	require.NoError(e.t, err, "open as %s", c.name)
	return r.SessionId
}

func (e *accessEnv) ownerAcquire(target string, sess []byte, mode pb.Mode, async bool) {
	o := e.owners[e.prefixOf(target)]
	_, err := o.locks.Acquire(o.ctx, &pb.AcquireRequest{SessionId: sess, RequestId: nextReq(), Resource: []byte(target),
		Mode: mode, Async: async})
	require.NoError(e.t, err, "setup: %s acquires %s", o.name, target)
}

// describe is the target's state as the reader sees it.
func (e *accessEnv) describe(target string) *pb.DescribeResponse {
	r, err := e.reader.locks.Describe(e.reader.ctx, &pb.DescribeRequest{Resource: []byte(target)})
	require.NoError(e.t, err)
	return r
}

func (e *accessEnv) sess(target string) []byte { return e.session[e.prefixOf(target)] }

var lockWant = map[string]string{"jobs/": "ynnnuu", "certs/": "nnnyuu"}
var readWant = map[string]string{"jobs/": "nynnuu", "certs/": "nynyuu"}
var sessionWant = map[string]string{"": "ynnyuu"}
var adminWant = map[string]string{"": "nnynuu"}
var openWant = map[string]string{"": "yyyyyy"}
var someReadWant = map[string]string{"": "nynyuu"}
var allReadWant = map[string]string{"": "nynnuu"}

func accessCases() []accessCase {
	exists := func(e *accessEnv, target string) bool { return e.describe(target).Exists }
	return []accessCase{
		{rpc: "OpenSession", want: sessionWant, run: func(e *accessEnv, c *caller, _ string) error {
			_, err := c.locks.OpenSession(c.ctx, &pb.OpenSessionRequest{Ttl: durationpb.New(time.Minute)})
			return err
		}},
		{rpc: "KeepAlive", want: sessionWant, run: func(e *accessEnv, c *caller, target string) error {
			st, err := c.locks.KeepAlive(c.ctx)
			if err != nil {
				return err
			}
			if err := st.Send(&pb.KeepAliveRequest{SessionId: e.sess(target)}); err != nil {
				_, err = st.Recv()
				return err
			}
			r, err := st.Recv()
			if err == nil && r.Code != pb.Code_CODE_OK {
				return fmt.Errorf("keepalive answered %v", r.Code)
			}
			_ = st.CloseSend()
			return err
		}},
		{rpc: "CloseSession", want: sessionWant,
			setup: func(e *accessEnv, target string) {
				o := e.owners[e.prefixOf(target)]
				e.extra[target] = e.open(o)
				e.ownerAcquire(target, e.extra[target], pb.Mode_MODE_EX, false)
			},
			run: func(e *accessEnv, c *caller, target string) error {
				_, err := c.locks.CloseSession(c.ctx, &pb.CloseSessionRequest{SessionId: e.extra[target]})
				return err
			},
			changed: func(e *accessEnv, target string) bool { return !e.describe(target).Exists }},
		{rpc: "Acquire", want: lockWant, changed: exists, run: func(e *accessEnv, c *caller, target string) error {
			_, err := c.locks.Acquire(c.ctx, &pb.AcquireRequest{SessionId: e.sess(target), RequestId: nextReq(),
				Resource: []byte(target), Mode: pb.Mode_MODE_EX, NoQueue: true})
			return err
		}},
		{rpc: "Convert", want: lockWant,
			setup: func(e *accessEnv, target string) { e.ownerAcquire(target, e.sess(target), pb.Mode_MODE_PR, false) },
			run: func(e *accessEnv, c *caller, target string) error {
				_, err := c.locks.Convert(c.ctx, &pb.ConvertRequest{SessionId: e.sess(target), RequestId: nextReq(),
					Resource: []byte(target), Mode: pb.Mode_MODE_EX, NoQueue: true})
				return err
			},
			changed: func(e *accessEnv, target string) bool {
				return e.describe(target).Resource.Holders[0].Mode == pb.Mode_MODE_EX
			}},
		{rpc: "Release", want: lockWant,
			setup: func(e *accessEnv, target string) { e.ownerAcquire(target, e.sess(target), pb.Mode_MODE_EX, false) },
			run: func(e *accessEnv, c *caller, target string) error {
				_, err := c.locks.Release(c.ctx, &pb.ReleaseRequest{SessionId: e.sess(target), RequestId: nextReq(),
					Resource: []byte(target)})
				return err
			},
			changed: func(e *accessEnv, target string) bool { return !e.describe(target).Exists }},
		{rpc: "Cancel", want: lockWant,
			setup: func(e *accessEnv, target string) {
				o := e.owners[e.prefixOf(target)]
				e.extra[target] = e.open(o)
				e.ownerAcquire(target, e.extra[target], pb.Mode_MODE_EX, false)
				e.ownerAcquire(target, e.sess(target), pb.Mode_MODE_EX, true) // queued behind it
			},
			run: func(e *accessEnv, c *caller, target string) error {
				_, err := c.locks.Cancel(c.ctx, &pb.CancelRequest{SessionId: e.sess(target), RequestId: nextReq(),
					Resource: []byte(target)})
				return err
			},
			changed: func(e *accessEnv, target string) bool { return len(e.describe(target).Resource.Waiting) == 0 }},
		{rpc: "Pipe", want: lockWant, changed: exists, run: func(e *accessEnv, c *caller, target string) error {
			st, err := c.locks.Pipe(c.ctx)
			if err != nil {
				return err
			}
			defer func() { _ = st.CloseSend() }()
			req := &pb.PipeRequest{Call: 7, Op: &pb.PipeRequest_Acquire{Acquire: &pb.AcquireRequest{SessionId: e.sess(target),
				RequestId: nextReq(), Resource: []byte(target), Mode: pb.Mode_MODE_EX, NoQueue: true}}}
			if err := st.Send(req); err != nil {
				_, err = st.Recv()
				return err
			}
			r, err := st.Recv()
			if err != nil {
				return err
			}
			require.Equal(e.t, uint64(7), r.Call)
			if r.Code == pb.Code_CODE_PERMISSION_DENIED {
				return status.Error(codes.PermissionDenied, r.Detail)
			}
			if r.Code != pb.Code_CODE_OK {
				return fmt.Errorf("pipe answered %v: %s", r.Code, r.Detail)
			}
			return nil
		}},
		{rpc: "Events", want: sessionWant, run: func(e *accessEnv, c *caller, target string) error {
			st, err := c.locks.Events(c.ctx, &pb.EventsRequest{SessionId: e.sess(target)})
			if err != nil {
				return err
			}
			ev, err := st.Recv()
			if err == nil && ev.GetSubscribed() == nil {
				return fmt.Errorf("events began with %v", ev)
			}
			return err
		}},
		{rpc: "Describe", want: readWant, run: func(e *accessEnv, c *caller, target string) error {
			_, err := c.locks.Describe(c.ctx, &pb.DescribeRequest{Resource: []byte(target)})
			return err
		}},
		{rpc: "List", want: readWant, run: func(e *accessEnv, c *caller, target string) error {
			_, err := c.locks.List(c.ctx, &pb.ListRequest{Prefix: []byte(target)})
			return err
		}},
		{rpc: "GetSequencer", want: lockWant, run: func(e *accessEnv, c *caller, target string) error {
			_, err := c.locks.GetSequencer(c.ctx, &pb.GetSequencerRequest{SessionId: e.sess(target), Resource: []byte(target)})
			return err
		}},
		{rpc: "CheckSequencer", want: someReadWant, run: func(e *accessEnv, c *caller, _ string) error {
			_, err := c.locks.CheckSequencer(c.ctx, &pb.CheckSequencerRequest{Sequencer: []byte("not a sequencer")})
			return err
		}},
		{rpc: "WaitGraph", want: allReadWant, run: func(e *accessEnv, c *caller, _ string) error {
			_, err := c.locks.WaitGraph(c.ctx, &pb.WaitGraphRequest{})
			return err
		}},
		{rpc: "PublicKey", want: someReadWant, run: func(e *accessEnv, c *caller, _ string) error {
			_, err := c.locks.PublicKey(c.ctx, &pb.PublicKeyRequest{})
			return err
		}},
		{rpc: "Watch", want: readWant, run: func(e *accessEnv, c *caller, target string) error {
			st, err := c.locks.Watch(c.ctx, &pb.WatchRequest{Resource: []byte(target)})
			if err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		}},
		{rpc: "Cluster/Status", want: adminWant, run: func(e *accessEnv, c *caller, _ string) error {
			_, err := c.cluster.Status(c.ctx, &pb.ClusterStatusRequest{})
			return err
		}},
		{rpc: "Cluster/AddMember", want: adminWant, run: func(e *accessEnv, c *caller, _ string) error {
			_, err := c.cluster.AddMember(c.ctx, &pb.AddMemberRequest{}) // id 0: refused by the service, if reached
			return err
		}},
		{rpc: "Cluster/RemoveMember", want: adminWant, run: func(e *accessEnv, c *caller, _ string) error {
			ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
			defer cancel()
			_, err := c.cluster.RemoveMember(ctx, &pb.RemoveMemberRequest{Id: 99}) // no such member
			return err
		}},
		{rpc: "Cluster/TransferLeader", want: adminWant, run: func(e *accessEnv, c *caller, _ string) error {
			_, err := c.cluster.TransferLeader(c.ctx, &pb.TransferLeaderRequest{Id: 99}) // not a voter
			return err
		}},
		{rpc: "Health/Check", want: openWant, run: func(e *accessEnv, c *caller, _ string) error {
			_, err := c.health.Check(c.ctx, &healthpb.HealthCheckRequest{})
			return err
		}},
		{rpc: "Health/List", want: openWant, run: func(e *accessEnv, c *caller, _ string) error {
			_, err := c.health.List(c.ctx, &healthpb.HealthListRequest{})
			return err
		}},
		{rpc: "Health/Watch", want: openWant, run: func(e *accessEnv, c *caller, _ string) error {
			st, err := c.health.Watch(c.ctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		}},
	}
}

// TestAccessEveryRPCEveryRole tries every RPC of every service the node
// serves with every role, on a resource under each role's prefix: allowed
// or PermissionDenied (Unauthenticated for callers the file does not
// list), as the table says; and a refused mutation changed nothing, while
// an allowed one did (read afterwards by the reader).
func TestAccessEveryRPCEveryRole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := startAccessNode(t, writeFile(t, t.TempDir(), "access.json", accessRolesFile))
	certw := n.pki.issue(t, "cert-client", []string{"certw.test"}, nil, x509.ExtKeyUsageClientAuth)
	stranger := n.pki.issue(t, "stranger", []string{"stranger.test"}, nil, x509.ExtKeyUsageClientAuth)
	roles := []*caller{
		n.dial(t, ctx, "worker", "worker-token", nil),
		n.dial(t, ctx, "reader", "reader-token", nil),
		n.dial(t, ctx, "admin", "admin-token", nil),
		n.dial(t, ctx, "certw", "", &certw),
		n.dial(t, ctx, "nobody", "no-such-token", nil),
		n.dial(t, ctx, "stranger", "", &stranger),
	}
	e := &accessEnv{t: t, node: n, reader: roles[1], owners: map[string]*caller{"jobs/": roles[0], "certs/": roles[3]},
		extra: map[string][]byte{}}
	e.session = map[string][]byte{"jobs/": e.open(roles[0]), "certs/": e.open(roles[3])}

	cases := accessCases()
	tried := map[string]bool{}
	for _, c := range cases {
		tried[c.rpc] = true
		for _, prefix := range []string{"jobs/", "certs/"} {
			want := c.want[prefix]
			if want == "" {
				want = c.want[""]
			}
			require.Len(t, want, len(roles), c.rpc)
			for i, r := range roles {
				// A fresh session per try keeps one try's leftovers out of
				// the next's.
				if c.setup != nil || c.changed != nil {
					e.session[prefix] = e.open(e.owners[prefix])
				}
				target := fmt.Sprintf("%s%s-%s", prefix, c.rpc, r.name)
				if c.setup != nil {
					c.setup(e, target)
				}
				err := c.run(e, r, target)
				what := fmt.Sprintf("%s by %s on %s", c.rpc, r.name, target)
				switch want[i] {
				case 'y':
					code := status.Code(err)
					require.True(t, code != codes.PermissionDenied && code != codes.Unauthenticated, "%s refused: %v", what, err)
				case 'n':
					require.Equal(t, codes.PermissionDenied, status.Code(err), "%s: %v", what, err)
					require.Contains(t, status.Convert(err).Message(), "permission denied: ", what)
				case 'u':
					require.Equal(t, codes.Unauthenticated, status.Code(err), "%s: %v", what, err)
				}
				if c.changed != nil {
					require.Equal(t, want[i] == 'y', c.changed(e, target), "%s: took effect", what)
				}
			}
		}
	}
	// Every served RPC was tried (the table test holds methodRules to the
	// same list).
	for _, svc := range servedServices {
		for _, m := range svc.desc.Methods {
			require.True(t, tried[shortRPC(svc.desc.ServiceName, m.MethodName)], "%s/%s not tried", svc.desc.ServiceName, m.MethodName)
		}
		for _, st := range svc.desc.Streams {
			require.True(t, tried[shortRPC(svc.desc.ServiceName, st.StreamName)], "%s/%s not tried", svc.desc.ServiceName, st.StreamName)
		}
	}
	// The refusal names the right and the resource.
	_, err := roles[0].locks.Acquire(roles[0].ctx, &pb.AcquireRequest{SessionId: e.session["jobs/"], RequestId: nextReq(),
		Resource: []byte("billing/x"), Mode: pb.Mode_MODE_EX})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	require.Contains(t, err.Error(), `Acquire needs the lock right on resource "billing/x", and identity "worker" has no such grant`)
	require.False(t, e.describe("billing/x").Exists)
	require.Positive(t, counter(t, n.reg, "bouncer_access_denied_total", ""))
}

func shortRPC(service, method string) string {
	switch service {
	case pb.Cluster_ServiceDesc.ServiceName:
		return "Cluster/" + method
	case healthpb.Health_ServiceDesc.ServiceName:
		return "Health/" + method
	}
	return method
}

// TestAccessPipeDeniesOneCall: on one Pipe stream, a request outside the
// grant is answered PERMISSION_DENIED alone; the requests around it are
// applied, and the stream goes on.
func TestAccessPipeDeniesOneCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := startAccessNode(t, writeFile(t, t.TempDir(), "access.json", accessRolesFile))
	w := n.dial(t, ctx, "worker", "worker-token", nil)
	reader := n.dial(t, ctx, "reader", "reader-token", nil)
	e := &accessEnv{t: t, reader: reader}
	sess := e.open(w)
	st, err := w.locks.Pipe(w.ctx)
	require.NoError(t, err)
	acquire := func(call uint64, name string) *pb.PipeRequest {
		return &pb.PipeRequest{Call: call, Op: &pb.PipeRequest_Acquire{Acquire: &pb.AcquireRequest{SessionId: sess,
			RequestId: nextReq(), Resource: []byte(name), Mode: pb.Mode_MODE_EX, NoQueue: true}}}
	}
	answers := map[uint64]*pb.PipeReply{}
	for i, name := range []string{"jobs/1", "other/2", "jobs/3"} {
		require.NoError(t, st.Send(acquire(uint64(i+1), name)))
		r, err := st.Recv() // one at a time: a pipe answers in any order
		require.NoError(t, err)
		answers[r.Call] = r
	}
	require.Equal(t, pb.Code_CODE_OK, answers[1].Code)
	require.Equal(t, pb.Code_CODE_PERMISSION_DENIED, answers[2].Code)
	require.Contains(t, answers[2].Detail, `Acquire needs the lock right on resource "other/2"`)
	require.Equal(t, pb.Code_CODE_OK, answers[3].Code)
	require.True(t, e.describe("jobs/1").Exists)
	require.False(t, e.describe("other/2").Exists, "a denied pipe request reached the engine")
	require.True(t, e.describe("jobs/3").Exists)
	// A release outside the grant is denied too, by its own name.
	require.NoError(t, st.Send(&pb.PipeRequest{Call: 9, Op: &pb.PipeRequest_Release{Release: &pb.ReleaseRequest{
		SessionId: sess, RequestId: nextReq(), Resource: []byte("other/2")}}}))
	r, err := st.Recv()
	require.NoError(t, err)
	require.Equal(t, pb.Code_CODE_PERMISSION_DENIED, r.Code)
	require.Contains(t, r.Detail, `Release needs the lock right on resource "other/2"`)
	require.NoError(t, st.CloseSend())
}

// TestAccessReload: ReloadAccess swaps the rules for calls made after it
// (and for the next request on an open Pipe); a bad file keeps the old
// rules and says why; each reload is logged and counted.
func TestAccessReload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	path := writeFile(t, dir, "access.json", `{"identities": [
		{"name": "worker", "token": "w", "grants": [{"prefix": "jobs/", "rights": ["lock"]}]},
		{"name": "old", "token": "gone-soon", "grants": [{"prefix": "", "rights": ["read"]}]}]}`)
	n := startAccessNode(t, path)
	w := n.dial(t, ctx, "worker", "w", nil)
	old := n.dial(t, ctx, "old", "gone-soon", nil)
	e := &accessEnv{t: t, reader: old}
	sess := e.open(w)
	pipe, err := w.locks.Pipe(w.ctx)
	require.NoError(t, err)
	pipeAcquire := func(call uint64, name string) *pb.PipeReply {
		require.NoError(t, pipe.Send(&pb.PipeRequest{Call: call, Op: &pb.PipeRequest_Acquire{Acquire: &pb.AcquireRequest{
			SessionId: sess, RequestId: nextReq(), Resource: []byte(name), Mode: pb.Mode_MODE_EX, NoQueue: true}}}))
		r, err := pipe.Recv()
		require.NoError(t, err)
		return r
	}
	acquire := func(name string) error {
		_, err := w.locks.Acquire(w.ctx, &pb.AcquireRequest{SessionId: sess, RequestId: nextReq(), Resource: []byte(name),
			Mode: pb.Mode_MODE_EX, NoQueue: true})
		return err
	}
	require.Equal(t, codes.PermissionDenied, status.Code(acquire("billing/1")))
	require.Equal(t, pb.Code_CODE_PERMISSION_DENIED, pipeAcquire(1, "billing/p1").Code)

	// A good file: the worker gains billing/, "old" is gone, "new" comes.
	writeFile(t, dir, "access.json", `{"identities": [
		{"name": "worker", "token": "w", "grants": [{"prefix": "jobs/", "rights": ["lock"]}, {"prefix": "billing/", "rights": ["lock"]}]},
		{"name": "new", "token": "fresh", "grants": [{"prefix": "", "rights": ["read"]}]}]}`)
	require.NoError(t, n.srv.ReloadAccess())
	require.NoError(t, acquire("billing/1"))
	r := pipeAcquire(2, "billing/p2") // the same stream, judged by the new rules
	require.Equal(t, pb.Code_CODE_OK, r.Code)
	_, err = old.locks.Describe(old.ctx, &pb.DescribeRequest{Resource: []byte("jobs/x")})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "a token removed on reload still works")
	fresh := n.dial(t, ctx, "new", "fresh", nil)
	d, err := fresh.locks.Describe(fresh.ctx, &pb.DescribeRequest{Resource: []byte("billing/1")})
	require.NoError(t, err)
	require.True(t, d.Exists)
	require.Contains(t, n.log.String(), "access rules reloaded")
	require.Equal(t, 1.0, counter(t, n.reg, "bouncer_access_reloads_total", "ok"))

	// A bad file: refused, logged, counted; the rules stay as they were.
	writeFile(t, dir, "access.json", `{"identities": [{"name": "worker", "token": "w", "grants": [{"prefix": "", "rights": ["lock", "all"]}]}]}`)
	err = n.srv.ReloadAccess()
	require.ErrorContains(t, err, `unknown right "all"`)
	require.Contains(t, n.log.String(), "access file reload failed: the old rules stay")
	require.Contains(t, n.log.String(), `unknown right \"all\"`)
	require.Equal(t, 1.0, counter(t, n.reg, "bouncer_access_reloads_total", "failed"))
	require.NoError(t, acquire("billing/2"))
	require.Equal(t, codes.PermissionDenied, status.Code(acquire("other/1")), "the bad file's grant on \"\" was taken")
	_, err = fresh.locks.Describe(fresh.ctx, &pb.DescribeRequest{Resource: []byte("billing/1")})
	require.NoError(t, err)
	require.NoError(t, pipe.CloseSend())
}

// counter is the value of a counter on reg, of the series with label
// value label ("": the counter has no label).
func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label == "" || (len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
