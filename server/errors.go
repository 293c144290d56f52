package server

import (
	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
	"google.golang.org/grpc/codes"
)

// grpcCodes maps Bouncer's outcome codes to gRPC status codes. The exact
// Bouncer code travels in the status details (pb.ErrorInfo).
var grpcCodes = map[spec.Code]codes.Code{
	spec.WouldBlock:      codes.FailedPrecondition,
	spec.Timeout:         codes.DeadlineExceeded,
	spec.Deadlock:        codes.Aborted,
	spec.Cancelled:       codes.Canceled,
	spec.NotHeld:         codes.FailedPrecondition,
	spec.AlreadyHeld:     codes.AlreadyExists,
	spec.SessionExpired:  codes.NotFound,
	spec.UnknownSession:  codes.NotFound,
	spec.InvalidArgument: codes.InvalidArgument,
	spec.LimitExceeded:   codes.ResourceExhausted,
	spec.Unavailable:     codes.Unavailable,
}

// resultError returns nil for an OK result, else the gRPC status error that
// carries it.
func resultError(r spec.Result) error {
	if r.Code == spec.OK {
		return nil
	}
	c, ok := grpcCodes[r.Code]
	if !ok {
		c = codes.Unknown
	}
	return pb.StatusError(c, pb.Code(r.Code), r.Detail)
}
