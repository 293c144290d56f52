package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/linearizability"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

// End-to-end tests: the real binary, real processes, loopback only.

var bin string // the bouncer binary, built once

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bouncer-e2e")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "bouncer")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running bouncer serve.
type proc struct {
	cmd    *exec.Cmd
	addr   string
	mu     sync.Mutex
	stderr bytes.Buffer
	exited chan struct{} // closed when the process has exited
	err    error         // how it exited, once exited is closed
}

var listenRE = regexp.MustCompile(`listen=(\S+)`)

// startNode runs bouncer serve on data, on listen (127.0.0.1:0 for any
// port), and waits until it serves.
func startNode(t *testing.T, data, listen string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"serve", "--data", data, "--listen", listen, "--metrics", ""}, extra...)
	p := &proc{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	pipe, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	serving := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "msg=serving") {
				serving <- m[1]
			}
		}
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	select {
	case p.addr = <-serving:
	case <-p.exited:
		t.Fatalf("serve exited: %v\n%s", p.err, p.log())
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not start\n%s", p.log())
	}
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// kill ends the node with SIGKILL, as a crash would.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
}

// stop ends the node with SIGTERM and returns how it exited.
func (p *proc) stop(t *testing.T) error {
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.exited:
		return p.err
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
		return nil
	}
}

// run runs the binary and returns its exit status and output.
func run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	require.NoError(t, err, string(out))
	return 0, string(out)
}

func TestE2ELockRunsCommandsOneAfterTheOther(t *testing.T) {
	p := startNode(t, t.TempDir(), "127.0.0.1:0")
	log := filepath.Join(t.TempDir(), "log")
	script := fmt.Sprintf(`echo "start $BOUNCER_TOKEN" >> %s; sleep 0.3; echo "end $BOUNCER_TOKEN" >> %s`, log, log)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out := run(t, "lock", "--addr", p.addr, "demo", "--", "sh", "-c", script)
			require.Equal(t, 0, code, out)
		}()
	}
	wg.Wait()
	b, err := os.ReadFile(log)
	require.NoError(t, err)
	lines := strings.Fields(strings.ReplaceAll(string(b), "\n", " "))
	require.Len(t, lines, 8, string(b))
	// start T1, end T1, start T2, end T2: never interleaved.
	require.Equal(t, []string{"start", "end", "start", "end"}, []string{lines[0], lines[2], lines[4], lines[6]}, string(b))
	require.Equal(t, lines[1], lines[3])
	require.Equal(t, lines[5], lines[7])
	require.NotEqual(t, lines[1], lines[5], "each holder gets its own token")

	code, out := run(t, "lock", "--addr", p.addr, "demo", "--", "sh", "-c", "exit 7")
	require.Equal(t, 7, code, "lock passes on the command's status: %s", out)
	require.NoError(t, p.stop(t), "SIGTERM stops the node cleanly")
}

func TestE2ENoWaitOnAHeldLock(t *testing.T) {
	p := startNode(t, t.TempDir(), "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Connect(client.Config{Addr: p.addr})
	require.NoError(t, err)
	defer c.Close()
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	l, err := s.Lock(ctx, "busy", spec.EX)
	require.NoError(t, err)
	code, out := run(t, "lock", "--addr", p.addr, "--no-wait", "busy", "--", "sh", "-c", "echo ran")
	require.Equal(t, exitNotAcquired, code, out)
	require.NotContains(t, out, "ran")
	code, out = run(t, "lock", "--addr", p.addr, "--wait", "200ms", "busy", "--", "true")
	require.Equal(t, exitNotAcquired, code, out)
	code, out = run(t, "lock", "--addr", p.addr, "--mode", "nonsense", "busy", "--", "true")
	require.Equal(t, exitUsage, code, out)
	code, out = run(t, "status", "--addr", p.addr, "busy")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, ":EX#")
	require.NoError(t, l.Unlock(ctx))
	require.NoError(t, s.Close(ctx))
}

