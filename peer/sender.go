package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// peer sends to one other member: a goroutine and a connection for
// messages, another of each for snapshots.
type peer struct {
	t      *Transport
	id     uint64
	addr   string
	ctx    context.Context // cancelled by stop
	cancel context.CancelFunc

	conn     *grpc.ClientConn // messages
	snapConn *grpc.ClientConn // snapshots, so that one does not hold up heartbeats

	queue       chan *raftpb.Message
	snaps       chan *raftpb.Message
	snapDropped atomic.Uint64 // MsgSnap refused for a full snaps, not yet reported
	snapSignal  chan struct{} // cap 1: snapDropped grew
}

// newPeer dials addr (lazily: nothing connects before the first stream)
// and starts the peer's two goroutines. Called with t.mu held.
func (t *Transport) newPeer(id uint64, addr string) (*peer, error) {
	p := &peer{t: t, id: id, addr: addr,
		queue:      make(chan *raftpb.Message, t.cfg.QueueMax),
		snaps:      make(chan *raftpb.Message, snapshotsQueuedMax),
		snapSignal: make(chan struct{}, 1),
	}
	var err error
	if p.conn, err = t.dial(addr); err != nil {
		return nil, fmt.Errorf("peer: member %d at %s: %w", id, addr, err)
	}
	if p.snapConn, err = t.dial(addr); err != nil {
		p.conn.Close()
		return nil, fmt.Errorf("peer: member %d at %s: %w", id, addr, err)
	}
	md := metadata.Pairs(mdCluster, t.cfg.ClusterID,
		mdFrom, strconv.FormatUint(t.cfg.ID, 10), mdTo, strconv.FormatUint(id, 10))
	p.ctx, p.cancel = context.WithCancel(metadata.NewOutgoingContext(context.Background(), md))
	t.wg.Add(2)
	go p.runMessages()
	go p.runSnapshots()
	return p, nil
}

func (t *Transport) dial(addr string) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if t.cfg.ClientTLS != nil {
		creds = credentials.NewTLS(t.cfg.ClientTLS)
	}
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(
			grpc.CallContentSubtype(codecName),
			grpc.MaxCallRecvMsgSize(t.cfg.grpcMsgMax()),
			grpc.MaxCallSendMsgSize(t.cfg.grpcMsgMax()),
		),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{BaseDelay: t.cfg.BackoffMin, Multiplier: 2, Jitter: 0.2,
				MaxDelay: t.cfg.BackoffMax},
			MinConnectTimeout: t.cfg.DialTimeout,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                t.cfg.KeepaliveInterval,
			Timeout:             t.cfg.KeepaliveInterval,
			PermitWithoutStream: true,
		}),
	)
}

// stop ends the peer's goroutines and closes its connections; it does not
// wait (Close waits for every goroutine). Called with t.mu held.
func (p *peer) stop() {
	p.cancel()
	p.conn.Close()
	p.snapConn.Close()
}

// queueSnapshot queues a MsgSnap without blocking, or counts it refused.
func (p *peer) queueSnapshot(m *raftpb.Message) {
	select {
	case p.snaps <- m:
		return
	default:
	}
	p.t.warn("snap-full", "refused a snapshot: others wait for the peer", "to", p.id)
	p.snapDropped.Add(1)
	select {
	case p.snapSignal <- struct{}{}:
	default:
	}
}

// runMessages is the peer's sender: one stream at a time, reopened after
// a bounded exponential backoff when it fails.
func (p *peer) runMessages() {
	defer p.t.wg.Done()
	wait := p.t.cfg.BackoffMin
	for {
		start := time.Now()
		err := p.stream()
		if p.ctx.Err() != nil {
			return
		}
		p.t.warn("stream-failed", "the stream to a peer failed", "to", p.id, "addr", p.addr, "err", err)
		p.t.tryReport(Report{To: p.id, Unreachable: true})
		if time.Since(start) >= backoffResetAfter {
			wait = p.t.cfg.BackoffMin
		}
		if !p.backoff(wait) {
			return
		}
		wait = min(2*wait, p.t.cfg.BackoffMax)
	}
}

// backoff waits d, dropping what is queued meanwhile (stale by the time
// a stream is up; raft retransmits). It reports false if stopped.
func (p *peer) backoff(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return false
		case <-timer.C:
			return true
		case <-p.queue:
		}
	}
}

