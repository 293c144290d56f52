package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The commands that `bouncer elect` runs in these tests are this test
// binary itself, as a fence writer: it writes to the test's fenced store
// under its BOUNCER_TOKEN until SIGTERM, which it reports to the store.
const (
	fenceStoreEnv  = "BOUNCER_TEST_FENCE_STORE"  // the store's URL
	fenceWriterEnv = "BOUNCER_TEST_FENCE_WRITER" // the writer's name
)

func init() {
	if url := os.Getenv(fenceStoreEnv); url != "" {
		os.Exit(fenceWriter(url, os.Getenv(fenceWriterEnv), os.Getenv("BOUNCER_TOKEN")))
	}
}

// fenceWriter writes every 20 ms until SIGTERM (reported to the store:
// exit 0), its parent's death or a minute (exit 1): never an orphan that
// runs on.
func fenceWriter(url, writer, token string) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	parent := os.Getppid()
	hc := &http.Client{Timeout: time.Second}
	post := func(path string) {
		if resp, err := hc.Post(url+path+"?writer="+writer+"&token="+token, "", nil); err == nil {
			_ = resp.Body.Close()
		}
	}
	end := time.After(time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	for {
		select {
		case <-term:
			post("/term")
			return 0
		case <-end:
			return 1
		case <-tick.C:
			if os.Getppid() != parent {
				return 1
			}
			post("/write")
		}
	}
}

// fencedStore is the resource the leaders write to: it refuses a write
// whose token is lower than the highest it has seen, and logs every
// attempt and every SIGTERM its writers report.
type fencedStore struct {
	mu      sync.Mutex
	highest uint64
	log     []storeEntry
}

type storeEntry struct {
	writer string
	token  uint64
	kind   string // "ok", "refused" or "term"
}

func (s *fencedStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, err := strconv.ParseUint(r.URL.Query().Get("token"), 10, 64)
	if err != nil {
		http.Error(w, "bad token", http.StatusBadRequest)
		return
	}
	e := storeEntry{writer: r.URL.Query().Get("writer"), token: token, kind: "term"}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Path == "/write" {
		e.kind = "refused"
		if token >= s.highest {
			e.kind, s.highest = "ok", token
		}
	}
	s.log = append(s.log, e)
	if e.kind == "refused" {
		w.WriteHeader(http.StatusConflict)
	}
}

func (s *fencedStore) entries() []storeEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]storeEntry(nil), s.log...)
}

// await polls the store until ok holds of its log, for up to 20 s.
func (s *fencedStore) await(t *testing.T, what string, ok func([]storeEntry) bool) []storeEntry {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		log := s.entries()
		if ok(log) {
			return log
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s; the store's log: %v", what, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// firstOK is the index of the first write accepted that satisfies ok, or -1.
func firstOK(log []storeEntry, ok func(storeEntry) bool) int {
	for i, e := range log {
		if e.kind == "ok" && ok(e) {
			return i
		}
	}
	return -1
}

// candidate is one running `bouncer elect`.
type candidate struct {
	name   string
	cmd    *exec.Cmd
	out    *os.File
	exited chan struct{}
	err    error
}

func startCandidate(t *testing.T, dir, addr, storeURL, name string) *candidate {
	self, err := os.Executable()
	require.NoError(t, err)
	out, err := os.Create(filepath.Join(dir, name+".out"))
	require.NoError(t, err)
	c := &candidate{name: name, out: out, exited: make(chan struct{}),
		cmd: exec.Command(bin, "elect", "--addr", addr, "--ttl", "2s", "--grace", "3s", "--value", name, "election", "--", self)}
	c.cmd.Env = append(os.Environ(), fenceStoreEnv+"="+storeURL, fenceWriterEnv+"="+name)
	c.cmd.Stdout, c.cmd.Stderr = out, out
	require.NoError(t, c.cmd.Start())
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = c.cmd.Process.Signal(syscall.SIGCONT)
		_ = c.cmd.Process.Kill()
		<-c.exited
		_ = out.Close()
	})
	return c
}