// A name over the node's bound is refused at once with a clear error (and
// a usage status); it never holds up the client.
func TestE2ELockWithOversizedName(t *testing.T) {
	p := startNode(t, t.TempDir(), "127.0.0.1:0")
	code, out := run(t, "lock", "--addr", p.addr, strings.Repeat("n", 8000), "--", "sh", "-c", "echo ran")
	require.Equal(t, exitUsage, code, out)
	require.Contains(t, out, "NameBytesMax")
	require.NotContains(t, out, "ran")
	require.Less(t, len(out), 1000, "the error does not echo the name")
}

func TestE2ETLSAndAuth(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeTestPKI(t, dir)
	token := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(token, []byte("s3cret\n"), 0o600))
	wrong := filepath.Join(dir, "wrong")
	require.NoError(t, os.WriteFile(wrong, []byte("guess"), 0o600))
	p := startNode(t, t.TempDir(), "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--auth-token-file", token)

	code, out := run(t, "lock", "--addr", p.addr, "--timeout", "3s", "x", "--", "true")
	require.Equal(t, exitUnavailable, code, "plaintext to a TLS node is refused: %s", out)
	code, out = run(t, "lock", "--addr", p.addr, "--tls-ca", ca, "x", "--", "true")
	require.Equal(t, exitUnavailable, code, "no token: %s", out)
	require.Contains(t, out, "the node refused the credentials")
	require.Contains(t, out, "--auth-token-file")
	code, out = run(t, "lock", "--addr", p.addr, "--tls-ca", ca, "--auth-token-file", wrong, "x", "--", "true")
	require.Equal(t, exitUnavailable, code, "wrong token: %s", out)
	code, out = run(t, "lock", "--addr", p.addr, "--tls-ca", ca, "--auth-token-file", token, "x", "--", "sh", "-c", "echo token=$BOUNCER_TOKEN")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "token=1")
}

// TestE2EClientCertificates: a node with --tls-client-ca refuses clients
// without a certificate signed by that CA.
func TestE2EClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeTestPKI(t, dir)
	clientCert, clientKey := writeClientCert(t, dir)
	p := startNode(t, t.TempDir(), "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca)
	code, out := run(t, "lock", "--addr", p.addr, "--tls-ca", ca, "--timeout", "3s", "x", "--", "true")
	require.Equal(t, exitUnavailable, code, "no client certificate: %s", out)
	code, out = run(t, "lock", "--addr", p.addr, "--tls-ca", ca, "--tls-cert", clientCert, "--tls-key", clientKey, "x", "--", "true")
	require.Equal(t, 0, code, out)
}

// writeTestPKI makes a CA and a certificate for 127.0.0.1 signed by it.
func writeTestPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	caKeyDER, err := x509.MarshalECPrivateKey(caKey)
	require.NoError(t, err)
	writePEM(t, dir, "ca-key.pem", "EC PRIVATE KEY", caKeyDER)
	return writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER), writePEM(t, dir, "cert.pem", "CERTIFICATE", der),
		writePEM(t, dir, "key.pem", "EC PRIVATE KEY", keyDER)
}

// writeClientCert makes a client certificate signed by writeTestPKI's CA.
func writeClientCert(t *testing.T, dir string) (certFile, keyFile string) {
	return writeSignedCert(t, dir, "client", nil, x509.ExtKeyUsageClientAuth)
}

// writeSignedCert makes a certificate named name (for ips, with usages)
// signed by writeTestPKI's CA, and its key: name.pem and name-key.pem.
func writeSignedCert(t *testing.T, dir, name string, ips []net.IP, usages ...x509.ExtKeyUsage) (certFile, keyFile string) {
	caPair, err := tls.LoadX509KeyPair(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"))
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caPair.Certificate[0])
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: ips, ExtKeyUsage: usages}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caPair.PrivateKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "EC PRIVATE KEY", keyDER)
}

func writePEM(t *testing.T, dir, name, kind string, b []byte) string {
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: b}), 0o600))
	return path
}

