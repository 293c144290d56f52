package server

import (
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// FuzzRequests decodes arbitrary bytes as each request message (the unary
// ones and a Pipe's), translates
// what decodes, and steps a core with it (after opening its session): no
// input may panic, and every invariant must hold after it. A short run is
// part of CI; `go test -fuzz FuzzRequests ./server` runs it for longer.
func FuzzRequests(f *testing.F) {
	sid := spec.NamedSession("fuzz")
	seeds := []proto.Message{
		&pb.AcquireRequest{SessionId: sid[:], RequestId: 1, Resource: []byte("r"), Mode: pb.Mode_MODE_EX},
		&pb.AcquireRequest{SessionId: sid[:], RequestId: 2, Acked: 1, Resource: []byte("r"), Mode: pb.Mode_MODE_PR,
			NoQueue: true, LockDelay: durationpb.New(time.Second)},
		&pb.ConvertRequest{SessionId: sid[:], RequestId: 3, Resource: []byte("r"), Mode: pb.Mode_MODE_NL, WriteValue: true, Value: []byte("v")},
		&pb.ReleaseRequest{SessionId: sid[:], RequestId: 4, Resource: []byte("r")},
		&pb.AcquireRequest{SessionId: []byte("bad"), Mode: 99, WaitTimeout: &durationpb.Duration{Seconds: -1, Nanos: 5}},
		&pb.PipeRequest{Call: 7, Op: &pb.PipeRequest_Acquire{Acquire: &pb.AcquireRequest{SessionId: sid[:], RequestId: 5,
			Resource: []byte("p"), Mode: pb.Mode_MODE_PW}}},
		&pb.PipeRequest{Call: 8, Op: &pb.PipeRequest_Cancel{Cancel: &pb.CancelRequest{SessionId: sid[:], RequestId: 6,
			Resource: []byte("p")}}},
	}
	for _, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := engine.New(spec.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		step := func(in spec.Input) {
			r := c.Step(0, &in)
			if !r.Code.Valid() {
				t.Fatalf("invalid code %d", r.Code)
			}
			if err := c.CheckInvariants(); err != nil {
				t.Fatalf("after %+v: %v", in, err)
			}
		}
		var inputs []spec.Input
		var acq pb.AcquireRequest
		if proto.Unmarshal(data, &acq) == nil {
			if in, err := wire.AcquireFromWire(&acq); err == nil {
				inputs = append(inputs, in)
			}
		}
		var conv pb.ConvertRequest
		if proto.Unmarshal(data, &conv) == nil {
			if in, err := wire.ConvertFromWire(&conv); err == nil {
				inputs = append(inputs, in)
			}
		}
		var rel pb.ReleaseRequest
		if proto.Unmarshal(data, &rel) == nil {
			if in, err := wire.ReleaseFromWire(&rel); err == nil {
				inputs = append(inputs, in)
			}
		}
		var pipe pb.PipeRequest
		lim := spec.DefaultLimits()
		if proto.Unmarshal(data, &pipe) == nil {
			if in, bad := pipeInput(&pipe, &lim); bad == nil {
				inputs = append(inputs, in)
			}
		}
		for _, in := range inputs {
			step(spec.Input{Op: spec.OpOpen, Session: in.Session, TTL: time.Minute})
			step(in)
		}
	})
}
