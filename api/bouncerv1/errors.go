package bouncerv1

import "google.golang.org/grpc/status"

// ErrorInfoOf returns the ErrorInfo in a status error's details, if any.
// Package wire reads the outcome from it.
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