func (c *candidate) output() string {
	b, _ := os.ReadFile(c.out.Name())
	return string(b)
}

// status waits for the candidate to exit, for up to 20 s.
func (c *candidate) status(t *testing.T) int {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not exit; its output:\n%s", c.name, c.output())
	}
	if c.err == nil {
		return 0
	}
	return c.cmd.ProcessState.ExitCode()
}

// TestE2EElectFencesAPausedLeader: three `bouncer elect` run a writer to a
// fenced store; exactly one leads. Its elect process is paused (SIGSTOP)
// past its TTL while its writer goes on: exactly one other candidate leads,
// with a greater token, and from its first write on the store refuses
// every write of the old leader. Resumed, the old elect sends its writer
// SIGTERM and exits 74. The new leader's writer is stopped (SIGTERM to its
// elect: exit 0): it resigns, and the last candidate leads with a greater
// token still. elect --observe prints the three leaders in order.
func TestE2EElectFencesAPausedLeader(t *testing.T) {
	p := startNode(t, t.TempDir(), "127.0.0.1:0")
	store := &fencedStore{}
	srv := httptest.NewServer(store)
	defer srv.Close()
	dir := t.TempDir()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	observed := &syncBuffer{}
	obs := exec.CommandContext(ctx, bin, "elect", "--observe", "--json", "--addr", p.addr, "election")
	obs.Stdout = observed
	require.NoError(t, obs.Start())
	defer func() { _ = obs.Process.Kill(); _ = obs.Wait() }()

	cands := map[string]*candidate{}
	for i := range 3 {
		name := fmt.Sprintf("c%d", i)
		cands[name] = startCandidate(t, dir, p.addr, srv.URL, name)
	}
	log := store.await(t, "a first leader writes", func(l []storeEntry) bool { return firstOK(l, func(storeEntry) bool { return true }) >= 0 })
	first := log[firstOK(log, func(storeEntry) bool { return true })]
	time.Sleep(500 * time.Millisecond) // the others have stood meanwhile
	for _, e := range store.entries() {
		require.Equal(t, first.writer, e.writer, "only the first leader's writer runs: %+v", e)
	}

	old := cands[first.writer]
	require.NoError(t, old.cmd.Process.Signal(syscall.SIGSTOP))
	notFirst := func(e storeEntry) bool { return e.writer != first.writer }
	log = store.await(t, "a new leader writes", func(l []storeEntry) bool { return firstOK(l, notFirst) >= 0 })
	handover := firstOK(log, notFirst)
	second := log[handover]
	require.Greater(t, second.token, first.token, "the new leader's token is greater")
	refusedAfter := func(l []storeEntry) bool {
		n := 0
		for _, e := range l[handover:] {
			if e.writer == first.writer && e.kind == "refused" {
				n++
			}
		}
		return n >= 3
	}
	store.await(t, "the old leader's writer, still running, is refused (three times)", refusedAfter)
	require.NoError(t, old.cmd.Process.Signal(syscall.SIGCONT))
	require.Equal(t, exitLeaseLost, old.status(t), old.output())
	require.Contains(t, old.output(), "may be lost; sending SIGTERM")
	store.await(t, "the old leader's writer got SIGTERM", func(l []storeEntry) bool {
		for _, e := range l {
			if e.writer == first.writer && e.kind == "term" {
				return true
			}
		}
		return false
	})

	// The second leader steps down: SIGTERM to its elect reaches its writer,
	// which exits 0; elect resigns and exits 0. The last candidate leads.
	newer := cands[second.writer]
	require.NoError(t, newer.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, newer.status(t), newer.output())
	third := func(e storeEntry) bool { return e.writer != first.writer && e.writer != second.writer }
	log = store.await(t, "the last candidate leads", func(l []storeEntry) bool { return firstOK(l, third) >= 0 })
	last := log[firstOK(log, third)]
	require.Greater(t, last.token, second.token)

	// The store's whole story: every accepted write is the current leader's
	// (one at a time, tokens rising), and no write of an earlier leader is
	// accepted once a later one has written.
	var leaders []storeEntry
	for _, e := range log {
		if e.kind != "ok" {
			continue
		}
		if len(leaders) == 0 || leaders[len(leaders)-1].writer != e.writer {
			for _, l := range leaders {
				require.NotEqual(t, l.writer, e.writer, "an earlier leader's write was accepted after a later leader's: %v", log)
			}
			leaders = append(leaders, e)
		}
		require.Equal(t, leaders[len(leaders)-1].token, e.token, "a leader writes under one token")
	}
	require.Len(t, leaders, 3, "exactly one new leader each time: %v", log)
	refused := 0
	for _, e := range log {
		if e.kind == "refused" {
			require.Equal(t, first.writer, e.writer, "only the paused leader is ever refused: %v", log)
			refused++
		}
	}
	t.Logf("leaders %s#%d, %s#%d, %s#%d; %d writes of the paused leader refused", first.writer, first.token,
		second.writer, second.token, last.writer, last.token, refused)

	// What the observer printed: the three leaders, in order.
	want := []string{first.writer, second.writer, last.writer}
	wantTokens := []uint64{first.token, second.token, last.token}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var seen []leaderLine
		for _, line := range strings.Split(strings.TrimSpace(observed.String()), "\n") {
			var l leaderLine
			if line == "" {
				continue
			}
			dec := json.NewDecoder(strings.NewReader(line))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&l), line)
			require.Equal(t, "election", l.Name, line)
			_, err := time.Parse(time.RFC3339Nano, l.Time)
			require.NoError(t, err, line)
			if l.Leader {
				seen = append(seen, l)
			}
		}
		if len(seen) >= 3 || time.Now().After(deadline) {
			require.Len(t, seen, 3, observed.String())
			for i, l := range seen {
				require.Equal(t, want[i], l.Value)
				require.Equal(t, wantTokens[i], l.Token)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2EElectKillsAfterGrace: a command that ignores SIGTERM is killed
// after --grace once the leadership is lost; and the usage errors.
func TestE2EElectKillsAfterGrace(t *testing.T) {
	p := startNode(t, t.TempDir(), "127.0.0.1:0")
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	require.NoError(t, err)
	defer out.Close()
	cmd := exec.Command(bin, "elect", "--addr", p.addr, "--ttl", "1s", "--grace", "300ms", "e", "--",
		"sh", "-c", `trap "" TERM; exec sleep 30`)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()
	read := func() string { b, _ := os.ReadFile(out.Name()); return string(b) }
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(read(), "leading e with token"); {
		require.True(t, time.Now().Before(deadline), "elect never led; output:\n%s", read())
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGSTOP))
	time.Sleep(1500 * time.Millisecond) // past the TTL
	require.NoError(t, cmd.Process.Signal(syscall.SIGCONT))
	select {
	case err := <-exited:
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		require.Equal(t, exitLeaseLost, ee.ExitCode(), read())
	case <-time.After(10 * time.Second):
		t.Fatalf("elect did not end its command; output:\n%s", read())
	}
	require.Contains(t, read(), "sending SIGKILL")

	code, o := run(t, "elect", "--addr", p.addr, "e")
	require.Equal(t, exitUsage, code, o)
	code, o = run(t, "elect", "--addr", p.addr, "--grace", "-1s", "e", "--", "true")
	require.Equal(t, exitUsage, code, o)
	code, o = run(t, "elect", "--addr", p.addr, "--observe", "e", "extra")
	require.Equal(t, exitUsage, code, o)
	code, o = run(t, "elect", "--addr", p.addr, "--value", strings.Repeat("v", 2000), "e", "--", "true")
	require.Equal(t, exitUsage, code, o)
	require.Contains(t, o, "ValueBytesMax")
	code, o = run(t, "elect", "--addr", p.addr, "e", "--", "sh", "-c", "echo token=$BOUNCER_TOKEN; exit 3")
	require.Equal(t, 3, code, "elect passes on the command's status: %s", o)
	require.Contains(t, o, "token=")
}
