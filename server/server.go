// Package server is the gRPC face of a lock node: a thin adapter from RPCs
// to the engine's loop. One goroutine (the loop) owns the engine; handlers
// translate, submit and wait. See Server.
package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/cluster"
	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/replica"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// Options configure a Server. Zero values take the defaults; no bound is
// ever unlimited.
type Options struct {
	Limits    spec.Limits  // must be the node's limits
	Log       *slog.Logger // default: discard
	AuthToken string       // if set, every call must carry "authorization: Bearer <token>"
	// AuthTokens are more accepted tokens (AuthToken joins them). With more
	// than one, each token names a client for the per-client quotas.
	AuthTokens []string
	// Access, if set, are access rules by resource-name prefix (see
	// LoadAccessFile): every call but health checks must come from an
	// identity they list and is judged by its grants. AuthTokens are then
	// not consulted (serve refuses both); ReloadAccess rereads the file.
	Access     *AccessRules
	Registry   prometheus.Registerer // where metrics go; nil: nowhere
	DefaultTTL time.Duration         // for OpenSession without a TTL; default 10s
	// WatchersMax bounds Watch streams, SubscribersMax Events streams.
	WatchersMax, SubscribersMax int
	// PipeInFlightMax bounds the requests of one Pipe stream waiting for
	// their answers; past it the stream is read no further until answers go
	// out, which pushes back on the client through gRPC's flow control
	// (default 1024).
	PipeInFlightMax int
	// ListLimitMax bounds a List page (default 1000).
	ListLimitMax int
	// EventBufferMax bounds the events waiting for one slow Events stream;
	// a stream that falls this far behind is ended and the client
	// reconnects (default 256).
	EventBufferMax int
	// RefusingMax bounds the refusals of connections over ConnectionsMax
	// being written at once; past it, such a connection is closed without
	// a word (default 64).
	RefusingMax int
	Clock       engine.Clock // default: the loop's monotonic clock
	ClusterID   string       // a member's group, shown by the Cluster service's Status

	// Per-client quotas (a client: certificate subject, else token, else
	// remote address). SessionsPerClientMax bounds a client's live sessions
	// (default Limits.SessionsMax/10, at least 1); RequestsPerClientMax its
	// unary calls in flight (default 1024); StreamsPerClientMax its open
	// streams (default 2 per session it may hold, plus 64: the Go client
	// keeps a keepalive and an event stream per session).
	SessionsPerClientMax, RequestsPerClientMax, StreamsPerClientMax int

	// ConnectionsMax bounds the connections a Listen listener holds at
	// once (default 4096: keep it under the process's file limit).
	ConnectionsMax int
	// StreamsPerConnectionMax bounds concurrent streams on one connection
	// (default StreamsPerClientMax, at least 1024); a client past it waits.
	StreamsPerConnectionMax int
	// HandshakeTimeout bounds a new connection's TLS handshake and HTTP/2
	// preface (default 10s). IdleTimeout closes a connection with no
	// stream for that long (default 5m).
	HandshakeTimeout, IdleTimeout time.Duration
	// KeepAliveTime is how long a connection may be silent before the node
	// pings it; a connection that does not answer within KeepAliveTimeout
	// is closed (half-open). Defaults 1m and 20s.
	KeepAliveTime, KeepAliveTimeout time.Duration
	// KeepAliveMinTime is the shortest interval between a client's pings
	// that the node tolerates; a client pinging more often is disconnected.
	// Default 5s.
	KeepAliveMinTime time.Duration

	// SequencerKey signs the sequencers the node issues (GetSequencer) and
	// keys its session tags, so that both outlive a restart; serve keeps
	// it in the data directory. Nil: a key made at start and lost at stop
	// (tests), with which no sequencer verifies after a restart.
	SequencerKey ed25519.PrivateKey
}

