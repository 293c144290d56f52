package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newLockCmd) }

type lockFlags struct {
	clientFlags
	mode   string
	ttl    time.Duration
	wait   time.Duration
	noWait bool
	// permits of the counting semaphore NAME of limit permits (0: a lock)
	permits, limit uint32
}

func newLockCmd() *cobra.Command {
	var f lockFlags
	cmd := &cobra.Command{
		Use:   "lock [flags] NAME -- CMD [ARGS...]",
		Short: "Run a command while holding a lock",
		Long: `Run CMD while holding the lock NAME, like flock(1) across machines.

CMD gets BOUNCER_RESOURCE, BOUNCER_MODE, BOUNCER_TOKEN (the fencing
token: pass it to anything that can reject stale writers) and
BOUNCER_SEQUENCER (the lock's sequencer: the node's signed proof that this
lock is held in this mode under this token, for services that verify it
against the node's public key, e.g. in a Bouncer-Sequencer header) in its
environment. The lock is released when CMD exits, and lock exits with CMD's
status (128+N if a signal N ended it).

If the lease may be lost while CMD runs (this process could not renew it
in time, so the node may give the lock to another), CMD is sent SIGTERM,
lock says "lease lost" on stderr, and it still exits with CMD's status:
143 (128+15) if SIGTERM ended CMD, or whatever CMD chose on SIGTERM.

With --permits N --limit L, NAME is a counting semaphore of L permits and
CMD runs while holding N of them (at most L holders' worth run at once).

While it waits, lock prints on stderr its own session's tag, who holds NAME
and who is ahead in the queue (tags, modes, tokens, how long), and again
each time that changes.

Exit statuses of its own (CMD did not run):
  64   bad flags or arguments (--ttl 0s, --wait -1s, a malformed --addr, ...),
       checked before anything is sent
  69   the node could not be reached ("cannot reach the node at ADDR", at
       once), or it refused the request (credentials, access rules, a
       request it does not take)
  75   the lock could not be had (--no-wait and it is held, or --wait ran out)
  126  CMD was found but cannot be executed
  127  CMD was not found
  (126 and 127 are checked before the lock is taken.)`,
		Args: usageArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			argv, err := commandAfterName("lock", args)
			if err != nil {
				return err
			}
			return runLocked(cmd.Context(), f, args[0], argv)
		},
	}
	cmd.Flags().SetInterspersed(false)
	f.register(cmd.Flags())
	f.registerLabel(cmd.Flags())
	cmd.Flags().StringVar(&f.mode, "mode", "EX", "lock mode: NL CR CW PR PW EX, or shared, exclusive")
	cmd.Flags().DurationVar(&f.ttl, "ttl", 10*time.Second, "session TTL: how soon the lock frees itself if this process dies (1s to 1h)")
	cmd.Flags().DurationVar(&f.wait, "wait", 0, "give up after waiting this long (default 0: wait as long as the node allows; not negative)")
	cmd.Flags().BoolVar(&f.noWait, "no-wait", false, "fail at once if the lock is held")
	cmd.Flags().Uint32Var(&f.permits, "permits", 0, "take this many permits of the counting semaphore NAME (with --limit; mode PR) instead of a lock")
	cmd.Flags().Uint32Var(&f.limit, "limit", 0, "the semaphore's number of permits (with --permits; fixed by its first acquire)")
	return cmd
}

