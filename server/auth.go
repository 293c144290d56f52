package server

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// healthPrefix: health checks need no token, so that orchestrators can
// probe a node without its secret.
const healthPrefix = "/grpc.health.v1.Health/"

// authorize checks who calls: with access rules, that the call comes
// from an identity they list (what it may do is judged later, see
// accessUnary); else, when tokens are configured, that it carries one of
// them (any will do, and may do everything).
func (s *Server) authorize(ctx context.Context, method string) error {
	if strings.HasPrefix(method, healthPrefix) {
		return nil
	}
	if rules := s.access.Load(); rules != nil {
		_, err := callerOf(ctx, rules)
		return err
	}
	if len(s.opts.AuthTokens) == 0 {
		return nil
	}
	if token, ok := bearerToken(ctx); ok {
		valid := 0
		for _, t := range s.opts.AuthTokens {
			// every token is compared, so that timing tells nothing
			valid |= subtle.ConstantTimeCompare([]byte(token), []byte(t))
		}
		if valid == 1 {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, "authorization: a valid bearer token is required")
}

// callerOf is the identity a call comes from under rules: the one its
// bearer token names, if it carries one (an unknown token is refused even
// with a listed certificate: a call is judged by what it claims); else the
// one its verified client certificate is listed under (see
// AccessRules.byCert). A call that names no listed identity is
// Unauthenticated.
func callerOf(ctx context.Context, rules *AccessRules) (*Identity, error) {
	if token, ok := bearerToken(ctx); ok {
		if id := rules.byToken(token); id != nil {
			return id, nil
		}
		return nil, status.Error(codes.Unauthenticated, "authorization: the bearer token is not in the node's access file")
	}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
			if id := rules.byCert(certNames(ti.State.VerifiedChains[0][0])); id != nil {
				return id, nil
			}
			return nil, status.Error(codes.Unauthenticated,
				"authorization: no name of the client certificate (subject CN, DNS or URI SAN) is in the node's access file")
		}
	}
	return nil, status.Error(codes.Unauthenticated,
		"authorization: a bearer token or a client certificate listed in the node's access file is required")
}

// certNames are the names a verified certificate may be listed under, in
// the order they are tried: subject CN, DNS SANs, URI SANs.
func certNames(c *x509.Certificate) []string {
	var names []string
	if c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	names = append(names, c.DNSNames...)
	for _, u := range c.URIs {
		names = append(names, u.String())
	}
	return names
}

// bearerToken is the first bearer token the call carries.
func bearerToken(ctx context.Context) (string, bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if token, ok := strings.CutPrefix(v, "Bearer "); ok {
			return token, true
		}
	}
	return "", false
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}
