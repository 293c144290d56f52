package peers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server is a lock service process that the harness started: on loopback,
// with its data in a directory of its own on disk.
type Server struct {
	Name string
	Addr string // host:port its clients dial

	cmd *exec.Cmd
	dir string // data directory, removed by Stop
	// leading: when the process's log said it became the leader of its
	// group (the lines that match the leader pattern given to start).
	mu      sync.Mutex
	leading []time.Time
	exited  chan struct{} // closed when the process has ended
	err     error         // how it ended, once exited is closed
}

const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
)

// StartBouncer runs `bouncer serve` (fsync on every acknowledged change).
func StartBouncer(ctx context.Context, bin, dir string) (*Server, error) {
	re := regexp.MustCompile(`msg=serving listen=(\S+)`)
	return start(ctx, "bouncer", dir, re, "", bin, "serve", "--data", filepath.Join(dir, "data"),
		"--listen", "127.0.0.1:0", "--metrics", "")
}

// StartEtcd runs cmd/etcdnode: an embedded etcd server, WAL fsynced.
func StartEtcd(ctx context.Context, bin, dir string) (*Server, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	re := regexp.MustCompile(`^ready listen=(\S+)`)
	return start(ctx, "etcd", dir, re, "", bin, "--data", filepath.Join(dir, "data"),
		"--client", ports[0], "--peer", ports[1])
}

// StartRedis runs redis-server with its built-in defaults, and with
// appendonly yes and appendfsync always if durable.
func StartRedis(ctx context.Context, bin, dir string, durable bool) (*Server, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(ports[0])
	args := []string{"--port", port, "--bind", "127.0.0.1", "--dir", dir, "--daemonize", "no", "--logfile", ""}
	name := "redis-default"
	if durable {
		name = "redis-always"
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	}
	re := regexp.MustCompile(`Ready to accept connections`)
	return start(ctx, name, dir, re, ports[0], bin, args...)
}

// start runs argv with stdout and stderr into dir/NAME.log and waits for a
// line that matches ready; its first group, if any, is the address (else
// addr is).
func start(ctx context.Context, name, dir string, ready *regexp.Regexp, addr string, bin string, args ...string) (*Server, error) {
	return startMember(ctx, name, dir, ready, nil, addr, bin, args...)
}

// startMember is start, noting the time of every line that matches leader
// (nil: none).
func startMember(ctx context.Context, name, dir string, ready, leader *regexp.Regexp, addr string, bin string, args ...string) (*Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		_ = logf.Close()
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = pw, pw
	// Its own process group (a ^C reaches the harness, which stops the
	// servers in order), and killed by the kernel should the harness die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_, _ = pr.Close(), pw.Close()
		_ = logf.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, bin, err)
	}
	_ = pw.Close()
	s := &Server{Name: name, Addr: addr, cmd: cmd, dir: dir, exited: make(chan struct{})}
	found := make(chan string, 1)
	go s.scanLog(pr, logf, ready, leader, found)
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t := time.NewTimer(readyTimeout)
	defer t.Stop()
	select {
	case a := <-found:
		if a != "" {
			s.Addr = a
		}
		return s, nil
	case <-s.exited:
		err = fmt.Errorf("%s: exited before it served (%v); see %s", name, s.err, logf.Name())
	case <-t.C:
		err = fmt.Errorf("%s: not serving after %v; see %s", name, readyTimeout, logf.Name())
	case <-ctx.Done():
		err = ctx.Err()
	}
	_ = s.stop(false)
	return nil, err
}

// scanLog copies the process's output to logf, sends the first match of
// ready (its first group, or "") on found, and notes when lines match
// leader.
func (s *Server) scanLog(r io.ReadCloser, logf *os.File, ready, leader *regexp.Regexp, found chan<- string) {
	defer logf.Close()
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	matched := false
	for sc.Scan() {
		line := sc.Text()
		if leader != nil && leader.MatchString(line) {
			s.mu.Lock()
			s.leading = append(s.leading, time.Now())
			s.mu.Unlock()
		}
		_, _ = logf.WriteString(line + "\n")
		if m := ready.FindStringSubmatch(line); !matched && m != nil {
			matched = true
			if len(m) > 1 {
				found <- m[1]
			} else {
				found <- ""
			}
		}
	}
	_, _ = io.Copy(logf, r)
}

// LeadingSince is the first time at or after t that the server said it
// became the leader, if it did.
func (s *Server) LeadingSince(t time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, at := range s.leading {
		if !at.Before(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

// Endpoint is the address its clients dial.
func (s *Server) Endpoint() string { return s.Addr }

// Kill sends SIGKILL and waits until the process has gone; its data stays.
func (s *Server) Kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// RSS is the server process's resident memory now, in bytes.
func (s *Server) RSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.PID()))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// CPU is the CPU time (user and system) the server process has used.
func (s *Server) CPU() (time.Duration, error) { return processCPU(strconv.Itoa(s.PID())) }

// processCPU reads utime+stime of /proc/PID/stat ("self" for this process).
func processCPU(pid string) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14 and stime 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const userHZ = 100 // clock ticks per second as Linux reports them to user space
	return time.Duration(ut+st) * time.Second / userHZ, nil
}

// Stop ends the server gracefully (SIGTERM, then SIGKILL after
// stopTimeout) and removes its data directory.
func (s *Server) Stop() error { return s.stop(true) }

func (s *Server) stop(graceful bool) error {
	select {
	case <-s.exited:
	default:
		sig := syscall.SIGTERM
		if !graceful {
			sig = syscall.SIGKILL
		}
		_ = s.cmd.Process.Signal(sig)
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			_ = syscall.Kill(-s.PID(), syscall.SIGKILL)
			<-s.exited
		}
	}
	return os.RemoveAll(s.dir)
}

// freePorts finds n free TCP ports on 127.0.0.1 (free when asked: a port
// could be taken again before the server binds it, which start reports).
func freePorts(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}