// stream waits for a message, opens a stream and writes every message
// queued on it, in frames, until it fails or the peer is stopped.
func (p *peer) stream() error {
	var first *raftpb.Message
	select {
	case <-p.ctx.Done():
		return p.ctx.Err()
	case first = <-p.queue:
	}
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	cs, err := p.conn.NewStream(ctx, &serviceDesc.Streams[0], methodStream)
	if err != nil {
		return err
	}
	// The receiver sends nothing: RecvMsg returns when it ends the stream,
	// with its status.
	ended := make(chan error, 1)
	p.t.wg.Add(1)
	go func() {
		defer p.t.wg.Done()
		var b []byte
		err := cs.RecvMsg(&b)
		if err == nil {
			err = errors.New("the peer answered on a stream it must not answer")
		}
		ended <- err
	}()
	b := newBatcher(p.t.cfg)
	next := first
	for {
		if next == nil {
			select {
			case <-p.ctx.Done():
				return p.ctx.Err()
			case err := <-ended:
				return err
			case next = <-p.queue:
			}
		}
		// Take every message waiting, up to a frame's bounds.
		for next != nil {
			carry, err := b.add(next)
			if err != nil {
				p.t.warn("send-encode", "dropped a message that cannot be sent", "to", p.id,
					"type", next.GetType(), "err", err)
			}
			if carry != nil {
				next = carry
				break
			}
			select {
			case next = <-p.queue:
			default:
				next = nil
			}
		}
		if b.len() == 0 {
			continue
		}
		if err := cs.SendMsg(b.frame()); err != nil {
			if errors.Is(err, io.EOF) {
				// The receiver ended the stream: its status says why.
				select {
				case err = <-ended:
				case <-time.After(p.t.cfg.DialTimeout):
				}
			}
			return err
		}
	}
}

// batcher gathers marshaled messages into one frame within its bounds.
type batcher struct {
	cfg     Config
	msgs    [][]byte
	payload int
}

func newBatcher(cfg Config) *batcher { return &batcher{cfg: cfg} }

func (b *batcher) len() int { return len(b.msgs) }

// add marshals m into the batch. If the batch is full, it returns m as
// carry, for the next frame. A message that cannot be sent at all is
// dropped with an error.
func (b *batcher) add(m *raftpb.Message) (carry *raftpb.Message, err error) {
	if len(b.msgs) >= b.cfg.FrameMessagesMax {
		return m, nil
	}
	size := proto.Size(m)
	if size == 0 || size > b.cfg.MessageBytesMax {
		return nil, fmt.Errorf("message of %d bytes, not in 1..%d", size, b.cfg.MessageBytesMax)
	}
	if len(b.msgs) > 0 && frameSize(len(b.msgs)+1, b.payload+size) > b.cfg.FrameBytesMax {
		return m, nil
	}
	data, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	b.msgs = append(b.msgs, data)
	b.payload += len(data)
	return nil, nil
}

// frame encodes the batch and empties it.
func (b *batcher) frame() []byte {
	f := encodeFrame(b.msgs)
	clear(b.msgs)
	b.msgs = b.msgs[:0]
	b.payload = 0
	return f
}

// runSnapshots sends the peer's snapshots one at a time and reports how
// each ended.
func (p *peer) runSnapshots() {
	defer p.t.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case m := <-p.snaps:
			err := p.sendSnapshot(m)
			if err != nil {
				p.t.warn("snap-failed", "a snapshot was not delivered", "to", p.id, "addr", p.addr, "err", err)
			}
			p.t.report(Report{To: p.id, Snapshot: true, Failed: err != nil}, p.ctx.Done())
		case <-p.snapSignal:
			for range p.snapDropped.Swap(0) {
				p.t.report(Report{To: p.id, Snapshot: true, Failed: true}, p.ctx.Done())
			}
		}
	}
}

// sendSnapshot sends m on a stream of its own, in chunks, and returns once
// the receiver has delivered it, or failed.
func (p *peer) sendSnapshot(m *raftpb.Message) error {
	data, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	if len(data) > p.t.cfg.SnapshotBytesMax {
		return fmt.Errorf("snapshot of %d bytes, more than SnapshotBytesMax %d", len(data), p.t.cfg.SnapshotBytesMax)
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.t.cfg.SnapshotTimeout)
	defer cancel()
	cs, err := p.snapConn.NewStream(ctx, &serviceDesc.Streams[1], methodSnapshot)
	if err != nil {
		return err
	}
	chunk := p.t.cfg.ChunkBytes
	for i, off := 0, 0; off < len(data); i, off = i+1, off+chunk {
		if err := cs.SendMsg(encodeChunk(i, len(data), data[off:min(off+chunk, len(data))])); err != nil {
			if errors.Is(err, io.EOF) {
				var b []byte
				err = cs.RecvMsg(&b) // the receiver's status
			}
			return err
		}
	}
	if err := cs.CloseSend(); err != nil {
		return err
	}
	var ack []byte
	if err := cs.RecvMsg(&ack); err != nil {
		return err
	}
	return nil
}
