package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/bouncer-dlm/bouncer/spec"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// Per-client quotas. One client must not be able to take what every client
// shares: the node's sessions, its loop's queue, its streams. A client is
// the identity the access rules know it as, else its verified certificate's
// subject, else the bearer token it presented (when several are configured,
// each names a client), else its remote address. Each quota is a bound on
// what the client holds at once; going past it is refused at once with
// LimitExceeded naming the bound, and the client's other calls go on.

// quotas counts what each client holds.
type quotas struct {
	sessionsMax, requestsMax, streamsMax int

	mu      sync.Mutex
	clients map[string]*usage
	owner   map[spec.SessionID]string // live sessions opened through this server
}

type usage struct{ sessions, requests, streams int }

func newQuotas(o *Options) *quotas {
	return &quotas{sessionsMax: o.SessionsPerClientMax, requestsMax: o.RequestsPerClientMax,
		streamsMax: o.StreamsPerClientMax, clients: map[string]*usage{}, owner: map[spec.SessionID]string{}}
}

// quotaKind names a quota for refusals and metrics.
type quotaKind int

const (
	quotaSessions quotaKind = iota
	quotaRequests
	quotaStreams
)

var quotaNames = [...]string{"SessionsPerClientMax", "RequestsPerClientMax", "StreamsPerClientMax"}

func (q *quotas) field(u *usage, k quotaKind) (*int, int) {
	switch k {
	case quotaSessions:
		return &u.sessions, q.sessionsMax
	case quotaRequests:
		return &u.requests, q.requestsMax
	}
	return &u.streams, q.streamsMax
}

// take counts one more of k for client, or refuses it.
func (q *quotas) take(client string, k quotaKind) *spec.Result {
	q.mu.Lock()
	defer q.mu.Unlock()
	u := q.clients[client]
	if u == nil {
		u = &usage{}
		q.clients[client] = u
	}
	n, max := q.field(u, k)
	if *n >= max {
		r := spec.Refuse(spec.LimitExceeded, fmt.Sprintf("%s (%d) reached by this client", quotaNames[k], max))
		return &r
	}
	*n++
	return nil
}

// give returns one of k that client took.
func (q *quotas) give(client string, k quotaKind) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.giveLocked(client, k)
}

func (q *quotas) giveLocked(client string, k quotaKind) {
	u := q.clients[client]
	if u == nil {
		panic("server: a quota given back that was never taken")
	}
	n, _ := q.field(u, k)
	*n--
	if *u == (usage{}) {
		delete(q.clients, client) // memory goes with the client
	}
}

// opened records that client's session id is live.
func (q *quotas) opened(client string, id spec.SessionID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.owner[id] = client
}

// ended gives back the session quota of id, if a client here holds it.
func (q *quotas) ended(id spec.SessionID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if client, ok := q.owner[id]; ok {
		delete(q.owner, id)
		q.giveLocked(client, quotaSessions)
	}
}

// clientOf names the client making a call (see the package comment on
// quotas).
func (s *Server) clientOf(ctx context.Context) string {
	if rules := s.access.Load(); rules != nil {
		if id, err := callerOf(ctx, rules); err == nil {
			return "identity:" + id.Name // with access rules, the identity is the client
		}
	}
	p, ok := peer.FromContext(ctx)
	if ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
			return "cert:" + ti.State.VerifiedChains[0][0].Subject.String()
		}
	}
	if len(s.opts.AuthTokens) > 1 {
		if token, ok := bearerToken(ctx); ok {
			sum := sha256.Sum256([]byte(token))
			return "token:" + hex.EncodeToString(sum[:8])
		}
	}
	if ok && p.Addr != nil {
		addr := p.Addr.String()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			addr = host
		}
		return "addr:" + addr
	}
	return "unknown"
}

// quotaUnary bounds each client's unary calls in flight.
func (s *Server) quotaUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if strings.HasPrefix(info.FullMethod, healthPrefix) {
		return h(ctx, req)
	}
	client := s.clientOf(ctx)
	if bad := s.quotas.take(client, quotaRequests); bad != nil {
		s.refused(reasonRequests, client)
		return nil, invalid(bad)
	}
	defer s.quotas.give(client, quotaRequests)
	return h(ctx, req)
}

// quotaStream bounds each client's open streams.
func (s *Server) quotaStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if strings.HasPrefix(info.FullMethod, healthPrefix) {
		return h(srv, ss)
	}
	client := s.clientOf(ss.Context())
	if bad := s.quotas.take(client, quotaStreams); bad != nil {
		s.refused(reasonStreams, client)
		return invalid(bad)
	}
	defer s.quotas.give(client, quotaStreams)
	return h(srv, ss)
}
