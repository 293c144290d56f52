package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/bouncer-dlm/bouncer/client"
	"github.com/spf13/pflag"
)

// Exit statuses of the client commands, besides 0 and the status of the
// command that `lock` runs. They follow sysexits.h.
const (
	exitUsage       = 64 // bad flags or arguments
	exitUnavailable = 69 // the node could not be reached, or refused the request
	exitLeaseLost   = 74 // the lease was lost while the command ran (it got SIGTERM)
	exitNotAcquired = 75 // the lock could not be had: busy (--no-wait) or the wait ran out
)

// clientFlags are the flags every client command takes.
type clientFlags struct {
	addr, tlsCA, tlsCert, tlsKey, tlsServerName, tokenFile string
	timeout                                                time.Duration
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
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to wait for the node to answer")
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

// nodeError reports a failure to talk to the node.
func nodeError(err error) error {
	return &exitError{code: exitUnavailable, err: err}
}
