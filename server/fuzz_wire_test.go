package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The wire fuzzers send arbitrary bytes, as gRPC messages, to every RPC of
// a fresh node on loopback (a fresh node per input, so that a failing input
// replays alone). The node must never panic or hang, and must answer every
// message it cannot serve with a Bouncer code (an ErrorInfo, or a reply's
// code), never with a bare gRPC status. A short run of each is part of CI.

// rawCodec carries messages as raw bytes both ways: requests go as they
// are, and answers are kept undecoded (only their codes matter here).
type rawCodec struct{}

type raw []byte

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*raw))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*raw) = data.Materialize()
	return nil
}

// fuzzNode is a fresh node with session "a" open, holding "held" in EX,
// and, if asked for, session "b" open too, whose acquires of "held" queue.
// (A unary acquire that queues waits as long as it asks, which no bound on
// the input could tell from a hang; so the unary fuzzer has "a" alone.)
type fuzzNode struct {
	conn *grpc.ClientConn
	api  pb.LocksClient
	a, b []byte // the ids the node issued for the sessions the seeds call a and b
}

// live puts the node's session ids where an input names the placeholder
// ids of the seeds (the node issues ids, so the seeds cannot know them),
// so that the fuzzer reaches live sessions, not only unknown ones.
func (fn *fuzzNode) live(msg []byte) []byte {
	a, b := spec.NamedSession("a"), spec.NamedSession("b")
	msg = bytes.ReplaceAll(msg, a[:], fn.a)
	if fn.b != nil {
		msg = bytes.ReplaceAll(msg, b[:], fn.b)
	}
	return msg
}

// fuzzCallMax bounds one input: an answer not back by then is a hang.
const fuzzCallMax = 5 * time.Second

