package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client/protocol"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Config says how to reach a lock node, or the members of a replicated
// group. Addr (or Addrs) is required.
type Config struct {
	// Addr is host:port of the node, e.g. 127.0.0.1:7400, or the members
	// of a group as a comma-separated list ("10.0.0.1:7400,10.0.0.2:7400").
	Addr string
	// Addrs are the members of a group, one host:port each (set Addr or
	// Addrs, not both): at least one, distinct, at most
	// protocol.MembersMax. The client talks to the leader and follows it
	// (see "Groups and leaders" in the package documentation).
	Addrs []string
	TLS   *tls.Config // nil: plaintext (loopback and trusted networks only)
	Token string      // bearer token, if the node requires one
	// TTL of sessions. Default 10s.
	TTL time.Duration
	// Label of sessions, shown to people beside their tags (at most
	// spec.LabelBytesMax bytes). Default: DefaultLabel(); "-" for none.
	Label string
	// DriftPPM bounds how far this machine's clock rate may differ from the
	// node's (parts per million); the lease is counted short to cover it.
	// Default 1000 (0.1%).
	DriftPPM int64
	Log      *slog.Logger
	// Limits are the node's limits (default spec.DefaultLimits()). A
	// request over one fails at once with the node's code (LimitExceeded
	// naming the bound, for a name or value too long) and is never sent.
	Limits spec.Limits
	// DialOptions are extra gRPC options, applied last.
	DialOptions []grpc.DialOption
}

// DefaultLabel is the label sessions carry unless Config.Label says
// otherwise: host/pid/program, cut to spec.LabelBytesMax bytes.
func DefaultLabel() string {
	host, _ := os.Hostname()
	label := fmt.Sprintf("%s/%d/%s", host, os.Getpid(), filepath.Base(os.Args[0]))
	for len(label) > spec.LabelBytesMax || !utf8.ValidString(label) {
		label = label[:min(len(label), spec.LabelBytesMax)-1]
	}
	return label
}

func (cfg Config) protocol() protocol.Config {
	return protocol.Config{TTL: cfg.TTL, DriftPPM: cfg.DriftPPM, Limits: cfg.Limits}
}

// Client is a connection to a lock node, or to the leader of a group. gRPC
// reconnects by itself; the protocol core resends unanswered requests with
// the same request id, which the node applies at most once.
type Client struct {
	cfg     Config
	group   *group
	api     pb.LocksClient
	workers *workers
	pipe    *pipe
}

// Connect prepares a connection to the node at cfg.Addr, or to the members
// of a group (cfg.Addrs, or a comma-separated cfg.Addr). It does not wait
// for a node: the first call does.
func Connect(cfg Config) (*Client, error) {
	addrs, err := cfg.members()
	if err != nil {
		return nil, err
	}
	if cfg.TTL == 0 {
		cfg.TTL = 10 * time.Second
	}
	switch cfg.Label {
	case "":
		cfg.Label = DefaultLabel()
	case "-":
		cfg.Label = ""
	}
	if len(cfg.Label) > spec.LabelBytesMax || !utf8.ValidString(cfg.Label) {
		return nil, fmt.Errorf("client: label: want at most %d bytes (LabelBytesMax) of UTF-8", spec.LabelBytesMax)
	}
	check, err := protocol.NewSession(spec.NamedSession("check"), cfg.protocol(), 0)
	if err != nil {
		return nil, err // the configuration is checked once, here
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
	bc := backoff.DefaultConfig
	bc.MaxDelay = min(cfg.TTL/4, time.Second)
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: cfg.TTL / 4}),
		grpc.WithInitialWindowSize(windowSize), grpc.WithInitialConnWindowSize(windowSize)}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: cfg.Token}))
	}
	opts = append(opts, cfg.DialOptions...)
	dial := func(addr string) (*grpc.ClientConn, error) { return grpc.NewClient(addr, opts...) }
	// A member that leaves a request unanswered for a few retries is left
	// for the next; a move that found no leader (an election is on) waits
	// a little first: electionPoll, or one retry if that is shorter.
	retry := check.Config().RetryInterval
	g, err := newGroup(addrs, memberSilence(retry), min(retry, electionPoll), dial, cfg.Log)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, group: g, api: pb.NewLocksClient(router{g}), workers: newWorkers()}
	c.pipe = newPipe(c)
	return c, nil
}

