package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
)

// Exit statuses of the client commands, besides 0 and the status of the
// command that `lock` runs (126 and 127 for a command that cannot be run:
// runner.go). They follow sysexits.h.
const (
	exitUsage       = 64 // bad flags or arguments: the CLI's own checks, before anything is sent
	exitUnavailable = 69 // the node could not be reached, or refused the request
	exitLeaseLost   = 74 // elect: the leadership was lost while the command ran (it got SIGTERM)
	exitNotAcquired = 75 // the lock could not be had: busy (--no-wait) or the wait ran out
)

// clientFlags are the flags every client command takes.
type clientFlags struct {
	addr, tlsCA, tlsCert, tlsKey, tlsServerName, tokenFile string
	timeout                                                time.Duration
	label                                                  string // the session's label ("": the client's default)
}

// registerLabel adds --label, for the commands that open a session.
func (f *clientFlags) registerLabel(fs *pflag.FlagSet) {
	fs.StringVar(&f.label, "label", "", "what this session says it is, shown beside its tag by status and to waiters (default host/pid/program; at most 128 bytes)")
}

func (f *clientFlags) register(fs *pflag.FlagSet) {
	addr := os.Getenv("BOUNCER_ADDR")
	if addr == "" {
		addr = "127.0.0.1:7400"
	}
	fs.StringVar(&f.addr, "addr", addr, "the node's address, or a group's members as a comma-separated list (host:port,host:port,...): the client finds the leader and follows it (env BOUNCER_ADDR)")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "CA bundle (PEM) to verify the node's certificate; enables TLS")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "client certificate (PEM), for nodes that require one")
	fs.StringVar(&f.tlsKey, "tls-key", "", "client private key (PEM)")
	fs.StringVar(&f.tlsServerName, "tls-server-name", "", "name to verify in the node's certificate (default: the host of each address in --addr)")
	fs.StringVar(&f.tokenFile, "auth-token-file", os.Getenv("BOUNCER_AUTH_TOKEN_FILE"), "file holding the bearer token (env BOUNCER_AUTH_TOKEN_FILE)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to wait for the node to answer a call (a node that refuses connections fails the command at once)")
}

// connect checks the flags, makes sure that some member of --addr takes
// connections, and prepares a client. A node that is down fails the
// command at once, saying so, rather than after --timeout of retries that
// end in "context deadline exceeded".
func (f *clientFlags) connect() (*client.Client, error) { return f.connectTTL(0) }

