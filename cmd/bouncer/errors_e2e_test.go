package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

// What the client commands say and how they exit when they fail: the real
// binary against real nodes on loopback (or none at all).

// rawTexts are what a message for people must never hold: gRPC's form of
// an error, and a deadline that names no cause.
var rawTexts = []string{"rpc error", "code = ", "desc = ", "context deadline exceeded"}

// requireWords checks that a failing command's output is in words.
func requireWords(t *testing.T, out string) {
	t.Helper()
	for _, raw := range rawTexts {
		require.NotContains(t, out, raw, "a raw error in a message for people:\n%s", out)
	}
}

// TestE2ENodeDownFailsAtOnce: with no node at --addr, every client command
// fails at once (well within --timeout) with exit 69, naming the address.
func TestE2ENodeDownFailsAtOnce(t *testing.T) {
	dead := freeLoopbackAddr(t)
	for _, args := range [][]string{
		{"lock", "x", "--", "true"},
		{"lock", "--no-wait", "x", "--", "true"},
		{"status"},
		{"status", "x"},
		{"status", "--waits"},
		{"watch", "x"},
		{"elect", "e", "--", "true"},
		{"elect", "--observe", "e"},
		{"cluster", "status"},
		{"bench", "--duration", "1s"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			start := time.Now()
			code, out := run(t, append([]string{args[0], "--addr", dead, "--timeout", "20s"}, args[1:]...)...)
			took := time.Since(start)
			require.Equal(t, exitUnavailable, code, out)
			require.Contains(t, out, "cannot reach the node at "+dead+": connection refused")
			require.Less(t, took, 5*time.Second, "it waited instead of failing at once: %s", out)
			requireWords(t, out)
		})
	}
	// A list names every member it tried.
	other := freeLoopbackAddr(t)
	code, out := run(t, "lock", "--addr", dead+","+other, "x", "--", "true")
	require.Equal(t, exitUnavailable, code, out)
	require.Contains(t, out, "cannot reach the node at any member of --addr: "+dead+" (connection refused), "+other+" (connection refused)")
}

// TestE2EBadFlagsAreUsageErrors: a malformed --addr, --ttl 0s or
// negative, --wait -1s and --timeout 0s are refused with a message naming
// the flag and exit 64, before anything is sent (no node is running); so
// are serve's --default-ttl 0s and a negative --shutdown-grace, before it
// opens anything.
func TestE2EBadFlagsAreUsageErrors(t *testing.T) {
	dead := freeLoopbackAddr(t)
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"lock", "--addr", "127.0.0.1", "x", "--", "true"}, `--addr: "127.0.0.1" is not HOST:PORT (missing port in address)`},
		{[]string{"status", "--addr", "127.0.0.1:99999"}, `--addr: "127.0.0.1:99999" is not HOST:PORT`},
		{[]string{"watch", "--addr", "a:1:2", "x"}, `--addr: "a:1:2" is not HOST:PORT`},
		{[]string{"cluster", "status", "--addr", ":7400"}, `--addr: ":7400" is not HOST:PORT`},
		{[]string{"lock", "--addr", dead, "--ttl", "0s", "x", "--", "true"}, "--ttl 0s: must be positive"},
		{[]string{"lock", "--addr", dead, "--ttl", "-5s", "x", "--", "true"}, "--ttl -5s: must be positive"},
		{[]string{"lock", "--addr", dead, "--ttl", "2h", "x", "--", "true"}, "--ttl 2h0m0s: must be within [1s, 1h0m0s]"},
		{[]string{"lock", "--addr", dead, "--wait", "-1s", "x", "--", "true"}, "--wait -1s: must not be negative"},
		{[]string{"lock", "--addr", dead, "--timeout", "0s", "x", "--", "true"}, "--timeout 0s: must be positive"},
		{[]string{"lock", "--addr", dead, "", "--", "true"}, "NAME must not be empty"},
		{[]string{"status", "--addr", dead, ""}, "NAME must not be empty"},
		{[]string{"watch", "--addr", dead, strings.Repeat("n", spec.DefaultLimits().NameBytesMax+1)}, "exceeds NameBytesMax"},
		{[]string{"elect", "--addr", dead, "e"}, "elect needs a command to run after NAME (or --observe)"},
		{[]string{"lock", "--addr", dead, "--label", strings.Repeat("l", spec.LabelBytesMax+1), "x", "--", "true"}, "--label: 129 bytes"},
		{[]string{"elect", "--addr", dead, "--ttl", "0s", "e", "--", "true"}, "--ttl 0s: must be positive"},
		{[]string{"elect", "--addr", dead, "--ttl", "-1s", "e", "--", "true"}, "--ttl -1s: must be positive"},
		{[]string{"elect", "--addr", dead, "--wait", "-1s", "e", "--", "true"}, "--wait -1s: must not be negative"},
		{[]string{"status", "--addr", dead, "--timeout", "-1s"}, "--timeout -1s: must be positive"},
		{[]string{"serve", "--data", filepath.Join(t.TempDir(), "d"), "--listen", "127.0.0.1:0", "--metrics", "", "--default-ttl", "0s"},
			"--default-ttl 0s: must be within [1s, 1h0m0s]"},
		{[]string{"serve", "--data", filepath.Join(t.TempDir(), "d"), "--listen", "127.0.0.1:0", "--metrics", "", "--shutdown-grace", "-1s"},
			"--shutdown-grace -1s: must not be negative"},
	} {
		code, out := run(t, c.args...)
		require.Equal(t, exitUsage, code, "%v: %s", c.args, out)
		require.Contains(t, out, c.says, "%v", c.args)
		requireWords(t, out)
	}
}