// withDefaults fills in the zero fields.
func (o Options) withDefaults() Options {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.SequencerKey == nil {
		_, o.SequencerKey, _ = ed25519.GenerateKey(rand.Reader) // crypto/rand never fails on supported platforms
	}
	if len(o.SequencerKey) != ed25519.PrivateKeySize {
		panic("server: Options.SequencerKey is not an Ed25519 private key") // a caller's mistake, never input
	}
	if o.AuthToken != "" {
		o.AuthTokens = append([]string{o.AuthToken}, o.AuthTokens...)
	}
	orDefault := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	orDefaultTime := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	orDefaultTime(&o.DefaultTTL, 10*time.Second)
	orDefault(&o.WatchersMax, 1024)
	orDefault(&o.SubscribersMax, 4096)
	orDefault(&o.PipeInFlightMax, 1024)
	orDefault(&o.ListLimitMax, 1000)
	orDefault(&o.EventBufferMax, 256)
	orDefault(&o.RefusingMax, 64)
	orDefault(&o.SessionsPerClientMax, max(o.Limits.SessionsMax/10, 1))
	orDefault(&o.RequestsPerClientMax, 1024)
	orDefault(&o.StreamsPerClientMax, 2*o.SessionsPerClientMax+64)
	orDefault(&o.ConnectionsMax, 4096)
	orDefault(&o.StreamsPerConnectionMax, max(o.StreamsPerClientMax, 1024))
	orDefaultTime(&o.HandshakeTimeout, 10*time.Second)
	orDefaultTime(&o.IdleTimeout, 5*time.Minute)
	orDefaultTime(&o.KeepAliveTime, time.Minute)
	orDefaultTime(&o.KeepAliveTimeout, 20*time.Second)
	orDefaultTime(&o.KeepAliveMinTime, 5*time.Second)
	return o
}

// Server serves the Locks service over a node.
type Server struct {
	pb.UnimplementedLocksServer
	opts    Options
	loop    driver
	leading func() error    // nil on a lone node; on a member, nil only while it leads
	admin   *clusterService // the Cluster service, on a member
	log     *slog.Logger
	metrics *metrics
	health  *health.Server
	tags    *tagger
	quotas  *quotas
	seqKey  ed25519.PrivateKey // signs sequencers (sequencer.go)

	refusals refusalLog
	now      atomic.Int64 // the loop's clock at its latest turn
	reads    readClock    // that clock carried forward for the reads that show durations

	access atomic.Pointer[AccessRules] // nil: no access rules; ReloadAccess swaps them

	draining  chan struct{} // closed by Drain: long-lived streams end
	drainOnce sync.Once

	mu        sync.Mutex
	waiting   map[waitKey][]chan spec.Result         // queued requests someone waits for
	subs      streamSet[spec.SessionID, *subscriber] // Events streams by session
	watchers  streamSet[string, *watcher]            // Watch streams by resource
	listeners []*limitListener
}

type waitKey struct {
	session spec.SessionID
	request spec.RequestID
}

// driver is what the server needs of the goroutine that owns the engine:
// engine.Loop on a lone node, cluster.Loop on a member of a group.
type driver interface {
	Submit(ctx context.Context, in spec.Input) (spec.Result, error)
	Enqueue(in spec.Input, tag uint64, replyTo engine.Replies) error
	Inspect(ctx context.Context, f func(*engine.Core)) error
	Stop() error
	Done() <-chan struct{}
	Err() error
}

// New starts the loop over node and returns the server. The server owns the
// node from now on: Stop closes it.
func New(node *engine.Node, opts Options) *Server {
	s := newServer(opts)
	s.loop = engine.StartLoop(node, engine.LoopOptions{Clock: s.opts.Clock, OnEvents: s.onEvents, OnTurn: s.onTurn,
		OnDisk: s.onDisk})
	s.setServing(true)
	s.watchLoop()
	return s
}

// NewMember starts a member's loop over r (a replica of a group) with the
// transport tr, and returns the server and the loop (for the transport's
// reports and the administration of the group). Only while the member
// leads does it serve lock calls; otherwise it refuses them, naming the
// leader's client address (wire.NotLeaderError). Its health is SERVING
// while it knows a leader. The server owns r from now on: Stop closes it.
func NewMember(r *replica.Replica, tr cluster.Transport, mopts cluster.Options, opts Options) (*Server, *cluster.Loop) {
	s := newServer(opts)
	mopts.OnEvents, mopts.OnTurn = s.onEvents, s.onTurn
	onRole := mopts.OnRole
	mopts.OnRole = func(lead uint64, leading bool) {
		s.metrics.leader(lead, leading)
		if onRole != nil {
			onRole(lead, leading)
		}
	}
	mopts.OnPeer = s.metrics.peer
	serving := false
	mopts.OnTick = func(f cluster.Figures) {
		s.metrics.member(f)
		// SERVING: a leader is known and this member has applied what it
		// knows is committed, but for a little.
		ok := f.Lead != 0 && f.Commit-min(f.Commit, f.Applied) <= applyLagMax
		if ok != serving {
			serving = ok
			s.setServing(ok)
		}
	}
	if mopts.Clock == nil {
		mopts.Clock = s.opts.Clock
	}
	if mopts.Log == nil {
		mopts.Log = s.log
	}
	l := cluster.Start(r, tr, s.opts.Limits, mopts)
	s.loop, s.leading = l, l.Leading
	s.admin = &clusterService{loop: l, clusterID: s.opts.ClusterID}
	s.watchLoop()
	return s, l
}

