package wire

import (
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A member of a group that is not its leader refuses lock calls and
// streams with NotLeaderError: gRPC status Unavailable, whose details hold
// a google.rpc.ErrorInfo with reason NOT_LEADER, domain bouncer, and the
// leader's client address under metadata key "leader" ("" when the member
// knows no leader). A client moves to that address (or to another member)
// and resends with the same request ids.
const (
	notLeaderReason = "NOT_LEADER"
	errorDomain     = "bouncer"
	leaderKey       = "leader"
)

// NotLeaderError is a member's refusal: it is not the leader; leader is the
// leader's client address ("" if unknown).
func NotLeaderError(leader string) error {
	msg := "not the leader"
	if leader != "" {
		msg += "; the leader is at " + leader
	} else {
		msg += "; no leader is known"
	}
	st := status.New(codes.Unavailable, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: notLeaderReason, Domain: errorDomain,
		Metadata: map[string]string{leaderKey: leader}}); err == nil {
		st = d
	}
	return st.Err()
}

// LeaderHint reports whether err is a member's not-leader refusal
// (NotLeaderError), and the leader's address it names ("" if none).
func LeaderHint(err error) (leader string, ok bool) {
	if err == nil {
		return "", false
	}
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return "", false
	}
	st := se.GRPCStatus()
	if st.Code() != codes.Unavailable {
		return "", false
	}
	for _, d := range st.Details() {
		if info, isInfo := d.(*errdetails.ErrorInfo); isInfo && info.GetReason() == notLeaderReason && info.GetDomain() == errorDomain {
			return info.GetMetadata()[leaderKey], true
		}
	}
	return "", false
}
