package server

import (
	"context"
	"fmt"
	"path"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// scope says which names a call's right must cover.
type scope uint8

const (
	// scopeOpen: no right at all, not even an identity (health checks, so
	// that orchestrators can probe a node without a secret).
	scopeOpen scope = iota + 1
	// scopeNode: the right on prefix "" (every name): administration.
	scopeNode
	// scopeSome: the right on at least one prefix. For calls that name no
	// resource: a session is only a lease, and what it can lock is judged
	// on each lock call. A session id is a capability (whoever knows it
	// holds the session), as without access rules.
	scopeSome
	// scopeResource: the right on a prefix of the request's resource
	// (its GetResource()).
	scopeResource
	// scopeListed: the right on a prefix of the request's prefix (its
	// GetPrefix()), so that every name the call can return is covered.
	// List is refused, not filtered: a page filtered afterwards would
	// hide how far the listing got.
	scopeListed
	// scopeEach: the right on at least one prefix to open the stream, and
	// each request it carries judged alone by its resource (Pipe, see
	// pipeDenied): one out of its grant is refused, the others go on.
	scopeEach
)

// methodRule is what a method needs.
type methodRule struct {
	right Right
	scope scope
}

// methodRules classify every method the node serves. A method not here is
// denied to everyone while access rules are on, and TestAccessTableCovers
// fails for it: a new RPC is one line here.
var methodRules = map[string]methodRule{
	locksMethod("OpenSession"):  {RightLock, scopeSome},
	locksMethod("KeepAlive"):    {RightLock, scopeSome},
	locksMethod("CloseSession"): {RightLock, scopeSome},
	locksMethod("Acquire"):      {RightLock, scopeResource},
	locksMethod("Convert"):      {RightLock, scopeResource},
	locksMethod("Release"):      {RightLock, scopeResource},
	locksMethod("Cancel"):       {RightLock, scopeResource},
	locksMethod("Pipe"):         {RightLock, scopeEach},
	locksMethod("Events"):       {RightLock, scopeSome},
	locksMethod("Describe"):     {RightRead, scopeResource},
	locksMethod("List"):         {RightRead, scopeListed},
	locksMethod("Watch"):        {RightRead, scopeResource},
	// A sequencer is had by the lock's holder; checking one, or reading the
	// key that verifies it, is a read by whoever protects a resource.
	locksMethod("GetSequencer"):   {RightLock, scopeResource},
	locksMethod("CheckSequencer"): {RightRead, scopeSome},
	locksMethod("PublicKey"):      {RightRead, scopeSome},
	// The wait-for graph names resources anywhere: a read of every name.
	locksMethod("WaitGraph"): {RightRead, scopeNode},

	clusterMethod("Status"):         {RightAdmin, scopeNode},
	clusterMethod("AddMember"):      {RightAdmin, scopeNode},
	clusterMethod("RemoveMember"):   {RightAdmin, scopeNode},
	clusterMethod("TransferLeader"): {RightAdmin, scopeNode},

	healthMethod("Check"): {0, scopeOpen},
	healthMethod("List"):  {0, scopeOpen},
	healthMethod("Watch"): {0, scopeOpen},
}

func locksMethod(m string) string   { return "/" + pb.Locks_ServiceDesc.ServiceName + "/" + m }
func clusterMethod(m string) string { return "/" + pb.Cluster_ServiceDesc.ServiceName + "/" + m }
func healthMethod(m string) string  { return "/" + healthpb.Health_ServiceDesc.ServiceName + "/" + m }

// namedMax bounds how much of a name a refusal quotes.
const namedMax = 128

// judge decides whether id may call method with req; req is nil for a
// stream's opening, before any request is read. The refusal names the
// right and the resource.
func judge(id *Identity, method string, req any) error {
	rule, ok := methodRules[method]
	if !ok {
		return status.Errorf(codes.PermissionDenied,
			"permission denied: %s is not in the node's access table, so no identity may call it", method)
	}
	call := path.Base(method)
	switch rule.scope {
	case scopeOpen:
		return nil
	case scopeNode:
		if !id.allows(rule.right, "") {
			return denied(id, "%s needs the %s right on every name (prefix \"\")", call, rule.right)
		}
	case scopeSome, scopeEach:
		if !id.allowsSome(rule.right) {
			return denied(id, "%s needs the %s right on some prefix", call, rule.right)
		}
	case scopeResource:
		r, ok := req.(interface{ GetResource() []byte })
		if !ok {
			return status.Errorf(codes.PermissionDenied, "permission denied: %s names no resource to judge", call)
		}
		if name := string(r.GetResource()); !id.allows(rule.right, name) {
			return denied(id, "%s needs the %s right on resource %s", call, rule.right, quoted(name))
		}
	case scopeListed:
		r, ok := req.(interface{ GetPrefix() []byte })
		if !ok {
			return status.Errorf(codes.PermissionDenied, "permission denied: %s names no prefix to judge", call)
		}
		if prefix := string(r.GetPrefix()); !id.allows(rule.right, prefix) {
			return denied(id, "%s needs the %s right on prefix %s (every name it may return)",
				call, rule.right, quoted(prefix))
		}
	default:
		return status.Errorf(codes.PermissionDenied, "permission denied: %s has no scope in the access table", call)
	}
	return nil
}

// needsRequest reports whether method is judged by its request.
func needsRequest(method string) bool {
	s := methodRules[method].scope
	return s == scopeResource || s == scopeListed
}

func denied(id *Identity, format string, args ...any) error {
	return status.Errorf(codes.PermissionDenied, "permission denied: %s, and identity %q has no such grant",
		fmt.Sprintf(format, args...), id.Name)
}

func quoted(name string) string {
	if len(name) > namedMax {
		return fmt.Sprintf("%q...", name[:namedMax])
	}
	return fmt.Sprintf("%q", name)
}

// accessUnary judges each unary call by its request.
func (s *Server) accessUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.judgeCall(ctx, info.FullMethod, req); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

// accessStream judges a stream on its opening, or, for a stream judged by
// its one request (Watch), on that request as the handler reads it.
func (s *Server) accessStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if s.access.Load() == nil {
		return h(srv, ss)
	}
	if needsRequest(info.FullMethod) && !info.IsClientStream {
		return h(srv, &judgedStream{ServerStream: ss, s: s, method: info.FullMethod})
	}
	// A stream of requests is judged on its opening, and per request by
	// its handler (scopeEach); one classified by a resource is denied,
	// having no one request to judge.
	if err := s.judgeCall(ss.Context(), info.FullMethod, nil); err != nil {
		return err
	}
	return h(srv, ss)
}

