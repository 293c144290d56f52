package peer

import (
	"context"
	"errors"
	"io"
	"strconv"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// The peer service, by hand: no .proto, no generated code.
const (
	serviceName    = "bouncer.peer.v1.Raft"
	methodStream   = "/" + serviceName + "/Stream"
	methodSnapshot = "/" + serviceName + "/Snapshot"

	mdCluster = "bouncer-cluster" // the sender's cluster id
	mdFrom    = "bouncer-from"    // the sender's raft id
	mdTo      = "bouncer-to"      // the receiver's raft id
)

// raftService is what the service's handlers are called on.
type raftService interface {
	serveStream(grpc.ServerStream) error
	serveSnapshot(grpc.ServerStream) error
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*raftService)(nil),
	Streams: []grpc.StreamDesc{
		{
			StreamName:    "Stream",
			Handler:       func(srv any, ss grpc.ServerStream) error { return srv.(raftService).serveStream(ss) },
			ClientStreams: true,
			ServerStreams: true,
		},
		{
			StreamName:    "Snapshot",
			Handler:       func(srv any, ss grpc.ServerStream) error { return srv.(raftService).serveSnapshot(ss) },
			ClientStreams: true,
		},
	},
}

// admit checks a stream's metadata and returns its sender's id, or the
// status that refuses it.
func (t *Transport) admit(ctx context.Context) (uint64, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	one := func(key string) string {
		if v := md.Get(key); len(v) == 1 {
			return v[0]
		}
		return ""
	}
	if c := one(mdCluster); c != t.cfg.ClusterID {
		t.warn("refuse-cluster", "refused a stream of another cluster", "cluster", c)
		return 0, status.Errorf(codes.PermissionDenied, "peer: cluster %q is not this member's cluster", c)
	}
	to, err := strconv.ParseUint(one(mdTo), 10, 64)
	if err != nil || to != t.cfg.ID {
		t.warn("refuse-to", "refused a stream addressed to another member", "to", one(mdTo))
		return 0, status.Errorf(codes.FailedPrecondition, "peer: this is member %d, not %q", t.cfg.ID, one(mdTo))
	}
	from, err := strconv.ParseUint(one(mdFrom), 10, 64)
	if err != nil {
		t.warn("refuse-from", "refused a stream without a sender id", "from", one(mdFrom))
		return 0, status.Errorf(codes.PermissionDenied, "peer: sender id %q is not a raft id", one(mdFrom))
	}
	if err := t.checkSender(from); err != nil {
		return 0, err
	}
	return from, nil
}

// checkSender refuses a sender that is not (or no longer) a member.
func (t *Transport) checkSender(from uint64) error {
	ok, removed := t.admitted(from)
	switch {
	case removed:
		t.warn("refuse-removed", "refused a stream of a removed member", "from", from)
		return status.Errorf(codes.PermissionDenied, "peer: member %d was removed", from)
	case !ok:
		t.warn("refuse-unknown", "refused a stream of an unknown member", "from", from)
		return status.Errorf(codes.PermissionDenied, "peer: %d is not a member this member knows", from)
	}
	return nil
}

func (t *Transport) errClosed() error {
	return status.Error(codes.Unavailable, "peer: the transport is closed")
}

func (t *Transport) isClosed() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// serveStream receives frames of messages from one peer.
func (t *Transport) serveStream(ss grpc.ServerStream) error {
	from, err := t.admit(ss.Context())
	if err != nil {
		return err
	}
	for {
		var frame []byte
		if err := ss.RecvMsg(&frame); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if t.isClosed() {
			return t.errClosed()
		}
		if err := t.checkSender(from); err != nil {
			return err
		}
		msgs, err := decodeFrame(frame, t.cfg.FrameMessagesMax, t.cfg.MessageBytesMax)
		if err != nil {
			t.warn("refuse-frame", "refused a stream: a frame does not parse", "from", from, "err", err)
			return status.Errorf(codes.InvalidArgument, "peer: %v", err)
		}
		t.framesIn.Add(1)
		for _, m := range msgs {
			if !t.fromStream(m, from) {
				continue
			}
			if m.GetType() == raftpb.MsgSnap {
				t.warn("drop-snap", "dropped a MsgSnap sent on a message stream", "from", from)
				continue
			}
			if err := t.deliver(ss.Context(), m); err != nil {
				return err
			}
		}
	}
}

