package wire

import (
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Each op's request. The session of an open is not on the wire: the node
// issues it (OpenedToWire), so OpenFromWire leaves Session zero and
// refuses a request that names one.

// OpenToWire is an open (its TTL).
func OpenToWire(in spec.Input) *pb.OpenSessionRequest {
	return &pb.OpenSessionRequest{Ttl: DurationToWire(in.TTL), Label: in.Label}
}

// OpenFromWire reads an open, without its session.
func OpenFromWire(req *pb.OpenSessionRequest) (spec.Input, error) {
	if len(req.SessionId) > 0 {
		return spec.Input{}, bad("session_id: the node issues session ids; open without one")
	}
	ttl, err := DurationFromWire("ttl", req.Ttl)
	return spec.Input{Op: spec.OpOpen, TTL: ttl, Label: req.Label}, err
}

// OpenedToWire is the answer to an open: the session the node issued and
// its TTL.
func OpenedToWire(id spec.SessionID, ttl time.Duration) *pb.OpenSessionResponse {
	return &pb.OpenSessionResponse{SessionId: SessionToWire(id), Ttl: DurationToWire(ttl)}
}

// OpenedFromWire reads the answer to an open; the TTL must be positive.
func OpenedFromWire(resp *pb.OpenSessionResponse) (spec.SessionID, time.Duration, error) {
	id, err := SessionFromWire(resp.SessionId)
	if err != nil {
		return id, 0, err
	}
	ttl, err := DurationFromWire("ttl", resp.Ttl)
	if err == nil && ttl <= 0 {
		err = bad("ttl: %v is not positive", ttl)
	}
	return id, ttl, err
}

// KeepAliveToWire is a keepalive.
func KeepAliveToWire(in spec.Input) *pb.KeepAliveRequest {
	return &pb.KeepAliveRequest{SessionId: SessionToWire(in.Session)}
}

// KeepAliveFromWire reads a keepalive.
func KeepAliveFromWire(req *pb.KeepAliveRequest) (spec.Input, error) {
	id, err := SessionFromWire(req.SessionId)
	return spec.Input{Op: spec.OpKeepAlive, Session: id}, err
}

// CloseToWire is a close.
func CloseToWire(in spec.Input) *pb.CloseSessionRequest {
	return &pb.CloseSessionRequest{SessionId: SessionToWire(in.Session)}
}

// CloseFromWire reads a close.
func CloseFromWire(req *pb.CloseSessionRequest) (spec.Input, error) {
	id, err := SessionFromWire(req.SessionId)
	return spec.Input{Op: spec.OpClose, Session: id}, err
}

// AcquireToWire is an acquire; async asks for a queued answer at once
// instead of waiting for the outcome.
func AcquireToWire(in spec.Input, async bool) *pb.AcquireRequest {
	return &pb.AcquireRequest{SessionId: SessionToWire(in.Session), RequestId: uint64(in.Request),
		Acked: uint64(in.Acked), Resource: []byte(in.Resource), Mode: ModeToWire(in.Mode), NoQueue: in.NoQueue,
		WaitTimeout: DurationToWire(in.WaitTimeout), LockDelay: DurationToWire(in.LockDelay), Async: async,
		Permits: in.Permits, Limit: in.Limit}
}

// AcquireFromWire reads an acquire (its async flag is the caller's).
func AcquireFromWire(req *pb.AcquireRequest) (spec.Input, error) {
	in, err := request(req.SessionId, req.RequestId, req.Acked, req.Resource, spec.OpAcquire)
	if err == nil {
		err = wants(&in, req.Mode, req.NoQueue, req.WaitTimeout)
	}
	if err == nil {
		in.LockDelay, err = DurationFromWire("lock_delay", req.LockDelay)
	}
	in.Permits, in.Limit = req.Permits, req.Limit
	return in, err
}

// ConvertToWire is a conversion, async as in AcquireToWire.
func ConvertToWire(in spec.Input, async bool) *pb.ConvertRequest {
	return &pb.ConvertRequest{SessionId: SessionToWire(in.Session), RequestId: uint64(in.Request),
		Acked: uint64(in.Acked), Resource: []byte(in.Resource), Mode: ModeToWire(in.Mode), NoQueue: in.NoQueue,
		WaitTimeout: DurationToWire(in.WaitTimeout), WriteValue: in.WriteValue, Value: in.Value, Async: async}
}

// ConvertFromWire reads a conversion.
func ConvertFromWire(req *pb.ConvertRequest) (spec.Input, error) {
	in, err := request(req.SessionId, req.RequestId, req.Acked, req.Resource, spec.OpConvert)
	if err == nil {
		err = wants(&in, req.Mode, req.NoQueue, req.WaitTimeout)
	}
	in.WriteValue, in.Value = req.WriteValue, req.Value
	return in, err
}

// wants reads what an acquire or conversion asks for: a mode, and whether
// and how long it may wait.
func wants(in *spec.Input, mode pb.Mode, noQueue bool, wait *durationpb.Duration) error {
	var err error
	in.NoQueue = noQueue
	if in.Mode, err = ModeFromWire(mode); err != nil {
		return err
	}
	in.WaitTimeout, err = DurationFromWire("wait_timeout", wait)
	return err
}

// ReleaseToWire is a release.
func ReleaseToWire(in spec.Input) *pb.ReleaseRequest {
	return &pb.ReleaseRequest{SessionId: SessionToWire(in.Session), RequestId: uint64(in.Request),
		Acked: uint64(in.Acked), Resource: []byte(in.Resource), WriteValue: in.WriteValue, Value: in.Value}
}

// ReleaseFromWire reads a release.
func ReleaseFromWire(req *pb.ReleaseRequest) (spec.Input, error) {
	in, err := request(req.SessionId, req.RequestId, req.Acked, req.Resource, spec.OpRelease)
	in.WriteValue, in.Value = req.WriteValue, req.Value
	return in, err
}

// CancelToWire is a cancel.
func CancelToWire(in spec.Input) *pb.CancelRequest {
	return &pb.CancelRequest{SessionId: SessionToWire(in.Session), RequestId: uint64(in.Request),
		Acked: uint64(in.Acked), Resource: []byte(in.Resource)}
}

// CancelFromWire reads a cancel.
func CancelFromWire(req *pb.CancelRequest) (spec.Input, error) {
	return request(req.SessionId, req.RequestId, req.Acked, req.Resource, spec.OpCancel)
}

// request reads the fields every mutating request has.
func request(session []byte, reqID, acked uint64, resource []byte, op spec.Op) (spec.Input, error) {
	id, err := SessionFromWire(session)
	return spec.Input{Op: op, Session: id, Request: spec.RequestID(reqID), Acked: spec.RequestID(acked),
		Resource: string(resource)}, err
}

// PipeRequestToWire is a lock request (acquire, convert, release or cancel)
// as call number call of a Pipe; acquires and conversions are async there.
func PipeRequestToWire(call uint64, in spec.Input) *pb.PipeRequest {
	req := &pb.PipeRequest{Call: call}
	switch in.Op {
	case spec.OpAcquire:
		req.Op = &pb.PipeRequest_Acquire{Acquire: AcquireToWire(in, true)}
	case spec.OpConvert:
		req.Op = &pb.PipeRequest_Convert{Convert: ConvertToWire(in, true)}
	case spec.OpRelease:
		req.Op = &pb.PipeRequest_Release{Release: ReleaseToWire(in)}
	case spec.OpCancel:
		req.Op = &pb.PipeRequest_Cancel{Cancel: CancelToWire(in)}
	default:
		panic("wire: " + in.Op.String() + " does not go on a pipe")
	}
	return req
}

// PipeRequestFromWire reads the lock request of a Pipe (its call number is
// req.Call).
func PipeRequestFromWire(req *pb.PipeRequest) (spec.Input, error) {
	switch op := req.Op.(type) {
	case *pb.PipeRequest_Acquire:
		return AcquireFromWire(op.Acquire)
	case *pb.PipeRequest_Convert:
		return ConvertFromWire(op.Convert)
	case *pb.PipeRequest_Release:
		return ReleaseFromWire(op.Release)
	case *pb.PipeRequest_Cancel:
		return CancelFromWire(op.Cancel)
	}
	return spec.Input{}, bad("op: one of acquire, convert, release or cancel is required")
}