// TestE2ECommandThatCannotRun: lock and elect exit 127 for a command that
// does not exist and 126 for one that cannot be executed, as shells do,
// without taking the lock: the name stays free.
func TestE2ECommandThatCannotRun(t *testing.T) {
	p := startNode(t, t.TempDir(), "127.0.0.1:0")
	notExec := filepath.Join(t.TempDir(), "script")
	require.NoError(t, os.WriteFile(notExec, []byte("#!/bin/sh\necho CMD-RAN\n"), 0o644))
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"lock", "--addr", p.addr, "x", "--", "no-such-command-anywhere"}, exitNotFound, "no-such-command-anywhere: command not found"},
		{[]string{"lock", "--addr", p.addr, "x", "--", "./no/such/file"}, exitNotFound, "./no/such/file: command not found"},
		{[]string{"lock", "--addr", p.addr, "x", "--", notExec}, exitCannotRun, notExec + ": cannot be executed"},
		{[]string{"elect", "--addr", p.addr, "e", "--", "no-such-command-anywhere"}, exitNotFound, "command not found"},
		{[]string{"elect", "--addr", p.addr, "e", "--", notExec}, exitCannotRun, "cannot be executed"},
	} {
		code, out := run(t, c.args...)
		require.Equal(t, c.code, code, "%v: %s", c.args, out)
		require.Contains(t, out, c.says)
		require.NotContains(t, out, "CMD-RAN")
	}
	code, out := run(t, "status", "--addr", p.addr)
	require.Equal(t, 0, code, out)
	require.NotContains(t, out, "x ", "no lock was taken: %s", out)
}

