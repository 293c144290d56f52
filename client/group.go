package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client/protocol"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
)

// A client of a replicated group talks to one member at a time: the
// leader, as far as it knows. The group type below is the transport side
// of protocol.Members, which decides where to go: every RPC goes to the
// current member (through router, a grpc.ClientConnInterface behind the
// client's stub), a not-leader refusal moves the client to the leader it
// names (or to the next member), and a member that leaves requests
// unanswered for the silence bound is left for the next one. A move ends
// every call and stream in flight on the old member (their answers are
// lost, which the protocol core already copes with) and is a reconnect for
// the sessions: Disconnected, then Connected once the new member's
// connection is up, so that they resend everything unanswered with the same
// request ids.
//
// There is one gRPC ClientConn per member, kept for the client's life: a
// move back to a member finds its connection (and TLS session) up, a move
// cancels only the calls of the member left, and each connection keeps its
// own reconnect backoff, so that an unreachable member does not slow the
// others. The conns of the members the client was given are made by
// Connect, so that a bad address fails there; grpc.NewClient connects
// nothing until the first call, so a member never used costs no
// connection. A member learned from a hint gets its conn on first use.

// members reads the member addresses of cfg: Addrs, or Addr (one address,
// or a comma-separated list); at least one, distinct, at most
// protocol.MembersMax.
func (cfg Config) members() ([]string, error) {
	var addrs []string
	switch {
	case cfg.Addr != "" && len(cfg.Addrs) > 0:
		return nil, errors.New("client: set Config.Addr or Config.Addrs, not both")
	case len(cfg.Addrs) > 0:
		for i, a := range cfg.Addrs {
			if strings.Contains(a, ",") {
				return nil, fmt.Errorf("client: Config.Addrs[%d] %q holds a comma: give each member its own element", i, a)
			}
			if a = strings.TrimSpace(a); a == "" {
				return nil, fmt.Errorf("client: Config.Addrs[%d] is empty", i)
			}
			addrs = append(addrs, a)
		}
	case strings.TrimSpace(cfg.Addr) != "":
		for i, a := range strings.Split(cfg.Addr, ",") {
			if a = strings.TrimSpace(a); a == "" {
				return nil, fmt.Errorf("client: member %d of the address list %q is empty", i+1, cfg.Addr)
			}
			addrs = append(addrs, a)
		}
	default:
		return nil, errors.New("client: Config.Addr or Config.Addrs is required")
	}
	if len(addrs) > protocol.MembersMax {
		return nil, fmt.Errorf("client: %d member addresses; a group has at most %d (protocol.MembersMax)", len(addrs), protocol.MembersMax)
	}
	seen := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		if seen[a] {
			return nil, fmt.Errorf("client: member address %q is listed twice", a)
		}
		seen[a] = true
	}
	return addrs, nil
}

// group is the members of the lock group, the member talked to now, and
// a conn per member.
type group struct {
	log   *slog.Logger
	dial  func(addr string) (*grpc.ClientConn, error)
	start time.Time     // the monotonic origin of the Members' times
	pause time.Duration // how long to wait before reconnecting after a move that found no leader

	mu      sync.Mutex
	members *protocol.Members
	conns   map[string]*grpc.ClientConn
	cur     *member
	hops    int  // moves since the last answer
	waiting bool // a request went out since the last answer or move (as Members counts)
	closed  bool

	wake chan struct{} // a request went out: the silence deadline may be new
	quit chan struct{}
	done chan struct{} // the watchdog exited
}

// member is one stay on one member: from the move there to the move away,
// when ctx ends (and with it every call and stream made during the stay).
// A new stay on the same member is a new *member.
type member struct {
	addr   string
	conn   *grpc.ClientConn // nil if it could not be made: then err says why
	err    error
	ctx    context.Context
	cancel context.CancelFunc
	ready  time.Time // no call before then (a pause after a move that found no leader)
}

// wait waits until m is ready; false if ctx ended or the client left m
// first.
func (m *member) wait(ctx context.Context) bool {
	d := time.Until(m.ready)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-m.ctx.Done():
	}
	return false
}

// newGroup makes the conns of addrs and starts on the first; silence is
// how long a request waits for an answer before the client leaves its
// member, pause how long it waits before trying a member after a move
// that found no leader.
func newGroup(addrs []string, silence, pause time.Duration, dial func(string) (*grpc.ClientConn, error), log *slog.Logger) (*group, error) {
	members, err := protocol.NewMembers(addrs, silence)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	g := &group{log: log, dial: dial, start: time.Now(), pause: pause, members: members,
		conns: make(map[string]*grpc.ClientConn, len(addrs)),
		wake:  make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	for _, a := range addrs {
		conn, err := dial(a)
		if err != nil {
			g.closeConns()
			return nil, fmt.Errorf("client: member %s: %w", a, err)
		}
		g.conns[a] = conn
	}
	g.cur = g.stay(members.Current(), 0)
	go g.watchdog()
	return g, nil
}

func (g *group) now() spec.Time { return spec.Time(time.Since(g.start)) }

// size returns how many members the client knows.
func (g *group) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.members.Len()
}

