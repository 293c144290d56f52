package wire

import (
	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A result travels as its code, the detail, and a LockResponse that holds a
// grant or says the request queued. Only an acquire or a conversion has
// one; every other answer is the code and detail alone.

// GrantToWire is a grant (or, for a pending result, the queued mark).
func GrantToWire(r spec.Result) *pb.LockResponse {
	if r.Pending {
		return &pb.LockResponse{Queued: true}
	}
	return &pb.LockResponse{Mode: ModeToWire(r.Mode), Token: uint64(r.Token), Value: r.Value, ValueValid: r.ValueValid}
}

// resultFromWire reads a result from its parts; lock is nil for an
// answer with no grant.
func resultFromWire(code pb.Code, detail string, lock *pb.LockResponse) (spec.Result, error) {
	c, err := CodeFromWire(code)
	switch {
	case err != nil:
		return spec.Result{}, err
	case c != spec.OK || lock == nil:
		return spec.Result{Code: c, Detail: detail}, nil
	case lock.Queued:
		return spec.Result{Pending: true, Detail: detail}, nil
	}
	m, err := ModeFromWire(lock.Mode)
	if err != nil {
		return spec.Result{}, err
	}
	return spec.Result{Code: spec.OK, Detail: detail, Mode: m, Token: spec.Token(lock.Token),
		Value: spec.CloneValue(lock.Value), ValueValid: lock.ValueValid}, nil
}

// hasGrant reports whether the answer r to an op carries a LockResponse.
func hasGrant(op spec.Op, r spec.Result) bool {
	return r.Pending || r.Code == spec.OK && (op == spec.OpAcquire || op == spec.OpConvert)
}

// GrantFromWire reads the answer of a unary Acquire or Convert that
// succeeded: a grant, or queued.
func GrantFromWire(lock *pb.LockResponse) (spec.Result, error) {
	if lock == nil {
		return spec.Result{}, bad("lock: missing")
	}
	return resultFromWire(pb.Code_CODE_OK, "", lock)
}

// PipeReplyToWire is the answer r to call, whose request was an op.
func PipeReplyToWire(call uint64, op spec.Op, r spec.Result) *pb.PipeReply {
	out := &pb.PipeReply{Call: call, Code: CodeToWire(r.Code), Detail: r.Detail}
	if hasGrant(op, r) {
		out.Lock = GrantToWire(r)
	}
	return out
}

// PipeReplyFromWire reads the answer of a Pipe reply (its call number is
// reply.Call).
func PipeReplyFromWire(reply *pb.PipeReply) (spec.Result, error) {
	return resultFromWire(reply.Code, reply.Detail, reply.Lock)
}

// KeepAliveResponseToWire is the answer r to a keepalive for the session
// whose id the request carried (echoed as it came, valid or not).
func KeepAliveResponseToWire(sessionID []byte, r spec.Result) *pb.KeepAliveResponse {
	return &pb.KeepAliveResponse{SessionId: sessionID, Code: CodeToWire(r.Code), Detail: r.Detail}
}

// KeepAliveResponseFromWire reads the answer to a keepalive.
func KeepAliveResponseFromWire(resp *pb.KeepAliveResponse) (spec.Result, error) {
	return resultFromWire(resp.Code, resp.Detail, nil)
}

// EventToWire is e on its session's Events stream (which names the session).
func EventToWire(e spec.Event) *pb.Event {
	switch e.Kind {
	case spec.Completed:
		c := &pb.Completed{RequestId: uint64(e.Request), Resource: []byte(e.Resource),
			Code: CodeToWire(e.Result.Code), Detail: e.Result.Detail}
		if e.Result.Code == spec.OK {
			c.Grant = GrantToWire(e.Result)
		}
		return &pb.Event{Kind: &pb.Event_Completed{Completed: c}}
	case spec.Blocking:
		return &pb.Event{Kind: &pb.Event_Blocking{Blocking: &pb.Blocking{Resource: []byte(e.Resource), Mode: ModeToWire(e.Mode)}}}
	case spec.Expired:
		return &pb.Event{Kind: &pb.Event_Expired{Expired: &pb.Expired{}}}
	}
	panic("wire: " + e.Kind.String() + " is not an event kind")
}

// EventFromWire reads an event of session id's stream. The Subscribed mark
// that opens a stream is no event: ok is false for it.
func EventFromWire(id spec.SessionID, e *pb.Event) (ev spec.Event, ok bool, err error) {
	switch k := e.Kind.(type) {
	case *pb.Event_Completed:
		c := k.Completed
		r, err := resultFromWire(c.Code, c.Detail, c.Grant)
		return spec.Event{Kind: spec.Completed, Session: id, Request: spec.RequestID(c.RequestId),
			Resource: string(c.Resource), Result: r}, err == nil, err
	case *pb.Event_Blocking:
		m, err := ModeFromWire(k.Blocking.Mode)
		return spec.Event{Kind: spec.Blocking, Session: id, Resource: string(k.Blocking.Resource), Mode: m}, err == nil, err
	case *pb.Event_Expired:
		return spec.Event{Kind: spec.Expired, Session: id}, true, nil
	case *pb.Event_Subscribed:
		return spec.Event{}, false, nil
	}
	return spec.Event{}, false, bad("kind: not an event kind")
}

// statusCodes maps Bouncer's codes to gRPC status codes, for a refusal of
// a unary call. The exact code travels in the status details (ErrorInfo).
var statusCodes = [...]codes.Code{
	spec.WouldBlock:       codes.FailedPrecondition,
	spec.Timeout:          codes.DeadlineExceeded,
	spec.Deadlock:         codes.Aborted,
	spec.Cancelled:        codes.Canceled,
	spec.NotHeld:          codes.FailedPrecondition,
	spec.AlreadyHeld:      codes.AlreadyExists,
	spec.SessionExpired:   codes.NotFound,
	spec.UnknownSession:   codes.NotFound,
	spec.InvalidArgument:  codes.InvalidArgument,
	spec.LimitExceeded:    codes.ResourceExhausted,
	spec.Unavailable:      codes.Unavailable,
	spec.PermissionDenied: codes.PermissionDenied,
}

// StatusError is the gRPC status error of a unary call answered r: nil for
// OK, else the status code for r's code, with an ErrorInfo in its details
// that holds the exact code and detail.
func StatusError(r spec.Result) error {
	if r.Code == spec.OK {
		return nil
	}
	st := status.New(statusCodes[r.Code], r.Code.String()+": "+r.Detail)
	if d, err := st.WithDetails(&pb.ErrorInfo{Code: CodeToWire(r.Code), Detail: r.Detail}); err == nil {
		st = d
	}
	return st.Err()
}

// ResultFromStatus reads the refusal a status error carries; ok is false
// if it carries none (a failure on the way, or of gRPC itself) or a code
// this side does not know.
func ResultFromStatus(err error) (r spec.Result, ok bool) {
	info, ok := pb.ErrorInfoOf(err)
	if !ok {
		return spec.Result{}, false
	}
	r, err = resultFromWire(info.Code, info.Detail, nil)
	return r, err == nil && r.Code != spec.OK
}