// fromStream reports whether m is from the stream's sender and to this
// member; if not, it is dropped.
func (t *Transport) fromStream(m *raftpb.Message, from uint64) bool {
	if m.GetFrom() != from || m.GetTo() != t.cfg.ID {
		t.warn("drop-mismatch", "dropped a message not from the stream's sender or not to this member",
			"stream", from, "from", m.GetFrom(), "to", m.GetTo(), "type", m.GetType())
		return false
	}
	return true
}

// deliver hands m to the driver, waiting for room.
func (t *Transport) deliver(ctx context.Context, m *raftpb.Message) error {
	select {
	case t.recv <- m:
		t.messagesIn.Add(1)
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	case <-t.done:
		return t.errClosed()
	}
}

// serveSnapshot receives one MsgSnap in chunks, and answers once it is
// delivered.
func (t *Transport) serveSnapshot(ss grpc.ServerStream) error {
	from, err := t.admit(ss.Context())
	if err != nil {
		return err
	}
	select {
	case t.snapsIn <- struct{}{}:
		defer func() { <-t.snapsIn }()
	default:
		t.warn("refuse-snap-busy", "refused a snapshot: too many being received", "from", from)
		return status.Errorf(codes.ResourceExhausted, "peer: %d snapshots being received already", cap(t.snapsIn))
	}
	refuse := func(format string, args ...any) error {
		err := status.Errorf(codes.InvalidArgument, "peer: snapshot: "+format, args...)
		t.warn("refuse-snap", "refused a snapshot", "from", from, "err", err)
		return err
	}
	var buf []byte
	var total uint64
	chunks := 0
	for {
		var frame []byte
		if err := ss.RecvMsg(&frame); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
		if t.isClosed() {
			return t.errClosed()
		}
		index, tot, data, err := decodeChunk(frame)
		switch {
		case err != nil:
			return refuse("%v", err)
		case index != uint64(chunks):
			return refuse("chunk %d where chunk %d was due", index, chunks)
		case chunks >= t.cfg.chunksMax():
			return refuse("more than %d chunks", t.cfg.chunksMax())
		case tot == 0 || tot > uint64(t.cfg.SnapshotBytesMax):
			return refuse("length %d not in 1..%d", tot, t.cfg.SnapshotBytesMax)
		case chunks > 0 && tot != total:
			return refuse("length %d, after %d", tot, total)
		case len(data) == 0 || len(data) > t.cfg.ChunkBytes:
			return refuse("chunk of %d bytes, not in 1..%d", len(data), t.cfg.ChunkBytes)
		case uint64(len(buf)+len(data)) > tot:
			return refuse("more than its length %d", tot)
		}
		if chunks == 0 {
			total = tot
			buf = make([]byte, 0, min(tot, uint64(4*t.cfg.ChunkBytes)))
		}
		buf = append(buf, data...)
		chunks++
		t.chunksIn.Add(1)
	}
	if chunks == 0 || uint64(len(buf)) != total {
		return refuse("%d bytes of %d", len(buf), total)
	}
	m := &raftpb.Message{}
	if err := proto.Unmarshal(buf, m); err != nil {
		return refuse("%v", err)
	}
	if m.GetType() != raftpb.MsgSnap {
		return refuse("a %v, not a MsgSnap", m.GetType())
	}
	if !t.fromStream(m, from) {
		return status.Errorf(codes.InvalidArgument, "peer: snapshot from %d to %d on a stream from %d to %d",
			m.GetFrom(), m.GetTo(), from, t.cfg.ID)
	}
	if err := t.checkSender(from); err != nil {
		return err
	}
	if err := t.deliver(ss.Context(), m); err != nil {
		return err
	}
	return ss.SendMsg([]byte{})
}