// connectTTL is connect for a client whose sessions have ttl (0: the
// client's default).
func (f *clientFlags) connectTTL(ttl time.Duration) (*client.Client, error) {
	if f.timeout <= 0 {
		return nil, usageError("--timeout %v: must be positive (how long to wait for the node, e.g. 10s)", f.timeout)
	}
	cfg, err := f.config()
	if err != nil {
		return nil, usageError("%v", err)
	}
	cfg.TTL = ttl
	if len(f.label) > spec.LabelBytesMax || !utf8.ValidString(f.label) {
		return nil, usageError("--label: %d bytes, at most LabelBytesMax %d of UTF-8", len(f.label), spec.LabelBytesMax)
	}
	cfg.Label = f.label
	c, err := client.Connect(cfg) // checks the list: empty members, repeats, its length
	if err != nil {
		return nil, usageError("--addr %q: %v", f.addr, strings.TrimPrefix(err.Error(), "client: "))
	}
	addrs, err := hostPorts(f.addr)
	if err == nil {
		err = reach(addrs, f.timeout)
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// hostPorts splits --addr into its members and checks that each is
// HOST:PORT, so that a typo is named as one instead of surfacing later as
// a failure to connect.
func hostPorts(list string) ([]string, error) {
	var addrs []string
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			var ae *net.AddrError
			if errors.As(err, &ae) {
				err = errors.New(ae.Err)
			}
			return nil, usageError("--addr: %q is not HOST:PORT (%v)", a, err)
		}
		if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 {
			return nil, usageError("--addr: %q is not HOST:PORT with a host and a port number from 1 to 65535", a)
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// reach tries a TCP connection to every member of addrs at once and
// returns as soon as one is accepted. If none is (refused, no such host, or
// no answer within timeout), the node cannot be reached: there is no use
// retrying until --timeout runs out.
func reach(addrs []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	type attempt struct {
		addr string
		err  error
	}
	done := make(chan attempt, len(addrs))
	for _, a := range addrs {
		go func() {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", a)
			if err == nil {
				_ = conn.Close()
			}
			done <- attempt{a, err}
		}()
	}
	failed := make(map[string]string, len(addrs))
	for range addrs {
		at := <-done
		if at.err == nil {
			return nil
		}
		failed[at.addr] = dialFailure(at.err, timeout)
	}
	if len(addrs) == 1 {
		return &exitError{code: exitUnavailable, err: fmt.Errorf("cannot reach the node at %s: %s (is `bouncer serve` running there?)",
			addrs[0], failed[addrs[0]])}
	}
	var why []string
	for _, a := range addrs { // in --addr's order
		why = append(why, a+" ("+failed[a]+")")
	}
	return &exitError{code: exitUnavailable, err: fmt.Errorf("cannot reach the node at any member of --addr: %s", strings.Join(why, ", "))}
}

// dialFailure says in a few words why a connection could not be made.
func dialFailure(err error, timeout time.Duration) string {
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		return fmt.Sprintf("no answer within %v (--timeout)", timeout)
	case errors.As(err, &dns):
		return fmt.Sprintf("host %q: %s", dns.Name, dns.Err)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// config builds the client configuration from the flags.
func (f *clientFlags) config() (client.Config, error) {
	cfg := client.Config{Addr: f.addr}
	tokens, err := readTokens(f.tokenFile)
	if err != nil {
		return cfg, err
	}
	if len(tokens) > 0 {
		cfg.Token = tokens[0] // a client's file holds its own token
	}
	if f.tlsCA == "" && f.tlsCert == "" && f.tlsKey == "" {
		return cfg, nil
	}
	// Without --tls-server-name gRPC verifies each member's certificate
	// against the host of that member's address.
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.tlsServerName}
	if f.tlsCA != "" {
		var pool *x509.CertPool
		if pool, err = loadPool(f.tlsCA); err != nil {
			return cfg, err
		}
		tc.RootCAs = pool
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return cfg, errors.New("--tls-cert and --tls-key go together")
	}
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return cfg, fmt.Errorf("tls: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	cfg.TLS = tc
	return cfg, nil
}

func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// checkTTL refuses a session TTL that no node takes: a lease must be
// positive, and within the bounds of spec.DefaultLimits, which the client
// library holds its sessions to.
func checkTTL(ttl time.Duration) error {
	lim := spec.DefaultLimits()
	if ttl <= 0 {
		return usageError("--ttl %v: must be positive: how soon what this process holds is freed if it dies, e.g. 10s", ttl)
	}
	if ttl < lim.TTLMin || ttl > lim.TTLMax {
		return usageError("--ttl %v: must be within [%v, %v] (TTLMin, TTLMax)", ttl, lim.TTLMin, lim.TTLMax)
	}
	return nil
}

// checkWait refuses a --wait that no node takes (0 is "as long as the
// node allows").
func checkWait(wait time.Duration) error {
	lim := spec.DefaultLimits()
	if wait < 0 {
		return usageError("--wait %v: must not be negative (leave it out, or 0, to wait as long as the node allows)", wait)
	}
	if wait != 0 && (wait < lim.WaitTimeoutMin || wait > lim.WaitTimeoutMax) {
		return usageError("--wait %v: must be within [%v, %v] (WaitTimeoutMin, WaitTimeoutMax)", wait, lim.WaitTimeoutMin, lim.WaitTimeoutMax)
	}
	return nil
}

// lastAttempt says why the last attempt of a call that ran out of time
// failed, if err tells: "" or " (the last attempt: ...)".
func lastAttempt(err error) string {
	st, ok := statusOf(err)
	if !ok {
		return ""
	}
	if why, ok := strings.CutPrefix(st.Message(), "latest balancer error: "); ok {
		return " (the last attempt: " + transportText(why) + ")"
	}
	if st.Code() != codes.DeadlineExceeded {
		return " (the last attempt: " + statusText(st) + ")"
	}
	return ""
}

// nodeError reports a failure to talk to the node, or the node's refusal,
// in words (describe).
func nodeError(err error) error {
	return &exitError{code: exitUnavailable, err: errors.New(describe(err))}
}
