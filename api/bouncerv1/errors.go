package bouncerv1

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// StatusError returns the gRPC status error for a Bouncer outcome: code c,
// with an ErrorInfo in its details holding the exact Bouncer code.
func StatusError(c codes.Code, code Code, detail string) error {
	st := status.New(c, codeNames[code]+": "+detail)
	if d, err := st.WithDetails(&ErrorInfo{Code: code, Detail: detail}); err == nil {
		st = d
	}
	return st.Err()
}

// ErrorInfoOf returns the ErrorInfo in a status error's details, if any.
func ErrorInfoOf(err error) (*ErrorInfo, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return nil, false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*ErrorInfo); ok {
			return info, true
		}
	}
	return nil, false
}

var codeNames = map[Code]string{
	Code_CODE_OK: "OK", Code_CODE_WOULD_BLOCK: "WouldBlock", Code_CODE_TIMEOUT: "Timeout",
	Code_CODE_DEADLOCK: "Deadlock", Code_CODE_CANCELLED: "Cancelled", Code_CODE_NOT_HELD: "NotHeld",
	Code_CODE_ALREADY_HELD: "AlreadyHeld", Code_CODE_SESSION_EXPIRED: "SessionExpired",
	Code_CODE_UNKNOWN_SESSION: "UnknownSession", Code_CODE_INVALID_ARGUMENT: "InvalidArgument",
	Code_CODE_LIMIT_EXCEEDED: "LimitExceeded", Code_CODE_UNAVAILABLE: "Unavailable",
}