// everyConn returns the conn of every member the client knows, by
// address.
func (g *group) everyConn() map[string]*grpc.ClientConn {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.conns)
}

// current returns the stay on the member to talk to.
func (g *group) current() *member {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cur
}

// stay begins a stay on addr, making its conn if it has none. Call with
// g.mu held.
func (g *group) stay(addr string, pause time.Duration) *member {
	m := &member{addr: addr, ready: time.Now().Add(pause)}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if g.closed {
		m.cancel()
	}
	if m.conn = g.conns[addr]; m.conn == nil && !g.closed {
		if m.conn, m.err = g.dial(addr); m.err == nil {
			g.conns[addr] = m.conn
		} else {
			g.log.Warn("client: cannot make a connection to member", "member", addr, "err", m.err)
		}
	}
	if m.conn == nil && m.err == nil {
		m.err = errors.New("client: closed")
	}
	if m.conn != nil && len(g.conns) > 1 {
		go g.watchConn(m)
	}
	return m
}

// watchConn leaves the stay m as soon as its connection fails (a member
// that is down refuses the connection at once), without waiting out the
// silence bound.
func (g *group) watchConn(m *member) {
	state := m.conn.GetState()
	for {
		if state == connectivity.TransientFailure {
			g.connFailed(m)
			return
		}
		if !m.conn.WaitForStateChange(m.ctx, state) {
			return // the stay ended
		}
		state = m.conn.GetState()
	}
}

// sent notes that a request went out during stay m. Only the first since
// the last answer starts the silence clock, and wakes the watchdog.
func (g *group) sent(m *member) {
	g.mu.Lock()
	first := g.cur == m && !g.waiting
	if first {
		g.waiting = true
		g.members.Sent(g.now())
	}
	g.mu.Unlock()
	if first {
		select {
		case g.wake <- struct{}{}:
		default:
		}
	}
}

// heard notes that m's member answered a request.
func (g *group) heard(m *member) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cur == m {
		g.members.Heard()
		g.hops, g.waiting = 0, false
	}
}

// notLeader handles m's member's refusal naming leader ("" if none). A
// refusal from a stay already left is old news and changes nothing.
func (g *group) notLeader(m *member, leader string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cur != m || g.closed {
		return
	}
	to := g.members.NotLeader(leader)
	// Go at once to a leader named, but not round and round: a member
	// that knows no leader (an election), or a whole round of refusals
	// without an answer between, waits a little before the next try.
	var pause time.Duration
	if leader == "" || g.hops >= 2*g.members.Len() {
		pause = g.pause
	}
	g.move(to, pause, "not the leader", "leader", leader)
}

// connFailed leaves the stay m whose connection failed (a member that is
// down refuses connections at once) for the next member, without the
// silence bound and without a pause, unless a whole round of moves found
// nobody.
func (g *group) connFailed(m *member) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cur != m || g.closed {
		return
	}
	to := g.members.NotLeader("")
	var pause time.Duration
	if g.hops >= g.members.Len() {
		pause = g.pause
	}
	g.move(to, pause, "connection failed")
}

// move leaves the current member for addr. Call with g.mu held.
func (g *group) move(addr string, pause time.Duration, why string, args ...any) {
	old := g.cur
	g.cur = g.stay(addr, pause)
	g.hops++
	g.waiting = false // Members forgets the old member's silence
	old.cancel()
	g.log.Info("client: moving to another member", append([]any{"from", old.addr, "to", addr, "why", why}, args...)...)
}

// watchdog leaves a member that stays silent past the silence bound.
func (g *group) watchdog() {
	defer close(g.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		g.mu.Lock()
		at, ok := g.members.NextDeadline()
		g.mu.Unlock()
		var fire <-chan time.Time
		if ok {
			timer.Reset(max(at.Sub(g.now()), 0))
			fire = timer.C
		} else {
			timer.Stop()
		}
		select {
		case <-fire:
			g.mu.Lock()
			if addr, due := g.members.Due(g.now()); due && !g.closed {
				g.move(addr, 0, "silent")
			}
			g.mu.Unlock()
		case <-g.wake:
		case <-g.quit:
			return
		}
	}
}

// close ends every call and stream and closes the conns.
func (g *group) close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.cur.cancel()
	close(g.quit)
	g.mu.Unlock()
	<-g.done
	return g.closeConns()
}

