package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/sequencer"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

func init() { commands = append(commands, newServeCmd) }

type serveFlags struct {
	data, listen, metrics         string
	tlsCert, tlsKey, tlsClientCA  string
	authTokenFile, logLevel       string
	accessFile                    string
	defaultTTL, shutdownGraceTime time.Duration
	quota                         server.Options // the per-client and connection bounds
	member                        memberFlags    // a member of a replicated group
	pprof                         bool
	memoryLimit                   string // the soft memory limit (memlimit.go)
	memoryLimitGiven              bool   // --memory-limit was given (else GOMEMLIMIT, if set, wins)
	printPublicKey                bool   // print the sequencer key's public half and exit
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a lock node",
		Long: `Run a lock node: Pebble storage in --data, the gRPC API on --listen, and
Prometheus metrics on --metrics. Every acknowledged change is synced to disk
first. SIGTERM or SIGINT stops it gracefully: calls in flight finish, the
turn in flight is committed, the store is closed.

With --id and --peers it is a member of a replicated group (raft): the
members agree on one log of turns, raft's messages travel on the peer port
(--peer-listen), and only the leader serves; the others refuse naming it.
Start every member of a new group with the same --peers (and --clients);
restart a member with the same flags. --join adds a fresh member to a
running group through any member's client address:

  bouncer serve --id 1 --peers 1=h1:7411,2=h2:7411,3=h3:7411 \
      --clients 1=h1:7400,2=h2:7400,3=h3:7400 --listen h1:7400 --data /var/lib/bouncer
  bouncer serve --id 4 --join h1:7400 --listen h4:7400 --peer-listen h4:7411

The node signs sequencers (a lock's proof of possession: see bouncer lock)
with an Ed25519 key kept in --data as sequencer-key.pem, made on first
start, mode 0600; a key file that others may read, or that is not such a
key, stops the start with the reason. --print-public-key prints the public
key for the services that verify sequencers (ed25519:BASE64URL). Each
member of a group has its own key: give such a service every member's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.memoryLimitGiven = cmd.Flags().Changed("memory-limit")
			return serve(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "./bouncer-data", "directory of the node's store")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:7400", "address of the gRPC API")
	fl.StringVar(&f.metrics, "metrics", "127.0.0.1:7401", "address of the Prometheus metrics endpoint (empty: off)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key, serve TLS")
	fl.StringVar(&f.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	fl.StringVar(&f.tlsClientCA, "tls-client-ca", "", "CA bundle (PEM) that client certificates must chain to; requires client certificates")
	fl.StringVar(&f.authTokenFile, "auth-token-file", "", "file of bearer tokens, one a line; every client must present one (with several, each is a client for the quotas)")
	fl.StringVar(&f.accessFile, "access-file", "", "JSON file of identities (bearer tokens, client-certificate names) and their grants of lock, read and admin by name prefix; reread on SIGHUP (a bad file keeps the old rules); not with --auth-token-file (see README, Access by name prefix)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.DurationVar(&f.defaultTTL, "default-ttl", 10*time.Second, "TTL of sessions opened without one (1s to 1h)")
	fl.DurationVar(&f.shutdownGraceTime, "shutdown-grace", 10*time.Second, "how long a graceful stop waits for calls in flight (not negative)")
	q := &f.quota
	fl.IntVar(&q.SessionsPerClientMax, "sessions-per-client", 0, "live sessions one client may hold (0: a tenth of the node's)")
	fl.IntVar(&q.RequestsPerClientMax, "requests-per-client", 0, "calls one client may have in flight (0: 1024)")
	fl.IntVar(&q.StreamsPerClientMax, "streams-per-client", 0, "streams one client may hold open (0: two per session it may hold, plus 64)")
	fl.IntVar(&q.ConnectionsMax, "connections-max", 0, "connections the node holds at once; more are refused (0: 4096; keep under the file limit)")
	fl.DurationVar(&q.HandshakeTimeout, "handshake-timeout", 0, "bound on a new connection's TLS handshake and HTTP/2 preface (0: 10s)")
	fl.DurationVar(&q.IdleTimeout, "idle-timeout", 0, "close a connection with no stream for this long (0: 5m)")
	fl.BoolVar(&f.pprof, "pprof", false, "also serve Go's profiles (/debug/pprof/) on the metrics endpoint")
	fl.StringVar(&f.memoryLimit, "memory-limit", defaultMemoryLimit, "soft limit on the node's Go memory: the collector works harder near it; raised while the live heap needs more (never below 1.5x it); off: none (default GOMEMLIMIT when set)")
	fl.BoolVar(&f.printPublicKey, "print-public-key", false, "print the public key this node signs sequencers with (making the key in --data if it has none) and exit; its key id goes to stderr")
	f.member.register(fl)
	return cmd
}

func serve(ctx context.Context, f serveFlags) error {
	if lim := spec.DefaultLimits(); f.defaultTTL < lim.TTLMin || f.defaultTTL > lim.TTLMax {
		return usageError("--default-ttl %v: must be within [%v, %v] (TTLMin, TTLMax)", f.defaultTTL, lim.TTLMin, lim.TTLMax)
	}
	if f.shutdownGraceTime < 0 {
		return usageError("--shutdown-grace %v: must not be negative", f.shutdownGraceTime)
	}
	log, err := newLogger(f.logLevel)
	if err != nil {
		return err
	}
	key, keyPath, created, err := loadSequencerKey(f.data)
	if err != nil {
		return err
	}
	pub := key.Public().(ed25519.PublicKey)
	if f.printPublicKey {
		fmt.Println(sequencer.FormatPublicKey(pub))
		fmt.Fprintf(os.Stderr, "key id %s, from %s\n", sequencer.IDOf(pub), keyPath)
		return nil
	}
	if created {
		log.Info("made a sequencer key", "file", keyPath, "key_id", sequencer.IDOf(pub).String())
	}
	limit, err := memoryLimit(f.memoryLimit, f.memoryLimitGiven)
	if err != nil {
		return fmt.Errorf("--memory-limit: %w", err)
	}
	creds, err := serverCredentials(f)
	if err != nil {
		return err
	}
	tokens, err := readTokens(f.authTokenFile)
	if err != nil {
		return err
	}
	access, err := loadAccess(f)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ctx, stopLimit := context.WithCancel(ctx)
	defer stopLimit()
	holdMemoryLimit(ctx, limit, log)
	lim := spec.DefaultLimits()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := f.quota
	opts.Limits, opts.Log, opts.AuthTokens, opts.Registry, opts.DefaultTTL = lim, log, tokens, reg, f.defaultTTL
	opts.Access, opts.SequencerKey = access, key
	var srv *server.Server
	stopMember := func() {}
	if f.member.enabled() {
		m, err := startMember(&f.member, f.data, lis.Addr().String(), lim, opts, log)
		if err != nil {
			_ = lis.Close()
			return err
		}
		srv, stopMember = m.srv, m.stop
	} else {
		node, err := engine.OpenNode(engine.NodeOptions{FS: vfs.Default, Dir: f.data, Limits: lim, Log: log},
			0) // the node's clock resumes from the store's
		if err != nil {
			_ = lis.Close()
			return err
		}
		srv = server.New(node, opts)
	}
	gopts := srv.ServerOptions()
	if creds != nil {
		gopts = append(gopts, grpc.Creds(creds))
	}
	g := grpc.NewServer(gopts...)
	srv.Register(g)
	served := make(chan error, 1)
	limited := srv.Listen(lis, creds != nil)
	go func() { served <- g.Serve(limited) }()
	metricsSrv, metricsAddr := startMetrics(f.metrics, f.pprof, reg, log)
	if access != nil {
		stopReload := reloadOnHangup(srv, log)
		defer stopReload()
	}
	log.Info("serving", "listen", lis.Addr().String(), "data", f.data, "metrics", metricsAddr,
		"tls", creds != nil, "auth_tokens", len(tokens), "access_identities", access.Identities(), "member", f.member.id,
		"sequencer_key", sequencer.IDOf(pub).String())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	var failure error
	select {
	case s := <-sig:
		log.Info("stopping", "signal", s.String())
	case <-srv.Done():
		failure = errors.New("the node stopped after a failed write; restart it to recover from its store")
	case err := <-served:
		failure = fmt.Errorf("grpc: %w", err)
	case <-ctx.Done():
	}
	srv.Drain() // streams end; unary calls in flight finish
	stopGracefully(g, f.shutdownGraceTime)
	if metricsSrv != nil {
		_ = metricsSrv.Close()
	}
	if err := srv.Stop(); err != nil && failure == nil {
		failure = err
	}
	stopMember()
	if failure != nil {
		return failure
	}
	log.Info("stopped")
	return nil
}

// stopGracefully lets calls in flight finish, for at most grace.
func stopGracefully(g *grpc.Server, grace time.Duration) {
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		g.Stop()
	}
}

// startMetrics serves the metrics (and the profiles) on addr, and returns
// the server and the address it listens on ("" if off). A port it cannot
// listen on is logged and leaves the node without metrics, as before: the
// lock service does not depend on them.
func startMetrics(addr string, profiles bool, reg *prometheus.Registry, log *slog.Logger) (*http.Server, string) {
	if addr == "" {
		return nil, ""
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("metrics endpoint: the node serves without metrics", "err", err)
		return nil, ""
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if profiles {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint", "err", err)
		}
	}()
	return s, ln.Addr().String()
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// readTokens reads the bearer tokens, one a line (blank lines and lines
// starting with # are skipped). With several, each names a client for the
// per-client quotas.
func readTokens(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--auth-token-file: %w", err)
	}
	var tokens []string
	for _, line := range strings.Split(string(b), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			tokens = append(tokens, t)
		}
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("--auth-token-file: %s holds no token", path)
	}
	return tokens, nil
}

// loadAccess reads --access-file, if given. With it, every identity and
// what it may do is in that one file: a token of --auth-token-file could
// do everything, so the two together are refused rather than guessed at.
func loadAccess(f serveFlags) (*server.AccessRules, error) {
	if f.accessFile == "" {
		return nil, nil
	}
	if f.authTokenFile != "" {
		return nil, errors.New(`--access-file and --auth-token-file do not go together: list the tokens in the access file ` +
			`(an identity granted lock, read and admin on prefix "" may do everything, as a token of --auth-token-file does)`)
	}
	return server.LoadAccessFile(f.accessFile)
}

// reloadOnHangup rereads the access file on every SIGHUP until stopped;
// ReloadAccess logs and counts each reload, and keeps the old rules when
// the file does not load.
func reloadOnHangup(srv *server.Server, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: reloading the access file")
				_ = srv.ReloadAccess()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}

func serverCredentials(f serveFlags) (credentials.TransportCredentials, error) {
	if f.tlsCert == "" && f.tlsKey == "" {
		if f.tlsClientCA != "" {
			return nil, errors.New("--tls-client-ca needs --tls-cert and --tls-key")
		}
		return nil, nil
	}
	if f.tlsCert == "" || f.tlsKey == "" {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.tlsClientCA != "" {
		pool, err := loadPool(f.tlsClientCA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(cfg), nil
}

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls: %s holds no PEM certificate", path)
	}
	return pool, nil
}