// load is clients locking and unlocking EX locks on a few resources in a
// loop, recording what they observe.
type load struct {
	hist     *history
	fence    fence
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	grants   []grant
	failures []string
	ctx      context.Context
	t        *testing.T
}

// startLoad starts n clients of c on resources resources.
func startLoad(ctx context.Context, t *testing.T, c *client.Client, n, resources int) *load {
	l := &load{hist: &history{start: time.Now()}, stop: make(chan struct{}), ctx: ctx, t: t}
	for i := range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.run(c, i, resources)
		}()
	}
	return l
}

func (l *load) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, fmt.Sprintf(format, args...))
}

func (l *load) run(c *client.Client, i, resources int) {
	ctx, hist := l.ctx, l.hist
	s, err := c.NewSession(ctx)
	if err != nil {
		l.fail("client %d: open: %v", i, err)
		return
	}
	defer func() { _ = s.Close(ctx) }()
	for n := 0; ; n++ {
		select {
		case <-l.stop:
			return
		default:
		}
		g := grant{sent: time.Now()}
		resource := fmt.Sprintf("r%d", (i+n)%resources)
		deadline, _ := ctx.Deadline()
		acq := linearizability.Entry{Client: i, Call: hist.now(), Return: linearizability.Never,
			Input: spec.Input{Op: spec.OpAcquire, Session: s.ID(), Resource: resource,
				Request: spec.RequestID(3*n + 1), Mode: spec.EX, WaitTimeout: time.Until(deadline)}}
		lk, err := s.Lock(ctx, resource, spec.EX)
		if err != nil {
			hist.add(acq) // outcome unknown
			l.fail("client %d: lock: %v", i, err)
			return
		}
		g.token, g.answered = lk.Token(), time.Now()
		value, valid := lk.Value()
		acq.Known, acq.Return = true, hist.now()
		acq.Output = spec.Result{Code: spec.OK, Mode: lk.Mode(), Token: lk.Token(), Value: value, ValueValid: valid}
		hist.add(acq)
		// A write to the fenced resource under the grant's token: refused
		// if a later grant's token was seen there first (two holders).
		if !l.fence.write(resource, g.token) {
			l.fail("client %d: the fenced resource %s refused token %d: a later holder wrote first", i, resource, g.token)
		}
		// Down to PR (a conversion never waits downwards), then release.
		cv := linearizability.Entry{Client: i, Call: hist.now(), Return: linearizability.Never,
			Input: spec.Input{Op: spec.OpConvert, Session: s.ID(), Resource: resource, Request: spec.RequestID(3*n + 2),
				Mode: spec.PR, WaitTimeout: time.Until(deadline)}}
		if err := lk.Convert(ctx, spec.PR); err != nil {
			hist.add(cv) // outcome unknown
			l.fail("client %d: convert: %v", i, err)
			return
		}
		value, valid = lk.Value()
		cv.Known, cv.Return = true, hist.now()
		cv.Output = spec.Result{Code: spec.OK, Mode: lk.Mode(), Token: lk.Token(), Value: value, ValueValid: valid}
		hist.add(cv)
		rel := linearizability.Entry{Client: i, Call: hist.now(), Return: linearizability.Never,
			Input: spec.Input{Op: spec.OpRelease, Session: s.ID(), Resource: resource, Request: spec.RequestID(3*n + 3)}}
		err = lk.Unlock(ctx)
		g.released = err == nil
		if err == nil {
			rel.Known, rel.Return = true, hist.now()
		}
		hist.add(rel)
		l.mu.Lock()
		l.grants = append(l.grants, g)
		l.mu.Unlock()
		if err != nil {
			l.fail("client %d: unlock of token %d: %v", i, g.token, err)
			return
		}
	}
}

// fence is the fenced resource the holders write to: per resource, the
// highest token it has seen; a write under a lower one is refused.
type fence struct {
	mu  sync.Mutex
	max map[string]spec.Token
}

