// Package peer is the raft transport between the members of a Bouncer
// group: it carries the replica's raft messages (go.etcd.io/raft/v3/raftpb)
// from one member to another over gRPC, on the members' peer port, which is
// separate from the client port.
//
// # Use
//
// The driver of a replica (one goroutine) owns a Transport:
//
//	t, err := peer.New(cfg)            // cfg.Peers: raft id -> host:port
//	g := grpc.NewServer(t.ServerOptions()...)
//	t.Register(g)
//	go g.Serve(peerListener)
//	...
//	t.Send(rd.Messages)                // never blocks
//	case m := <-t.Recv():  r.Step(m)
//	case rep := <-t.Reports():
//	    if rep.Unreachable { r.ReportUnreachable(rep.To) }
//	    if rep.Snapshot    { r.ReportSnapshot(rep.To, rep.Failed) }
//	t.SetPeer(id, addr) / t.RemovePeer(id)  // as membership changes apply
//	t.Close(); g.Stop()
//
// Recv and Reports are never closed. The grpc.Server given to Register
// should serve the peer port only; ServerOptions sets its credentials
// (Config.ServerTLS), its message size bound, its streams per connection
// (Config.StreamsMax) and its keepalive policy. The number of connections
// is the listener's to bound (golang.org/x/net/netutil.LimitListener);
// members need two each (messages, snapshots).
//
// # Sending
//
// Each remote member has a queue of Config.QueueMax messages and one sender
// goroutine. Send puts each message on its destination's queue, or drops it
// when the queue is full (raft retransmits) and reports the peer
// Unreachable. The sender opens one long-lived stream to the peer when it
// has something to send, and writes every message waiting into one frame
// (at most Config.FrameMessagesMax messages, Config.FrameBytesMax bytes).
// When the stream cannot be opened or breaks, it reports the peer
// Unreachable, drops what it was sending and what waits, and tries again
// after a backoff that doubles from Config.BackoffMin to Config.BackoffMax
// (back to the minimum once a stream has lived a second).
//
// MsgSnap goes another way: each peer has a second goroutine and a second
// connection for snapshots, which sends each MsgSnap on a stream of its own
// in chunks of Config.ChunkBytes, and reports how it ended (Report.Snapshot,
// with Failed if it was not delivered) once the receiver has handed the
// whole message to its driver, or once it failed. At most two wait for
// one peer; one more is refused at once (reported Failed).
//
// # Receiving
//
// The peer service, bouncer.peer.v1.Raft, has two methods. Every stream
// carries in its metadata the cluster id (bouncer-cluster), the sender's
// raft id (bouncer-from) and the receiver's (bouncer-to). A stream is
// refused, with a status that says why, and nothing of it is delivered,
// when the cluster id is not this member's (PermissionDenied), when the
// sender is unknown, removed or this member itself (PermissionDenied),
// when it is addressed to another member (FailedPrecondition), or when a
// frame does not parse or breaks a bound (InvalidArgument). A stream from
// a member removed while it is open is ended at its next frame. A message
// whose From is not the stream's sender, or whose To is not this member,
// is dropped. Refusals and drops are logged, at most once a second for
// each reason.
//
// Received messages go to Recv, a channel of Config.RecvMax; when it is
// full the receiving stream waits, and so (through gRPC's flow control)
// does the sender, whose queue then drops. At most Config.SnapshotsInMax
// snapshots are received at once (ResourceExhausted beyond).
//
// With Config.ServerTLS asking for and verifying client certificates
// (ClientCAs, tls.RequireAndVerifyClientCert), a process without a
// certificate of the cluster's CA cannot open a connection at all.
//
// # Wire format
//
// Both methods use a raw-bytes gRPC codec (content subtype "bouncer-peer"):
// each gRPC message is one frame, a byte string, as below. uvarint is
// encoding/binary's unsigned varint.
//
// /bouncer.peer.v1.Raft/Stream (bidirectional; the receiver sends nothing
// and ends the stream with its status): each frame is a batch of messages,
//
//	frame   = version count message{count}
//	version = 0x01
//	count   = uvarint            1 .. FrameMessagesMax
//	message = length bytes       length: uvarint, 1 .. MessageBytesMax;
//	                             bytes: a raftpb.Message, protobuf encoded
//
// with nothing after the last message, and at most FrameBytesMax bytes in
// all. MsgSnap is never sent on it.
//
// /bouncer.peer.v1.Raft/Snapshot (client streaming; the receiver answers
// one empty message once the snapshot is delivered): one MsgSnap, protobuf
// encoded and cut into chunks, each chunk one frame,
//
//	chunk   = version index total data
//	version = 0x01
//	index   = uvarint            0, 1, 2, ... in order
//	total   = uvarint            the encoded message's length, the same in
//	                             every chunk, 1 .. SnapshotBytesMax
//	data    = bytes              1 .. ChunkBytes bytes, to the frame's end
//
// The receiver appends the chunks' data and, when the sender closes its
// side, requires exactly total bytes, decodes them as one MsgSnap from the
// stream's sender to itself, and only then delivers it.
package peer
