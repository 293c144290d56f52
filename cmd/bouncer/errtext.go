package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

// What the client commands say when the node fails them or refuses: the
// node's own words and, where a person has a setting to fix, which one;
// never gRPC's "rpc error: code = ... desc = ..." form, which names a
// transport's code rather than what happened.

// authHint tells a person refused for their credentials what to change.
const authHint = "pass a token the node knows with --auth-token-file FILE (or env BOUNCER_AUTH_TOKEN_FILE)"

// describe says what err means for a person.
func describe(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, client.ErrLeaseLost) {
		return "the session's lease may be lost: the node did not answer its keepalives in time"
	}
	if client.IsUnauthenticated(err) {
		return "the node refused the credentials (" + authText(err) + "): " + authHint
	}
	var se *spec.Error
	if errors.As(err, &se) {
		return refusal(se.Code, se.Detail)
	}
	st, isStatus := statusOf(err)
	if errors.Is(err, context.DeadlineExceeded) {
		text := "the node did not answer in time (--timeout)"
		if isStatus && st.Code() != codes.DeadlineExceeded && st.Code() != codes.OK {
			text += ": " + statusText(st)
		}
		return text
	}
	if isStatus {
		if r, ok := wire.ResultFromStatus(err); ok {
			return refusal(r.Code, r.Detail)
		}
		return statusText(st)
	}
	return err.Error()
}

// refusal says what a Bouncer code from the node means.
func refusal(code spec.Code, detail string) string {
	switch code {
	case spec.PermissionDenied:
		// The node names the right and the resource ("permission denied:
		// Acquire needs the lock right on resource x, ...").
		if detail == "" {
			return "permission denied by the node's access rules"
		}
		return detail
	case spec.Unavailable:
		return "the node is unavailable: " + orUnknown(detail)
	}
	if detail == "" {
		return "the node refused the request: " + code.String()
	}
	return "the node refused the request: " + code.String() + ": " + detail
}

// statusText says what a gRPC status that carries no Bouncer code means.
func statusText(st *grpcstatus.Status) string {
	msg := st.Message()
	switch st.Code() {
	case codes.Unauthenticated:
		return "the node refused the credentials (" + orUnknown(msg) + "): " + authHint
	case codes.PermissionDenied:
		return refusal(spec.PermissionDenied, msg)
	case codes.Unavailable:
		return "the node is unavailable: " + transportText(msg)
	case codes.DeadlineExceeded:
		// gRPC says why no connection was ready, when it knows.
		if why, ok := strings.CutPrefix(msg, "latest balancer error: "); ok {
			return "the node did not answer in time (--timeout): " + transportText(why)
		}
		return "the node did not answer in time (--timeout)"
	case codes.Canceled:
		return "cancelled"
	case codes.Unimplemented:
		return "the node does not offer this call (is it an older version, or not a Bouncer node?): " + orUnknown(msg)
	}
	return fmt.Sprintf("the node answered %s: %s", st.Code(), orUnknown(msg))
}

// transportText takes gRPC's wrapping off a connection failure:
// `connection error: desc = "transport: Error while dialing: ..."`.
func transportText(msg string) string {
	if rest, ok := strings.CutPrefix(msg, "connection error: desc = "); ok {
		if u, err := strconv.Unquote(rest); err == nil {
			rest = u
		}
		msg = strings.TrimPrefix(rest, "transport: ")
	}
	if strings.Contains(msg, "error reading server preface") {
		// What a client without TLS sees of a node that serves TLS.
		msg += " (if the node serves TLS, give --tls-ca)"
	}
	return orUnknown(msg)
}

// authText is the node's reason for refusing the credentials.
func authText(err error) string {
	var se *spec.Error
	if errors.As(err, &se) {
		_, reason, _ := strings.Cut(se.Detail, ": ")
		return orUnknown(reason)
	}
	if st, ok := statusOf(err); ok {
		return orUnknown(st.Message())
	}
	return "unknown reason"
}

// statusOf finds a gRPC status in err's chain. (status.FromError would
// put err's whole text, "rpc error: ..." included, in the message.)
func statusOf(err error) (*grpcstatus.Status, bool) {
	var s interface{ GRPCStatus() *grpcstatus.Status }
	if errors.As(err, &s) && s.GRPCStatus() != nil {
		return s.GRPCStatus(), true
	}
	return nil, false
}

func orUnknown(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}