// memberSilence is how long a request waits for an answer before the
// client leaves its member for the next: three retries, as in the
// simulator.
func memberSilence(retry time.Duration) time.Duration { return 3 * retry }

// electionPoll is how often a client asks the members again while none
// knows a leader: an election takes raft's election timeout (1 to 2 s by
// default), and the client should see its end within a small part of it.
const electionPoll = 100 * time.Millisecond

// Close closes the connections. Close sessions first.
func (c *Client) Close() error {
	c.workers.stop()
	c.pipe.stop()
	return c.group.close()
}

// API returns the gRPC stub, for Describe, List and Watch. Its calls go to
// the member the client talks to now; a unary call refused by a member
// that names the leader is made again there, and any call refused so moves
// the client.
func (c *Client) API() pb.LocksClient { return c.api }

// Member returns the address of the member the client talks to now: the
// leader, as far as it knows.
func (c *Client) Member() string { return c.group.current().addr }

// windowSize fixes HTTP/2 flow-control windows. Lock messages are tiny;
// a fixed window turns off gRPC's bandwidth estimator, whose pings would
// otherwise add frames (and system calls) to every round trip.
const windowSize = 1 << 20

type bearer struct{ token string }

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false so that loopback deployments can use a
// token without TLS; over a network, set Config.TLS.
func (b bearer) RequireTransportSecurity() bool { return false }

// Error is a lock-protocol outcome other than OK: use errors.Is(err,
// client.ErrWouldBlock) and the like, or CodeOf.
type Error = spec.Error

// Sentinels for errors.Is; they match on the code.
var (
	ErrWouldBlock       = &spec.Error{Code: spec.WouldBlock}
	ErrTimeout          = &spec.Error{Code: spec.Timeout}
	ErrDeadlock         = &spec.Error{Code: spec.Deadlock}
	ErrCancelled        = &spec.Error{Code: spec.Cancelled}
	ErrNotHeld          = &spec.Error{Code: spec.NotHeld}
	ErrAlreadyHeld      = &spec.Error{Code: spec.AlreadyHeld}
	ErrSessionExpired   = &spec.Error{Code: spec.SessionExpired}
	ErrUnknownSession   = &spec.Error{Code: spec.UnknownSession}
	ErrInvalid          = &spec.Error{Code: spec.InvalidArgument}
	ErrLimitExceeded    = &spec.Error{Code: spec.LimitExceeded}
	ErrUnavailable      = &spec.Error{Code: spec.Unavailable}
	ErrPermissionDenied = &spec.Error{Code: spec.PermissionDenied}
	// ErrLeaseLost: the session's lease may have run out (as the client
	// counts it, conservatively), or the outcome of a request was never
	// learned before it did; its locks must be treated as lost.
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

// resultOf turns an RPC error into the node's answer; ok is false if the
// call failed on the way and the outcome is unknown (the core resends),
// which is also what an answer whose code this side does not know is.
func resultOf(err error) (spec.Result, bool) {
	if r, ok := wire.ResultFromStatus(err); ok {
		if r.Code == spec.Unavailable {
			return spec.Result{}, false // could not persist: nothing happened; resend
		}
		return r, true
	}
	switch st := status.Convert(err); st.Code() {
	case codes.PermissionDenied:
		// Retrying will not help: answer with the reason, as a refusal.
		return spec.Refuse(spec.PermissionDenied, st.Message()), true
	case codes.Unauthenticated:
		return spec.Refuse(spec.InvalidArgument, err.Error()), true
	}
	return spec.Result{}, false
}