func (f *fence) write(resource string, token spec.Token) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.max == nil {
		f.max = map[string]spec.Token{}
	}
	if token < f.max[resource] {
		return false
	}
	f.max[resource] = token
	return true
}

// count is the grants acknowledged so far.
func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.grants)
}

// waitFor waits until n grants were acknowledged, and returns when the
// last of them was.
func (l *load) waitFor(n int) {
	for {
		if l.count() >= n {
			return
		}
		select {
		case <-l.ctx.Done():
			l.t.Fatalf("only %d grants", l.count())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// finish stops the clients and checks what they saw: no failure, every
// token granted after resumed above every token acknowledged before
// faulted, and a linearizable history.
func (l *load) finish(t *testing.T, faulted, resumed time.Time) {
	close(l.stop)
	l.wg.Wait()
	require.Empty(t, l.failures)
	var maxBefore, minAfter spec.Token
	minAfter = ^spec.Token(0)
	for _, g := range l.grants {
		if g.answered.Before(faulted) {
			maxBefore = max(maxBefore, g.token)
		}
		if g.sent.After(resumed) {
			minAfter = min(minAfter, g.token)
		}
	}
	require.Less(t, maxBefore, minAfter, "a token after the fault must exceed every token acknowledged before it")
	t.Logf("%d grants; max token before the fault %d, min after it %d", len(l.grants), maxBefore, minAfter)
	l.hist.check(t)
}

// grant is one acknowledged grant seen by a client.
type grant struct {
	token          spec.Token
	sent, answered time.Time
	released       bool // its release was acknowledged (not lost)
}

// history records what the clients observed, for the linearizability
// checker: times are since the start of the test, in nanoseconds.
type history struct {
	mu      sync.Mutex
	start   time.Time
	entries []linearizability.Entry
}

func (h *history) now() spec.Time { return spec.Time(time.Since(h.start)) }

func (h *history) add(e linearizability.Entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.entries = append(h.entries, e)
}

// check fails t unless the history is linearizable; on failure it writes
// Porcupine's visualization next to the test's files.
func (h *history) check(t *testing.T) {
	v := linearizability.Check(h.entries, time.Minute)
	t.Logf("linearizability: %v", &v)
	if !v.OK() {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("bouncer-e2e-%d.html", time.Now().UnixNano()))
		if f, err := os.Create(path); err == nil {
			_ = v.WriteHTML(f, time.Minute)
			_ = f.Close()
		}
		t.Fatalf("the history is not linearizable (%v); visualization: %s", &v, path)
	}
}

// TestE2ECrashRestart: SIGKILL the node while 32 clients lock, convert and unlock,
// restart it on the same data and port. No acknowledged grant is lost (each
// holder's release still finds its lock), every token granted after the
// restart exceeds every token acknowledged before the crash, and what the
// clients observed passes the linearizability checker.
func TestE2ECrashRestart(t *testing.T) {
	data := t.TempDir()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	p := startNode(t, data, addr)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Connect(client.Config{Addr: addr, TTL: 10 * time.Second})
	require.NoError(t, err)
	defer c.Close()
	load := startLoad(ctx, t, c, 32, 8)
	waitFor := load.waitFor
	waitFor(200)
	p.kill()
	killed := time.Now()
	p = startNode(t, data, addr)
	restarted := time.Now()
	waitFor(load.count() + 200)
	t.Logf("200 grants within %v of the kill", time.Since(killed).Round(time.Millisecond))
	load.finish(t, killed, restarted)
	hist := load.hist

	// The check can fail on this very history: a grant whose token does
	// not exceed the tokens before it (as a node that lost its token
	// counter in the crash would give) is caught. The earliest grant is
	// given token 0, which no grant can have, so Porcupine proves the
	// history illegal without a long search.
	bad := slices.Clone(hist.entries)
	first := -1
	for i, e := range bad {
		if e.Input.Op == spec.OpAcquire && e.Known && (first < 0 || e.Call < bad[first].Call) {
			first = i
		}
	}
	bad[first].Output.Token = 0
	start := time.Now()
	v := linearizability.Check(bad, time.Minute)
	require.Equal(t, linearizability.Illegal, v.Verdict, "a token that went back must fail the check: %v", &v)
	t.Logf("the corrupted history: %v, in %v", &v, time.Since(start).Round(time.Millisecond))
	require.NoError(t, p.stop(t))
}

// --addr and BOUNCER_ADDR take a group's members as a comma-separated
// list: the client leaves a member it cannot reach for the next. A bad list
// is a usage error naming the fault.
func TestE2EAddrList(t *testing.T) {
	p := startNode(t, t.TempDir(), "127.0.0.1:0")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := lis.Addr().String()
	require.NoError(t, lis.Close())

	code, out := run(t, "lock", "--addr", dead+","+p.addr, "--ttl", "2s", "x", "--", "sh", "-c", "echo token=$BOUNCER_TOKEN")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "token=1")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "status")
	cmd.Env = append(os.Environ(), "BOUNCER_ADDR="+dead+", "+p.addr)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	require.Contains(t, string(b), "RESOURCE")

	code, out = run(t, "status", "--addr", p.addr+",,"+dead)
	require.Equal(t, exitUsage, code, out)
	require.Contains(t, out, "is empty")
	code, out = run(t, "status", "--addr", p.addr+","+p.addr)
	require.Equal(t, exitUsage, code, out)
	require.Contains(t, out, "listed twice")
}

