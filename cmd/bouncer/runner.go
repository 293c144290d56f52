package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/bouncer-dlm/bouncer/client"
)

// What `lock` and `elect` share: a session opened from the client flags,
// and a command run while something is held, stopped when it is lost.

// commandAfterName is the command after NAME in args (flags end at NAME,
// so a -- after it reaches the command's arguments); verb names the
// command that wants it.
func commandAfterName(verb string, args []string) ([]string, error) {
	argv := args[1:]
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return nil, usageError("%s needs a command to run after NAME", verb)
	}
	return argv, nil
}

// checkStanding checks, before anything is sent, what lock and elect
// share: the session's TTL, the wait, NAME, and the command (found and
// executable).
func checkStanding(ttl, wait time.Duration, name, command string) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	if err := checkWait(wait); err != nil {
		return err
	}
	if err := checkName(name); err != nil {
		return err
	}
	return checkCommand(command)
}

// openSession connects with f and opens a session of ttl (checked by the
// caller: checkTTL). close closes the
// session (releasing what it holds) and the connection.
func openSession(ctx context.Context, f clientFlags, ttl time.Duration) (s *client.Session, close func(), err error) {
	c, err := f.connectTTL(ttl)
	if err != nil {
		return nil, nil, err
	}
	openCtx, cancel := context.WithTimeout(ctx, f.timeout)
	s, err = c.NewSession(openCtx)
	cancel()
	if err != nil {
		_ = c.Close()
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, nil, nodeError(fmt.Errorf("the node at %s did not open a session within %v (--timeout)%s", f.addr, f.timeout, lastAttempt(err)))
		}
		return nil, nil, nodeError(fmt.Errorf("open a session at %s: %s", f.addr, describe(err)))
	}
	return s, func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), f.timeout)
		defer cancel()
		_ = s.Close(closeCtx)
		_ = c.Close()
	}, nil
}

// noKill is a grace that never ends: the command gets SIGTERM only.
const noKill time.Duration = -1

// supervised is a command run while something is held.
type supervised struct {
	argv  []string
	env   []string        // added to this process's environment
	lost  <-chan struct{} // closes when what is held may be lost
	what  string          // what was lost, for the message: "the lease on \"x\""
	grace time.Duration   // from SIGTERM to SIGKILL; noKill for never
}

// run runs the command and returns its exit status, and whether what was
// held may have been lost while it ran. Signals to this process are
// passed on to it. If lost closes first, the command gets SIGTERM, then
// SIGKILL after the grace; its status is then what that made of it (128+15
// if SIGTERM ended it).
func (p supervised) run() (status int, lost bool, err error) {
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), p.env...)
	if err := cmd.Start(); err != nil {
		return 0, false, startError(p.argv[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	done := p.lost
	var kill <-chan time.Time
	for {
		select {
		case err := <-exited:
			return exitStatus(cmd, err), lost, nil
		case s := <-sig:
			_ = cmd.Process.Signal(s) // pass it on; we release when it exits
		case <-done:
			lost, done = true, nil
			fmt.Fprintf(os.Stderr, "bouncer: %s may be lost; sending SIGTERM to %s\n", p.what, p.argv[0])
			_ = cmd.Process.Signal(syscall.SIGTERM)
			if p.grace >= 0 {
				t := time.NewTimer(p.grace)
				defer t.Stop()
				kill = t.C
			}
		case <-kill:
			kill = nil
			fmt.Fprintf(os.Stderr, "bouncer: %s still runs %v after SIGTERM; sending SIGKILL\n", p.argv[0], p.grace)
			_ = cmd.Process.Kill()
		}
	}
}

func exitStatus(cmd *exec.Cmd, err error) int {
	if err == nil {
		return 0
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if cmd.ProcessState != nil {
		return cmd.ProcessState.ExitCode()
	}
	return 1
}

// Exit statuses for a command that cannot be run, as the shells give them.
const (
	exitCannotRun = 126 // found, but not executable
	exitNotFound  = 127 // no such command
)

// checkCommand finds name as exec would, before anything is taken, so that
// a typo in CMD costs no lock and no leadership.
func checkCommand(name string) error {
	if _, err := exec.LookPath(name); err != nil {
		return startError(name, err)
	}
	return nil
}

// startError is the exit status and message for a command that cannot be
// run: 127 if there is no such command, 126 if it cannot be executed.
func startError(name string, err error) error {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return &exitError{code: exitNotFound, err: fmt.Errorf("%s: command not found", name)}
	}
	if errors.Is(err, fs.ErrPermission) {
		return &exitError{code: exitCannotRun, err: fmt.Errorf("%s: cannot be executed (permission denied)", name)}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &exitError{code: exitCannotRun, err: fmt.Errorf("%s: cannot be executed: %v", name, err)}
}

// letGo gives up what the command ran under (release: an unlock, a
// resignation) within timeout, after the command ended; a lease already
// lost is no news, any other failure is said on stderr as what.
func letGo(timeout time.Duration, what string, release func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := release(ctx); err != nil && !errors.Is(err, client.ErrLeaseLost) {
		fmt.Fprintln(os.Stderr, "bouncer: "+what+":", describe(err))
	}
}

// commandExit is the end of lock or elect when the command ran to its own
// end: the command's status, which it has already explained itself.
func commandExit(cmd string, status int) error {
	if status != 0 {
		return &exitError{code: status, err: fmt.Errorf("%s exited with status %d", cmd, status), quiet: true}
	}
	return nil
}