func startFuzzNode(t *testing.T, withB bool) *fuzzNode {
	n := servertest.StartOn(t, vfs.NewMem(), "127.0.0.1:0", server.Options{})
	conn, err := grpc.NewClient(n.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	fn := &fuzzNode{conn: conn, api: pb.NewLocksClient(conn)}
	ctx, cancel := context.WithTimeout(context.Background(), fuzzCallMax)
	defer cancel()
	open := func() []byte {
		resp, err := fn.api.OpenSession(ctx, &pb.OpenSessionRequest{Ttl: durationpb.New(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		return resp.SessionId
	}
	fn.a = open()
	if withB {
		fn.b = open()
	}
	if _, err := fn.api.Acquire(ctx, &pb.AcquireRequest{SessionId: fn.a, RequestId: 1, Resource: []byte("held"),
		Mode: pb.Mode_MODE_EX}); err != nil {
		t.Fatal(err)
	}
	return fn
}

// requireBouncerError fails unless err is nil or carries a Bouncer code.
func requireBouncerError(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil || errors.Is(err, io.EOF) {
		return
	}
	if status.Code(err) == codes.DeadlineExceeded {
		t.Fatalf("%s: no answer within %v: %v", what, fuzzCallMax, err)
	}
	info, ok := pb.ErrorInfoOf(err)
	if !ok {
		t.Fatalf("%s: answered without a Bouncer code: %v", what, err)
	}
	if !spec.Code(info.Code).Valid() || info.Code == pb.Code_CODE_OK {
		t.Fatalf("%s: answered with code %v: %v", what, info.Code, err)
	}
}

var unaryMethods = []string{
	pb.Locks_OpenSession_FullMethodName, pb.Locks_CloseSession_FullMethodName,
	pb.Locks_Acquire_FullMethodName, pb.Locks_Convert_FullMethodName,
	pb.Locks_Release_FullMethodName, pb.Locks_Cancel_FullMethodName,
	pb.Locks_Describe_FullMethodName, pb.Locks_List_FullMethodName,
	pb.Locks_WaitGraph_FullMethodName,
}

var serverStreamMethods = []string{pb.Locks_Watch_FullMethodName, pb.Locks_Events_FullMethodName}

func marshal(f *testing.F, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzRPCs: data[0] picks one of the unary or server-streaming RPCs, the
// rest is its request message, sent as it is.
func FuzzRPCs(f *testing.F) {
	a, b := spec.NamedSession("a"), spec.NamedSession("b")
	seeds := []proto.Message{
		&pb.OpenSessionRequest{SessionId: b[:], Ttl: durationpb.New(time.Second)},
		&pb.CloseSessionRequest{SessionId: a[:]},
		&pb.AcquireRequest{SessionId: a[:], RequestId: 2, Resource: []byte("r"), Mode: pb.Mode_MODE_PR, NoQueue: true},
		&pb.ConvertRequest{SessionId: a[:], RequestId: 2, Resource: []byte("held"), Mode: pb.Mode_MODE_NL, WriteValue: true, Value: []byte("v")},
		&pb.ReleaseRequest{SessionId: a[:], RequestId: 2, Acked: 1, Resource: []byte("held")},
		&pb.CancelRequest{SessionId: b[:], RequestId: 1, Resource: []byte("held")},
		&pb.DescribeRequest{Resource: []byte("held")},
		&pb.ListRequest{Prefix: []byte("h"), Limit: 2},
		&pb.WaitGraphRequest{Limit: 2},
		&pb.WatchRequest{Resource: []byte("held")},
		&pb.EventsRequest{SessionId: a[:]},
	}
	for i, m := range seeds { // in the order of unaryMethods, serverStreamMethods
		f.Add(append([]byte{byte(i)}, marshal(f, m)...))
	}
	f.Add([]byte{2, 0xff, 0xff, 0xff}) // not protobuf
	f.Add([]byte{0, 0x0a, 0x05, 'x'})  // a field cut short
	f.Add([]byte{9})                   // an empty message
	f.Fuzz(fuzzRPC)
}

func fuzzRPC(t *testing.T, data []byte) {
	if len(data) == 0 {
		return
	}
	n := startFuzzNode(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), fuzzCallMax)
	defer cancel()
	methods := append(append([]string(nil), unaryMethods...), serverStreamMethods...)
	method := methods[int(data[0])%len(methods)]
	msg := raw(n.live(data[1:]))
	if int(data[0])%len(methods) < len(unaryMethods) {
		var out raw
		requireBouncerError(t, method, n.conn.Invoke(ctx, method, &msg, &out, grpc.ForceCodecV2(rawCodec{})))
		return
	}
	desc := &grpc.StreamDesc{ServerStreams: true}
	st, err := n.conn.NewStream(ctx, desc, method, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(&msg); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var out raw
	requireBouncerError(t, method, st.RecvMsg(&out)) // the first answer, or the refusal
}

// FuzzStreams: data[0] picks Pipe or KeepAlive; the rest is a sequence of
// messages, each one length byte and that many bytes, sent on one stream.
// Every message must be answered on the stream (with a code), and the
// stream must end cleanly once the client closes its side.
func FuzzStreams(f *testing.F) {
	a, b := spec.NamedSession("a"), spec.NamedSession("b")
	frame := func(pick byte, ms ...proto.Message) []byte {
		out := []byte{pick}
		for _, m := range ms {
			bs := marshal(f, m)
			out = append(append(out, byte(len(bs))), bs...)
		}
		return out
	}
	f.Add(frame(0,
		&pb.PipeRequest{Call: 1, Op: &pb.PipeRequest_Acquire{Acquire: &pb.AcquireRequest{SessionId: b[:], RequestId: 1,
			Resource: []byte("held"), Mode: pb.Mode_MODE_PR}}},
		&pb.PipeRequest{Call: 2, Op: &pb.PipeRequest_Cancel{Cancel: &pb.CancelRequest{SessionId: b[:], RequestId: 2,
			Resource: []byte("held")}}},
		&pb.PipeRequest{Call: 3, Op: &pb.PipeRequest_Release{Release: &pb.ReleaseRequest{SessionId: a[:], RequestId: 2,
			Resource: []byte("held"), WriteValue: true, Value: []byte("v")}}},
		&pb.PipeRequest{Call: 4, Op: &pb.PipeRequest_Convert{Convert: &pb.ConvertRequest{SessionId: a[:], RequestId: 3,
			Resource: []byte("held"), Mode: pb.Mode_MODE_EX}}},
		&pb.PipeRequest{Call: 5},
	))
	f.Add(frame(1, &pb.KeepAliveRequest{SessionId: a[:]}, &pb.KeepAliveRequest{SessionId: []byte("short")},
		&pb.KeepAliveRequest{}))
	f.Add([]byte{0, 3, 0xff, 0xff, 0xff, 2, 0x08, 0x07}) // garbage, then call 7 with no op
	f.Add([]byte{1, 2, 0x0a, 0x10})                      // a session id cut short
	f.Fuzz(fuzzStreams)
}

func fuzzStreams(t *testing.T, data []byte) {
	if len(data) == 0 {
		return
	}
	var msgs []raw
	for rest := data[1:]; len(rest) > 0; {
		k := min(int(rest[0]), len(rest)-1)
		msgs = append(msgs, raw(rest[1:1+k]))
		rest = rest[1+k:]
	}
	n := startFuzzNode(t, true)
	for i := range msgs {
		msgs[i] = n.live(msgs[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), fuzzCallMax)
	defer cancel()
	method := pb.Locks_Pipe_FullMethodName
	if data[0]%2 == 1 {
		method = pb.Locks_KeepAlive_FullMethodName
	}
	desc := &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}
	st, err := n.conn.NewStream(ctx, desc, method, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range msgs {
		if err := st.SendMsg(&msgs[i]); err != nil {
			break // the stream ended: RecvMsg says why
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	answers := 0
	for {
		var out raw
		err := st.RecvMsg(&out)
		if err != nil {
			requireBouncerError(t, method, err)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("%s: the stream ended with %v after %d of %d answers", method, err, answers, len(msgs))
			}
			break
		}
		answers++
		var code pb.Code
		if method == pb.Locks_Pipe_FullMethodName {
			var r pb.PipeReply
			err = proto.Unmarshal(out, &r)
			code = r.Code
		} else {
			var r pb.KeepAliveResponse
			err = proto.Unmarshal(out, &r)
			code = r.Code
		}
		if err != nil || !spec.Code(code).Valid() {
			t.Fatalf("%s: answer %d is %v (%v)", method, answers, code, err)
		}
	}
	if answers != len(msgs) {
		t.Fatalf("%s: %d answers to %d messages", method, answers, len(msgs))
	}
}
