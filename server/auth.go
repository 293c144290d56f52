package server

import (
	"context"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// healthPrefix: health checks need no token, so that orchestrators can
// probe a node without its secret.
const healthPrefix = "/grpc.health.v1.Health/"

// authorize checks the bearer token when tokens are configured: any of
// them will do.
func (s *Server) authorize(ctx context.Context, method string) error {
	if len(s.opts.AuthTokens) == 0 || strings.HasPrefix(method, healthPrefix) {
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