// applyLagMax is how far a member's applied index may trail the commit
// index it knows while its health is SERVING.
const applyLagMax = 1000

func newServer(opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{opts: opts, log: opts.Log, health: health.NewServer(), tags: newTagger(opts.SequencerKey),
		seqKey:  opts.SequencerKey,
		waiting: map[waitKey][]chan spec.Result{}, draining: make(chan struct{}),
		quotas: newQuotas(&opts), refusals: refusalLog{last: map[string]time.Time{}, hush: map[string]int{}}}
	s.metrics = newMetrics(opts.Registry)
	s.access.Store(opts.Access)
	s.metrics.longestWait = s.longestWaitSeconds
	s.setServing(false)
	return s
}

// setServing sets the health of the node and of the Locks service.
func (s *Server) setServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(pb.Locks_ServiceDesc.ServiceName, st)
}

// watchLoop logs the loop's end and turns the health to NOT_SERVING.
func (s *Server) watchLoop() {
	go func() {
		<-s.loop.Done()
		s.health.Shutdown() // NOT_SERVING: the node stopped
		if err := s.loop.Err(); err != nil && !errors.Is(err, engine.ErrLoopStopped) {
			s.log.Error("node stopped", "err", err)
		}
	}()
}

// ServerOptions are the grpc.ServerOptions the service needs: auth,
// per-client quotas, message and memory bounds, timeouts and keepalive.
// Pass them to grpc.NewServer along with TLS credentials, and serve on a
// Listen listener.
func (s *Server) ServerOptions() []grpc.ServerOption {
	o := s.opts
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(wireMsgMax(&o.Limits)),
		grpc.MaxHeaderListSize(headerBytesMax),
		// Fixed windows turn off the bandwidth estimator's pings (see the
		// client); the connection window bounds what one connection can
		// make the node buffer, whatever its streams.
		grpc.InitialWindowSize(1 << 20), grpc.InitialConnWindowSize(1 << 20),
		grpc.MaxConcurrentStreams(uint32(o.StreamsPerConnectionMax)),
		grpc.SharedWriteBuffer(true), // an idle connection holds no write buffer
		grpc.ConnectionTimeout(o.HandshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: o.IdleTimeout,
			Time: o.KeepAliveTime, Timeout: o.KeepAliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: o.KeepAliveMinTime,
			PermitWithoutStream: true}),
		grpc.ForceServerCodecV2(newLenientCodec()),
		grpc.ChainUnaryInterceptor(s.authUnary, s.leaderUnary, decodeUnary, s.accessUnary, s.quotaUnary),
		grpc.ChainStreamInterceptor(s.authStream, s.leaderStream, decodeStream, s.accessStream, s.quotaStream),
	}
}

// headerBytesMax bounds a call's metadata (gRPC's default is 16 MiB).
const headerBytesMax = 16 << 10

// wireMsgMax bounds the messages gRPC accepts. It lies far above what the
// limits allow (a name and a value at their bounds take a few KiB), so that
// a request over a limit reaches its handler and is refused alone with
// LimitExceeded naming the limit. gRPC refuses a message past this bound
// itself, with a bare RESOURCE_EXHAUSTED that also ends a stream; the
// bound keeps one message from costing the node more than a little memory.
func wireMsgMax(lim *spec.Limits) int {
	return max(1<<20, 8*(lim.NameBytesMax+lim.ValueBytesMax)+4096)
}

// Register registers the Locks and health services on g, and on a member
// of a group the Cluster service.
func (s *Server) Register(g *grpc.Server) {
	pb.RegisterLocksServer(g, s)
	if s.admin != nil {
		pb.RegisterClusterServer(g, s.admin)
	}
	healthpb.RegisterHealthServer(g, s.health)
}

// Done is closed when the node has stopped (Stop, or a failed write).
func (s *Server) Done() <-chan struct{} { return s.loop.Done() }

// Stop stops the loop after the turn in flight and closes the node. Call it
// after the gRPC server has stopped taking calls.
func (s *Server) Stop() error {
	s.Drain()
	s.health.Shutdown()
	return s.loop.Stop()
}

// Drain prepares a graceful stop: the long-lived streams (KeepAlive, Pipe,
// Events, Watch) finish what they have in flight and end, so that
// grpc.Server.GracefulStop waits only for calls in flight; clients
// reconnect to the restarted node. The node keeps serving unary calls.
func (s *Server) Drain() {
	s.drainOnce.Do(func() {
		close(s.draining)
		s.health.Shutdown() // NOT_SERVING: load balancers stop sending
	})
}

