package peer

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// Report is what the driver must tell raft about a peer: that it could
// not be reached (ReportUnreachable), or how a MsgSnap sent to it ended
// (ReportSnapshot(To, Failed)).
type Report struct {
	To          uint64
	Unreachable bool // a send to To failed, or a message to it was dropped
	Snapshot    bool // a MsgSnap to To ended: delivered, or Failed
	Failed      bool // with Snapshot: it was not delivered
}

// Transport carries raft messages between the members of one group. Its
// methods may be called from any goroutine.
type Transport struct {
	cfg     Config
	log     *slog.Logger
	recv    chan *raftpb.Message
	reports chan Report
	snapsIn chan struct{} // a semaphore: snapshots being received
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup
	warns   warnLimiter

	mu      sync.RWMutex
	closed  bool
	members map[uint64]string // every member's address, this one's included
	removed map[uint64]bool   // members removed: refused
	peers   map[uint64]*peer  // the other members' senders

	// Counters, for tests.
	framesIn, messagesIn, chunksIn atomic.Uint64
}

// New makes a Transport for member cfg.ID and starts a sender for every
// other member of cfg.Peers. It does not listen: serve the peer port with a
// grpc.Server made with ServerOptions and given to Register.
func New(cfg Config) (*Transport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:     cfg,
		log:     cfg.Log.With("member", cfg.ID),
		recv:    make(chan *raftpb.Message, cfg.RecvMax),
		reports: make(chan Report, cfg.ReportsMax),
		snapsIn: make(chan struct{}, cfg.SnapshotsInMax),
		done:    make(chan struct{}),
		members: map[uint64]string{},
		removed: map[uint64]bool{},
		peers:   map[uint64]*peer{},
	}
	t.warns.last = map[string]time.Time{}
	t.warns.suppressed = map[string]int{}
	for id, addr := range cfg.Peers {
		if err := t.setPeer(id, addr); err != nil {
			t.Close()
			return nil, err
		}
	}
	return t, nil
}

// ServerOptions are the options of the grpc.Server that serves the peer
// port: its credentials (Config.ServerTLS), the largest message it takes
// (a frame or a chunk), the streams one connection may open at once
// (Config.StreamsMax) and its keepalive policy.
func (t *Transport) ServerOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(t.cfg.grpcMsgMax()),
		grpc.MaxSendMsgSize(t.cfg.grpcMsgMax()),
		grpc.MaxConcurrentStreams(uint32(t.cfg.StreamsMax)),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    t.cfg.KeepaliveInterval,
			Timeout: t.cfg.KeepaliveInterval,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             t.cfg.KeepaliveInterval / 2,
			PermitWithoutStream: true,
		}),
		grpc.ConnectionTimeout(t.cfg.DialTimeout),
	}
	if t.cfg.ServerTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(t.cfg.ServerTLS)))
	}
	return opts
}

// Register registers the peer service on g, which the caller serves on
// the peer listener.
func (t *Transport) Register(g *grpc.Server) {
	g.RegisterService(&serviceDesc, t)
}

// Send queues each message for its destination and returns at once. A
// message to a member it does not know, or whose queue is full, is
// dropped (raft retransmits) and the member reported Unreachable; a
// MsgSnap that cannot be queued is reported Failed.
func (t *Transport) Send(msgs []*raftpb.Message) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return
	}
	for _, m := range msgs {
		if m == nil {
			continue
		}
		to := m.GetTo()
		p := t.peers[to]
		if p == nil {
			t.warn("send-unknown", "dropped a message to a member this transport does not know",
				"to", to, "type", m.GetType())
			t.tryReport(Report{To: to, Unreachable: true})
			if m.GetType() == raftpb.MsgSnap {
				t.tryReport(Report{To: to, Snapshot: true, Failed: true})
			}
			continue
		}
		if m.GetType() == raftpb.MsgSnap {
			p.queueSnapshot(m)
			continue
		}
		select {
		case p.queue <- m:
		default:
			t.warn("send-full", "dropped a message: the peer's queue is full", "to", to, "type", m.GetType())
			t.tryReport(Report{To: to, Unreachable: true})
		}
	}
}

// Recv is the channel of the messages received from peers, for the
// driver to Step. It is never closed.
func (t *Transport) Recv() <-chan *raftpb.Message { return t.recv }

// Reports is the channel of what the driver must tell raft. It is never
// closed.
func (t *Transport) Reports() <-chan Report { return t.reports }

// SetPeer adds member id at addr, or moves it there (its queued messages
// are then dropped). Setting a removed member's address makes it a member
// again.
func (t *Transport) SetPeer(id uint64, addr string) {
	if err := t.setPeer(id, addr); err != nil {
		t.log.Error("peer: SetPeer", "id", id, "addr", addr, "err", err)
	}
}

func (t *Transport) setPeer(id uint64, addr string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	delete(t.removed, id)
	if old, ok := t.members[id]; ok && old == addr {
		return nil
	}
	t.members[id] = addr
	if id == t.cfg.ID {
		return nil
	}
	if p := t.peers[id]; p != nil {
		p.stop()
		delete(t.peers, id)
	}
	p, err := t.newPeer(id, addr)
	if err != nil {
		return err
	}
	t.peers[id] = p
	return nil
}

// RemovePeer forgets member id: what waits for it is dropped, nothing more
// is sent to it, and its streams are refused.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || id == t.cfg.ID {
		return
	}
	delete(t.members, id)
	t.removed[id] = true
	if p := t.peers[id]; p != nil {
		p.stop()
		delete(t.peers, id)
	}
}

// Close stops every sender and waits for them; the streams being received
// end at their next frame (stop the grpc.Server to end them at once).
// Nothing is sent or delivered after Close.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	for id, p := range t.peers {
		p.stop()
		delete(t.peers, id)
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

// admitted reports whether id is a member this transport takes messages
// from.
func (t *Transport) admitted(id uint64) (ok bool, removed bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.removed[id] {
		return false, true
	}
	_, ok = t.members[id]
	return ok && id != t.cfg.ID, false
}

// tryReport hands r to the driver, or drops it if the driver is behind.
func (t *Transport) tryReport(r Report) {
	select {
	case t.reports <- r:
	default:
		t.warn("reports-full", "dropped a report: the driver is behind", "to", r.To)
	}
}

// report hands r to the driver, waiting for room, unless stop or the
// transport closes first.
func (t *Transport) report(r Report, stop <-chan struct{}) {
	select {
	case t.reports <- r:
	case <-stop:
	case <-t.done:
	}
}

// warn logs at most once a second for each key (a fixed reason, so the
// limiter's maps stay small), with the count of what it did not log.
func (t *Transport) warn(key, msg string, args ...any) {
	w := &t.warns
	now := time.Now()
	w.mu.Lock()
	if last, ok := w.last[key]; ok && now.Sub(last) < time.Second {
		w.suppressed[key]++
		w.mu.Unlock()
		return
	}
	n := w.suppressed[key]
	w.last[key] = now
	w.suppressed[key] = 0
	w.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	t.log.Warn("peer: "+msg, args...)
}

type warnLimiter struct {
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}