func (g *group) closeConns() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	for _, c := range g.conns {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	clear(g.conns)
	return errors.Join(errs...)
}

// router carries the client's RPCs to the current member and tells the
// group what came of them: a request sent, an answer heard, a refusal
// naming the leader. A unary call refused by a member that is not the
// leader is made again where the client moves (a refusal means nothing was
// done); one the member does not answer at all is made again on the next
// member once the client leaves this one (every mutating call but
// OpenSession carries a request id that makes a repeat harmless; a repeated
// open may leave a session behind, which expires after its TTL). A call is
// made at most once per member known, plus one.
type router struct{ g *group }

// bound returns ctx, also ended when the client leaves m, and its release.
func (m *member) bound(ctx context.Context) (context.Context, func()) {
	c, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(m.ctx, cancel)
	return c, func() { stop(); cancel() }
}

// left turns the error of a call that ended because the client left m
// into a clear one.
func (m *member) left(ctx context.Context, err error) error {
	if err != nil && ctx.Err() == nil && m.ctx.Err() != nil && status.Code(err) == codes.Canceled {
		return status.Errorf(codes.Unavailable, "client: left member %s before it answered", m.addr)
	}
	return err
}

func (m *member) unusable() error {
	return status.Errorf(codes.Unavailable, "client: member %s: %v", m.addr, m.err)
}

func (r router) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	attempts := r.g.size() + 1 // round the members once, and to a leader named
	for attempt := 1; ; attempt++ {
		m := r.g.current()
		if !m.wait(ctx) {
			if ctx.Err() != nil {
				return status.FromContextError(ctx.Err()).Err()
			}
			attempt--
			continue // moved meanwhile: go where the client is now
		}
		r.g.sent(m)
		if m.conn == nil {
			return m.unusable()
		}
		c, release := m.bound(ctx)
		err := m.conn.Invoke(c, method, args, reply, opts...)
		release()
		if leader, refused := wire.LeaderHint(err); refused {
			r.g.notLeader(m, leader)
			if attempt < attempts && ctx.Err() == nil {
				continue
			}
			return err
		}
		if answered(err) {
			r.g.heard(m)
			return err
		}
		if attempt >= attempts || ctx.Err() != nil || r.g.size() == 1 {
			return m.left(ctx, err)
		}
		// No answer (no connection, or the client left the member while
		// the call waited): once the client leaves the member, after the
		// silence bound, make the call again on the next.
		select {
		case <-m.ctx.Done():
		case <-ctx.Done():
			return m.left(ctx, err)
		}
	}
}

func (r router) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	m := r.g.current()
	for !m.wait(ctx) {
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		m = r.g.current()
	}
	// Only the request streams count towards silence: an Events or Watch
	// stream may rightly stay quiet, and its first message (Subscribed)
	// comes from any member.
	counted := method == pb.Locks_Pipe_FullMethodName || method == pb.Locks_KeepAlive_FullMethodName
	if counted {
		r.g.sent(m)
	}
	if m.conn == nil {
		return nil, m.unusable()
	}
	c, release := m.bound(ctx)
	cs, err := m.conn.NewStream(c, desc, method, opts...)
	if err != nil {
		release()
		if leader, refused := wire.LeaderHint(err); refused {
			r.g.notLeader(m, leader)
		}
		return nil, m.left(ctx, err)
	}
	stop := context.AfterFunc(c, release) // a caller that cancels frees it too
	return &routedStream{ClientStream: cs, g: r.g, m: m, caller: ctx, counted: counted,
		release: func() { stop(); release() }}, nil
}

type routedStream struct {
	grpc.ClientStream
	g       *group
	m       *member
	caller  context.Context
	counted bool
	release func()
}

func (s *routedStream) SendMsg(msg any) error {
	if s.counted {
		s.g.sent(s.m)
	}
	return s.ClientStream.SendMsg(msg)
}

func (s *routedStream) RecvMsg(msg any) error {
	err := s.ClientStream.RecvMsg(msg)
	if err == nil {
		if s.counted {
			s.g.heard(s.m)
		}
		return nil
	}
	s.release()
	if leader, refused := wire.LeaderHint(err); refused {
		s.g.notLeader(s.m, leader)
	}
	if errors.Is(err, io.EOF) {
		return err
	}
	return s.m.left(s.caller, err)
}

// answered reports whether err is the member's answer (a result, a
// refusal, a leader too busy to act), not a failure on the way (no
// connection, a cancelled call).
func answered(err error) bool {
	if err == nil {
		return true
	}
	if _, ok := pb.ErrorInfoOf(err); ok {
		return true // a Bouncer code: the node answered as a leader
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded, codes.Unknown, codes.Internal:
		return false
	}
	return true
}
