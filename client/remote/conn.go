package remote

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Config says how to reach a lock node. Only Addr is required.
type Config struct {
	Addr  string      // host:port of the node, e.g. 127.0.0.1:7400
	TLS   *tls.Config // nil: plaintext (loopback and trusted networks only)
	Token string      // bearer token, if the node requires one
	// TTL of sessions; keepalives go out every TTL/3. Default 10s.
	TTL time.Duration
	// DriftMargin is how much the client's clock may run slow relative to
	// the node's over one TTL: a lease counts as lost this much early.
	// Default TTL/20 + 50ms.
	DriftMargin time.Duration
	Log         *slog.Logger
	DialOptions []grpc.DialOption // extra options, appended last
}

// Client is a connection to a lock node. gRPC reconnects by itself; every
// call retries transport failures with the same request id, which the node
// applies at most once.
type Client struct {
	cfg  Config
	conn *grpc.ClientConn
	api  pb.LocksClient
}

// Connect prepares a connection to the node at cfg.Addr. It does not wait
// for the node: the first call does.
func Connect(cfg Config) (*Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("client: Config.Addr is required")
	}
	if cfg.TTL == 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.DriftMargin == 0 {
		cfg.DriftMargin = cfg.TTL/20 + 50*time.Millisecond
	}
	if cfg.DriftMargin >= cfg.TTL/2 {
		return nil, fmt.Errorf("client: DriftMargin %v must be under half the TTL %v", cfg.DriftMargin, cfg.TTL)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS)
	}
	// Reconnect quickly: a lock client's TTL is seconds, and waiting out
	// gRPC's default backoff (up to two minutes) would cost it its lease.
	backoffCfg := backoff.DefaultConfig
	backoffCfg.MaxDelay = min(cfg.TTL/4, time.Second)
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoffCfg, MinConnectTimeout: cfg.TTL / 4})}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: cfg.Token, secure: cfg.TLS != nil}))
	}
	opts = append(opts, cfg.DialOptions...)
	conn, err := grpc.NewClient(cfg.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Client{cfg: cfg, conn: conn, api: pb.NewLocksClient(conn)}, nil
}

// Close closes the connection. Sessions should be closed first.
func (c *Client) Close() error { return c.conn.Close() }

// API returns the raw gRPC stub, for Describe, List and Watch.
func (c *Client) API() pb.LocksClient { return c.api }

type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity: a token over plaintext is allowed only because
// loopback deployments and tests use it; production should set TLS.
func (b bearer) RequireTransportSecurity() bool { return false }

// Error is a lock-protocol outcome other than OK (spec.Error): use
// errors.Is(err, client.ErrWouldBlock) and the like, or CodeOf.
type Error = spec.Error

// Sentinels for errors.Is; they match on the code.
var (
	ErrWouldBlock     = &spec.Error{Code: spec.WouldBlock}
	ErrTimeout        = &spec.Error{Code: spec.Timeout}
	ErrDeadlock       = &spec.Error{Code: spec.Deadlock}
	ErrCancelled      = &spec.Error{Code: spec.Cancelled}
	ErrNotHeld        = &spec.Error{Code: spec.NotHeld}
	ErrAlreadyHeld    = &spec.Error{Code: spec.AlreadyHeld}
	ErrSessionExpired = &spec.Error{Code: spec.SessionExpired}
	ErrUnknownSession = &spec.Error{Code: spec.UnknownSession}
	ErrInvalid        = &spec.Error{Code: spec.InvalidArgument}
	ErrLimitExceeded  = &spec.Error{Code: spec.LimitExceeded}
	ErrUnavailable    = &spec.Error{Code: spec.Unavailable}
	// ErrLeaseLost: the session's lease may have run out (as the client
	// counts it, conservatively); its locks must be treated as lost.
	ErrLeaseLost = errors.New("client: the session's lease may be lost")
)

// CodeOf returns the Bouncer code of an error from this package (OK for
// nil, Unavailable for an error that carries none).
func CodeOf(err error) spec.Code {
	if err == nil {
		return spec.OK
	}
	var e *spec.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return spec.Unavailable
}

// outcome turns an RPC error into a Bouncer error; final says whether the
// node answered (a retry would get the same), or the call failed on the way
// (the outcome is unknown; retry the same request id).
func outcome(err error) (out error, final bool) {
	if err == nil {
		return nil, true
	}
	if info, ok := pb.ErrorInfoOf(err); ok {
		code := spec.Code(info.Code)
		if code == spec.Unavailable { // the node could not persist: retry
			return &spec.Error{Code: code, Detail: info.Detail}, false
		}
		return &spec.Error{Code: code, Detail: info.Detail}, true
	}
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented, codes.InvalidArgument:
		return fmt.Errorf("client: %w", err), true
	}
	return fmt.Errorf("client: %w", err), false
}

// retry calls f until it reaches the node with an answer, ctx ends, or stop
// closes; f must resend the same request (same id) each time.
func retry(ctx context.Context, stop <-chan struct{}, f func(context.Context) error) error {
	backoff := 20 * time.Millisecond
	for {
		err, final := outcome(f(ctx))
		if final {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-stop:
			t.Stop()
			return ErrLeaseLost
		}
		backoff = min(2*backoff, time.Second)
	}
}