func runLocked(ctx context.Context, f lockFlags, name string, argv []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	mode, err := spec.ParseMode(f.mode)
	if err != nil {
		return usageError("--mode: %v", err)
	}
	if f.noWait && f.wait != 0 {
		return usageError("--wait and --no-wait exclude each other")
	}
	if (f.permits == 0) != (f.limit == 0) || f.permits > f.limit {
		return usageError("--permits and --limit go together, with 1 <= permits <= limit")
	}
	if f.permits != 0 {
		mode = spec.PR
	}
	if err := checkStanding(f.ttl, f.wait, name, argv[0]); err != nil {
		return err
	}
	s, closeSession, err := openSession(ctx, f.clientFlags, f.ttl)
	if err != nil {
		return err
	}
	defer closeSession()
	l, err := acquire(ctx, s, f, name, mode)
	if err != nil {
		return err
	}
	status, lost, err := runUnder(l, name, sequencerOf(ctx, l, f), argv)
	if err != nil {
		return err
	}
	letGo(f.timeout, "unlock", l.Unlock)
	if lost {
		// The status is still the command's, so that a caller learns what
		// the command made of SIGTERM; the message says why it came.
		return &exitError{code: status, err: fmt.Errorf("lease lost: the lease on %s may have run out while %s ran, so %s was sent SIGTERM; it exited with status %d",
			spec.QuoteName(name), argv[0], argv[0], status)}
	}
	return commandExit(argv[0], status)
}

// checkName refuses a NAME that no node takes: empty, or longer than
// NameBytesMax of spec.DefaultLimits, which the client library holds its
// requests to. The message never echoes the name: it may be anything.
func checkName(name string) error {
	lim := spec.DefaultLimits()
	if name == "" {
		return usageError("NAME must not be empty")
	}
	if len(name) > lim.NameBytesMax {
		return usageError("NAME: %d bytes exceeds NameBytesMax %d", len(name), lim.NameBytesMax)
	}
	return nil
}

func acquire(ctx context.Context, s *client.Session, f lockFlags, name string, mode spec.Mode) (*client.Lock, error) {
	if f.noWait {
		l, err := s.TryLock(ctx, name, mode)
		if f.permits != 0 {
			l, err = s.TryAcquirePermits(ctx, name, f.permits, f.limit)
		}
		if errors.Is(err, client.ErrWouldBlock) {
			return nil, &exitError{code: exitNotAcquired, err: fmt.Errorf("%s is held (--no-wait)", spec.QuoteName(name))}
		}
		return l, lockError(err)
	}
	var opts []client.LockOption
	if f.wait > 0 {
		opts = append(opts, client.WaitTimeout(f.wait))
	}
	var l *client.Lock
	var err error
	stop := reportWait(ctx, f.clientFlags, s.Tag(), name, os.Stderr) // who holds it, who is ahead
	if f.permits != 0 {
		l, err = s.AcquirePermits(ctx, name, f.permits, f.limit, opts...)
	} else {
		l, err = s.Lock(ctx, name, mode, opts...)
	}
	stop()
	if errors.Is(err, client.ErrTimeout) {
		return nil, &exitError{code: exitNotAcquired, err: fmt.Errorf("%s: still held after waiting %v", spec.QuoteName(name), f.wait)}
	}
	return l, lockError(err)
}

// lockError reports a request that failed: the node refused it or could
// not be asked (69). What the CLI can judge by itself, its flags and
// arguments, was checked before anything was sent (64).
func lockError(err error) error {
	if err == nil {
		return nil
	}
	return nodeError(err)
}

// sequencerOf asks the node for l's sequencer. Without one (a node that
// does not issue them) CMD runs anyway, told so on stderr, with an empty
// BOUNCER_SEQUENCER: a service that needs one refuses CMD's writes.
func sequencerOf(ctx context.Context, l *client.Lock, f lockFlags) string {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	seq, err := l.Sequencer(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bouncer: no sequencer for %s, BOUNCER_SEQUENCER is not set: %s\n", spec.QuoteName(l.Resource()), describe(err))
	}
	return seq
}

// runUnder runs argv while l is held and returns its exit status, and
// whether the lease may have been lost first (then argv got SIGTERM).
func runUnder(l *client.Lock, name, seq string, argv []string) (int, bool, error) {
	return supervised{argv: argv, lost: l.Done(), what: "the lease on " + spec.QuoteName(name), grace: noKill,
		env: []string{"BOUNCER_RESOURCE=" + name, "BOUNCER_MODE=" + l.Mode().String(),
			"BOUNCER_TOKEN=" + strconv.FormatUint(uint64(l.Token()), 10),
			"BOUNCER_SEQUENCER=" + seq}}.run() // empty if none, never an outer lock's
}