// received delivers the messages recv returns, until it fails or ctx ends.
// Handlers select on it, so that they can also stop on Drain.
func received[T any](ctx context.Context, recv func() (*T, error)) <-chan *T {
	ch := make(chan *T)
	go func() {
		defer close(ch)
		for {
			m, err := recv()
			if err != nil {
				return
			}
			select {
			case ch <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// submit runs one input through the loop.
func (s *Server) submit(ctx context.Context, in spec.Input) (spec.Result, error) {
	r, err := s.loop.Submit(ctx, in)
	if err != nil {
		return r, loopError(err)
	}
	return r, nil
}

// loopError is the status of a call the loop did not take: a member that
// is not the leader names the leader; else the context's end.
func loopError(err error) error {
	var nl *cluster.NotLeader
	if errors.As(err, &nl) {
		return wire.NotLeaderError(nl.Addr)
	}
	return status.FromContextError(err).Err()
}

// leaderUnary and leaderStream refuse the Locks service's calls on a member
// that is not the leader, naming the leader; other services pass.
func (s *Server) leaderUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.refuseFollower(info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) leaderStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.refuseFollower(info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}

func (s *Server) refuseFollower(method string) error {
	if s.leading == nil || !strings.HasPrefix(method, "/"+pb.Locks_ServiceDesc.ServiceName+"/") ||
		method == pb.Locks_PublicKey_FullMethodName { // every member shows its own key

		return nil
	}
	if err := s.leading(); err != nil {
		return loopError(err)
	}
	return nil
}

// await submits in and, if it queues, waits for its completion. The waiter
// is registered before the input is submitted, so a completion in the same
// turn is not missed.
func (s *Server) await(ctx context.Context, in spec.Input) (spec.Result, error) {
	key := waitKey{in.Session, in.Request}
	ch := make(chan spec.Result, 1)
	s.mu.Lock()
	s.waiting[key] = append(s.waiting[key], ch)
	s.mu.Unlock()
	defer s.unwait(key, ch)
	start := time.Now()
	r, err := s.submit(ctx, in)
	if err != nil || !r.Pending {
		return r, err
	}
	select {
	case r = <-ch:
		s.metrics.wait.Observe(time.Since(start).Seconds())
		return r, nil
	case <-s.loop.Done():
		return spec.Refuse(spec.Unavailable, "node stopped"), nil
	case <-ctx.Done():
		return r, status.FromContextError(ctx.Err()).Err()
	}
}

func (s *Server) unwait(key waitKey, ch chan spec.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	chs := s.waiting[key]
	for i, c := range chs {
		if c == ch {
			chs = append(chs[:i], chs[i+1:]...)
			break
		}
	}
	if len(chs) == 0 {
		delete(s.waiting, key)
	} else {
		s.waiting[key] = chs
	}
}

// onEvents routes a turn's events (on the loop goroutine; never blocks).
func (s *Server) onEvents(events []spec.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range events {
		if e.Kind == spec.Expired {
			s.quotas.ended(e.Session) // before anyone hears of it
		}
		if e.Kind == spec.Completed {
			key := waitKey{e.Session, e.Request}
			for _, ch := range s.waiting[key] {
				select {
				case ch <- e.Result:
				default:
				}
			}
			delete(s.waiting, key)
		}
		for sub := range s.subs.byKey[e.Session] {
			// map order: each subscriber gets the events in order; the order
			// among subscribers does not matter
			sub.send(wire.EventToWire(e))
		}
	}
}

// onTurn records each turn and, when the core's state is all durable,
// updates gauges and watchers (on the loop goroutine).
func (s *Server) onTurn(c *engine.Core, st engine.TurnStats) {
	s.metrics.turn(st)
	if c == nil {
		return // later turns are in flight: the core's state is not all durable
	}
	s.now.Store(int64(c.Now()))
	s.reads.turned(c.Now())
	s.metrics.gauges(c.Stats())
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, ws := range s.watchers.byKey {
		// map order: each watcher sees only its resource
		state, exists := c.Resource(name)
		for w := range ws {
			w.offer(state, exists)
		}
	}
}

// onDisk says once when the disk is full and once when it takes writes
// again (on the loop goroutine); writes are refused with Unavailable between.
func (s *Server) onDisk(full error) {
	if full != nil {
		s.metrics.diskFull.Store(1)
		s.log.Error("disk full: refusing writes with Unavailable until a probe write succeeds", "err", full)
		return
	}
	s.metrics.diskFull.Store(0)
	s.log.Info("disk takes writes again: serving")
}

func newSessionID() spec.SessionID {
	var id spec.SessionID
	_, _ = rand.Read(id[:]) // crypto/rand never fails on supported platforms
	return id
}

// invalid turns a translation failure into its status error.
func invalid(r *spec.Result) error { return wire.StatusError(*r) }

var errStopped = status.Error(codes.Unavailable, "node stopped")