// judgeCall judges a call by the current rules (none: everything passes).
func (s *Server) judgeCall(ctx context.Context, method string, req any) error {
	rules := s.access.Load()
	if rules == nil {
		return nil
	}
	if methodRules[method].scope == scopeOpen {
		return nil
	}
	id, err := callerOf(ctx, rules)
	if err != nil {
		return err
	}
	if err := judge(id, method, req); err != nil {
		s.metrics.accessDenied.Inc()
		return err
	}
	return nil
}

// judgedStream judges the request of a server-streaming call as the
// handler reads it, before the handler sees it.
type judgedStream struct {
	grpc.ServerStream
	s      *Server
	method string
}

func (j *judgedStream) RecvMsg(m any) error {
	if err := j.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return j.s.judgeCall(j.Context(), j.method, m)
}

// pipeDenied judges one request on a Pipe by the current rules: the lock
// right on its resource. It returns why it is refused, or "".
func (s *Server) pipeDenied(ctx context.Context, req *pb.PipeRequest) string {
	rules := s.access.Load()
	if rules == nil {
		return ""
	}
	id, err := callerOf(ctx, rules)
	if err != nil {
		return status.Convert(err).Message() // its identity left the rules on a reload
	}
	var msg any
	var method string
	switch op := req.Op.(type) {
	case nil:
		return "" // no request: refused as invalid by its reading
	case *pb.PipeRequest_Acquire:
		msg, method = op.Acquire, "Acquire"
	case *pb.PipeRequest_Convert:
		msg, method = op.Convert, "Convert"
	case *pb.PipeRequest_Release:
		msg, method = op.Release, "Release"
	case *pb.PipeRequest_Cancel:
		msg, method = op.Cancel, "Cancel"
	default:
		return fmt.Sprintf("permission denied: pipe request %T is not in the node's access table", op)
	}
	// Each carried request needs what its unary call would.
	if err := judge(id, locksMethod(method), msg); err != nil {
		s.metrics.accessDenied.Inc()
		return status.Convert(err).Message()
	}
	return ""
}

// pipeDeniedReply answers a Pipe request its caller may not make.
func pipeDeniedReply(call uint64, why string) *pb.PipeReply {
	return &pb.PipeReply{Call: call, Code: pb.Code_CODE_PERMISSION_DENIED, Detail: why}
}