// TestFenceRefusesAnOlderToken: the load's fenced resource refuses a write
// under a token lower than one it has seen (what a second holder with an
// older grant would send), and takes equal or higher ones.
func TestFenceRefusesAnOlderToken(t *testing.T) {
	var f fence
	require.True(t, f.write("r", 5))
	require.True(t, f.write("r", 5))
	require.True(t, f.write("s", 1), "each resource has its own highest token")
	require.False(t, f.write("r", 4))
	require.True(t, f.write("r", 9))
}

// TestE2ELockPermits: four commands share a semaphore of two permits: at
// most two run at once, and both ran in parallel at some point.
func TestE2ELockPermits(t *testing.T) {
	p := startNode(t, t.TempDir(), "127.0.0.1:0")
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	// Each command counts the running ones in a directory of its own files.
	script := fmt.Sprintf(`touch %[1]s/run.$$; echo "$(ls %[1]s | grep -c run) $BOUNCER_TOKEN" >> %[2]s; sleep 0.3; rm %[1]s/run.$$`, dir, log)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out := run(t, "lock", "--addr", p.addr, "--permits", "1", "--limit", "2", "pool", "--", "sh", "-c", script)
			require.Equal(t, 0, code, out)
		}()
	}
	wg.Wait()
	b, err := os.ReadFile(log)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 4, string(b))
	most := 0
	for _, l := range lines {
		n, err := strconv.Atoi(strings.Fields(l)[0])
		require.NoError(t, err)
		most = max(most, n)
	}
	require.Equal(t, 2, most, "two permits: two run at once, never three\n%s", b)

	// status shows the semaphore's limit and each holder's permits.
	hold := make(chan struct{})
	go func() {
		_, _ = run(t, "lock", "--addr", p.addr, "--permits", "2", "--limit", "2", "pool", "--", "sleep", "1")
		close(hold)
	}()
	require.Eventually(t, func() bool {
		_, out := run(t, "status", "--addr", p.addr, "pool")
		return strings.Contains(out, ":PRx2#") && strings.Contains(out, "limit=2")
	}, 5*time.Second, 20*time.Millisecond)
	<-hold

	code, out := run(t, "lock", "--addr", p.addr, "--permits", "3", "--limit", "2", "pool", "--", "true")
	require.Equal(t, exitUsage, code, out)
	code, out = run(t, "lock", "--addr", p.addr, "--permits", "1", "--limit", "5", "pool", "--", "true")
	require.Equal(t, 0, code, "the semaphore is gone once unused, so a new limit is fine: %s", out)
}