// TestE2ERefusedRequestIs69: a request the node refuses (here a semaphore
// of another limit, and a lock asked of a semaphore) exits 69, in the
// node's words; 64 stays for what the CLI judges itself.
func TestE2ERefusedRequestIs69(t *testing.T) {
	p := startNode(t, t.TempDir(), "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Connect(client.Config{Addr: p.addr})
	require.NoError(t, err)
	defer c.Close()
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	held, err := s.AcquirePermits(ctx, "pool", 1, 2)
	require.NoError(t, err)

	code, out := run(t, "lock", "--addr", p.addr, "--permits", "1", "--limit", "3", "pool", "--", "sh", "-c", "echo CMD-RAN")
	require.Equal(t, exitUnavailable, code, out)
	require.Contains(t, out, "the node refused the request: InvalidArgument")
	require.NotContains(t, out, "CMD-RAN")
	requireWords(t, out)
	code, out = run(t, "lock", "--addr", p.addr, "--no-wait", "pool", "--", "true")
	require.Equal(t, exitUnavailable, code, out)
	require.Contains(t, out, "the node refused the request: InvalidArgument")
	requireWords(t, out)
	code, out = run(t, "lock", "--addr", p.addr, "--permits", "3", "--limit", "2", "pool", "--", "true")
	require.Equal(t, exitUsage, code, "the CLI's own check: %s", out)
	require.NoError(t, held.Unlock(ctx))
	require.NoError(t, s.Close(ctx))
}

// TestE2ECredentialErrors: Unauthenticated hints at --auth-token-file and
// BOUNCER_AUTH_TOKEN_FILE; PermissionDenied says which right on which
// name, as the node said; plaintext to a TLS node says the node did not
// answer. All exit 69, none in gRPC's words.
func TestE2ECredentialErrors(t *testing.T) {
	dir := t.TempDir()
	access := filepath.Join(dir, "access.json")
	require.NoError(t, os.WriteFile(access, []byte(`{"identities": [
		{"name": "worker", "token": "w", "grants": [{"prefix": "jobs/", "rights": ["lock"]}]}]}`), 0o600))
	token := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(token, []byte("w\n"), 0o600))
	wrong := filepath.Join(dir, "wrong")
	require.NoError(t, os.WriteFile(wrong, []byte("guess\n"), 0o600))
	p := startNode(t, filepath.Join(dir, "data"), "127.0.0.1:0", "--access-file", access)

	for _, args := range [][]string{
		{"lock", "--addr", p.addr, "jobs/1", "--", "true"},
		{"lock", "--addr", p.addr, "--auth-token-file", wrong, "jobs/1", "--", "true"},
		{"status", "--addr", p.addr, "jobs/1"},
		{"watch", "--addr", p.addr, "jobs/1"},
		{"elect", "--addr", p.addr, "--observe", "jobs/e"},
	} {
		code, out := run(t, args...)
		require.Equal(t, exitUnavailable, code, "%v: %s", args, out)
		require.Contains(t, out, "the node refused the credentials", "%v", args)
		require.Contains(t, out, "--auth-token-file", "%v", args)
		require.Contains(t, out, "BOUNCER_AUTH_TOKEN_FILE", "%v", args)
		requireWords(t, out)
	}

	code, out := run(t, "lock", "--addr", p.addr, "--auth-token-file", token, "billing/1", "--", "sh", "-c", "echo CMD-RAN")
	require.Equal(t, exitUnavailable, code, out)
	require.Contains(t, out, `permission denied: Acquire needs the lock right on resource "billing/1"`)
	require.NotContains(t, out, "CMD-RAN")
	requireWords(t, out)
	code, out = run(t, "status", "--addr", p.addr, "--auth-token-file", token, "jobs/1")
	require.Equal(t, exitUnavailable, code, out)
	require.Contains(t, out, "permission denied: Describe needs the read right")
	requireWords(t, out)
	code, out = run(t, "lock", "--addr", p.addr, "--auth-token-file", token, "jobs/1", "--", "sh", "-c", "echo CMD-RAN")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "CMD-RAN")

	ca, cert, key := writeTestPKI(t, dir)
	tlsNode := startNode(t, filepath.Join(dir, "tls-data"), "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key)
	code, out = run(t, "lock", "--addr", tlsNode.addr, "--timeout", "1s", "x", "--", "true")
	require.Equal(t, exitUnavailable, code, "plaintext to a TLS node: %s", out)
	require.Contains(t, out, "the node at "+tlsNode.addr+" did not open a session within 1s (--timeout) (the last attempt: ")
	require.Contains(t, out, "if the node serves TLS, give --tls-ca")
	requireWords(t, out)
	code, out = run(t, "lock", "--addr", tlsNode.addr, "--tls-ca", ca, "x", "--", "true")
	require.Equal(t, 0, code, out)
}

// TestE2ELockLeaseLost: when the lease may be lost while CMD runs, CMD gets
// SIGTERM, lock says "lease lost" on stderr and exits with CMD's own
// status: 143 when SIGTERM ends it, or what CMD chose on SIGTERM.
func TestE2ELockLeaseLost(t *testing.T) {
	p := startNode(t, t.TempDir(), "127.0.0.1:0")
	var wg sync.WaitGroup
	for _, c := range []struct {
		name, script string
		want         int
	}{
		{"killed", `echo ready; exec sleep 30`, 128 + int(syscall.SIGTERM)},
		{"trapped", `trap "exit 5" TERM; echo ready; while :; do sleep 0.05; done`, 5},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out := runPaused(t, "lock", "--addr", p.addr, "--ttl", "1s", c.name, "--", "sh", "-c", c.script)
			if code != c.want || !strings.Contains(out, "bouncer: lease lost: the lease on "+c.name) {
				t.Errorf("%s: exit %d, want %d, and a lease-lost message; output:\n%s", c.name, code, c.want, out)
			}
		}()
	}
	wg.Wait()
}

// runPaused starts the binary, waits for its command to print "ready",
// stops the binary (SIGSTOP) past a 1s TTL, resumes it and returns its exit
// status and output.
func runPaused(t *testing.T, args ...string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out outBuffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Error(err)
		return -1, ""
	}
	for !strings.Contains(out.String(), "ready") && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(1500 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Wait()
	return cmd.ProcessState.ExitCode(), out.String()
}

// outBuffer collects a process's output while the test reads it.
type outBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *outBuffer) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *outBuffer) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
