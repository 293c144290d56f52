package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newElectCmd) }

type electFlags struct {
	clientFlags
	value   string
	ttl     time.Duration
	grace   time.Duration
	wait    time.Duration
	observe bool
	json    bool
}

// electGraceMax bounds --grace: a deposed leader's command must not run on
// for long past the point where it is told to stop.
const electGraceMax = 10 * time.Minute

func newElectCmd() *cobra.Command {
	var f electFlags
	cmd := &cobra.Command{
		Use:   "elect [flags] NAME -- CMD [ARGS...]\n  bouncer elect --observe [flags] NAME",
		Short: "Run a command only while this process leads an election",
		Long: `Stand in the election NAME and run CMD once this process leads it: one
leader at a time, in the order the candidates stood. The leader publishes
--value for observers.

CMD gets BOUNCER_RESOURCE (NAME), BOUNCER_MODE and BOUNCER_TOKEN (the
leadership's fencing token, greater than every earlier leader's: pass it to
anything that can reject stale writers) in its environment. When the
leadership may be lost (the session's lease runs out as this process counts
it, before the node can elect anyone else), CMD gets SIGTERM, then SIGKILL
after --grace. When CMD exits by itself, the leadership is resigned and the
next candidate leads; elect exits with CMD's status (128+N if a signal N
ended it).

Exit statuses of its own:
  64   bad flags or arguments, checked before anything is sent; CMD did not run
  69   the node could not be reached (at once), or it refused the request;
       CMD did not run
  74   the leadership was lost while CMD ran: CMD was sent SIGTERM (and
       SIGKILL after --grace); stderr says "leadership lost" and CMD's status
  75   --wait ran out before this process led; CMD did not run
  126  CMD was found but cannot be executed; 127 CMD was not found (both
       checked before standing); CMD did not run
  128+N  signal N came before this process led; CMD did not run
Unlike lock, which passes CMD's status on after a lost lease, elect exits 74
then: a supervisor that restarts candidates tells a lost leadership from
CMD's own end by it.

With --observe, elect runs no command: it prints the election's leader now
and after every change, one line each ("leader token=T value=V" or "no
leader"; with --json, {"time":...,"name":...,"leader":true,"token":T,"value":V}), until
interrupted (status 0), or 69 if the node refuses the watch.`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.observe {
				if len(args) != 1 {
					return usageError("elect --observe takes only NAME")
				}
				return observeElection(cmd.Context(), f, args[0], cmd.OutOrStdout())
			}
			if f.json {
				return usageError("--json goes with --observe")
			}
			argv, err := commandAfterName("elect", args)
			if err != nil {
				return usageError("%v (or --observe)", err)
			}
			return runElected(cmd.Context(), f, args[0], argv)
		},
	}
	cmd.Flags().SetInterspersed(false)
	f.register(cmd.Flags())
	f.registerLabel(cmd.Flags())
	cmd.Flags().StringVar(&f.value, "value", "", "what this candidate publishes as leader (its address, say) for observers (default HOST:PID)")
	cmd.Flags().DurationVar(&f.ttl, "ttl", 10*time.Second, "session TTL: how soon another candidate leads if this process dies or pauses (1s to 1h)")
	cmd.Flags().DurationVar(&f.grace, "grace", 10*time.Second, "how long CMD has to exit after SIGTERM before SIGKILL, once the leadership may be lost")
	cmd.Flags().DurationVar(&f.wait, "wait", 0, "give up if not leading after this long (default 0: stand until interrupted; not negative)")
	cmd.Flags().BoolVar(&f.observe, "observe", false, "print who leads NAME on every change instead of standing")
	cmd.Flags().BoolVar(&f.json, "json", false, "with --observe: print JSON lines")
	return cmd
}

func runElected(ctx context.Context, f electFlags, name string, argv []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.grace < 0 || f.grace > electGraceMax {
		return usageError("--grace %v: must be within [0, %v]", f.grace, electGraceMax)
	}
	if lim := spec.DefaultLimits(); len(f.value) > lim.ValueBytesMax {
		return usageError("--value: %d bytes exceeds ValueBytesMax %d", len(f.value), lim.ValueBytesMax)
	}
	if err := checkStanding(f.ttl, f.wait, name, argv[0]); err != nil {
		return err
	}
	if f.value == "" {
		host, _ := os.Hostname()
		f.value = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	s, closeSession, err := openSession(ctx, f.clientFlags, f.ttl)
	if err != nil {
		return err
	}
	defer closeSession() // also leaves the line, should the campaign end early
	ld, err := campaign(ctx, s, f, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bouncer: leading %s with token %d\n", spec.QuoteName(name), ld.Token())
	status, lost, err := supervised{argv: argv, lost: ld.Done(), what: "the leadership of " + spec.QuoteName(name), grace: f.grace,
		env: []string{"BOUNCER_RESOURCE=" + name, "BOUNCER_MODE=" + spec.PW.String(),
			"BOUNCER_TOKEN=" + strconv.FormatUint(uint64(ld.Token()), 10)}}.run()
	if err != nil {
		return err
	}
	letGo(f.timeout, "resign", ld.Resign)
	if lost {
		// elect's own status: a supervisor restarting candidates tells a
		// lost leadership from the command's own end by it.
		return &exitError{code: exitLeaseLost, err: fmt.Errorf("leadership lost: the lease behind %s may have run out while %s ran, so %s was stopped; it exited with status %d",
			spec.QuoteName(name), argv[0], argv[0], status)}
	}
	return commandExit(argv[0], status)
}

// campaign stands until this session leads, --wait runs out, or a signal
// comes (then the session is closed, leaving the line at once rather than
// when its TTL runs out).
func campaign(ctx context.Context, s *client.Session, f electFlags, name string) (*client.Leadership, error) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan os.Signal, 1)
	go func() {
		select {
		case s := <-sig:
			got <- s
			cancel()
		case <-ctx.Done():
		}
	}()
	var opts []client.LockOption
	if f.wait > 0 {
		opts = append(opts, client.WaitTimeout(f.wait))
	}
	ld, err := s.Campaign(ctx, name, []byte(f.value), opts...)
	cancel()
	switch {
	case err == nil:
		return ld, nil
	case errors.Is(err, client.ErrCancelled):
		code := 128 + int(syscall.SIGINT)
		select {
		case s := <-got: // sent before the cancel it caused
			if n, ok := s.(syscall.Signal); ok {
				code = 128 + int(n)
			}
		default:
		}
		return nil, &exitError{code: code, err: fmt.Errorf("%s: interrupted before leading", spec.QuoteName(name))}
	case errors.Is(err, client.ErrTimeout):
		return nil, &exitError{code: exitNotAcquired, err: fmt.Errorf("%s: not leading after waiting %v", spec.QuoteName(name), f.wait)}
	}
	return nil, lockError(err)
}

// leaderLine is what --observe --json prints for each change, in the
// conventions of every --json output: the time seen, the value as a string
// (base64, with value_base64, only when it is not UTF-8), the token a
// number (0: no leader).
type leaderLine struct {
	Time        string `json:"time"`
	Name        string `json:"name"`
	NameBase64  bool   `json:"name_base64,omitempty"`
	Leader      bool   `json:"leader"`
	Token       uint64 `json:"token"`
	Value       string `json:"value"`
	ValueBase64 bool   `json:"value_base64,omitempty"`
}

func observeElection(ctx context.Context, f electFlags, name string, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	c, err := dial(f.clientFlags)
	if err != nil {
		return err
	}
	defer c.Close()
	// Observe retries a watch that fails on the way for as long as it
	// runs; ask once first, so that credentials or TLS settings the node
	// does not take fail the command at once, saying why.
	askCtx, cancel := context.WithTimeout(ctx, f.timeout)
	_, err = c.API().Describe(askCtx, &pb.DescribeRequest{Resource: []byte(name)})
	cancel()
	if err != nil {
		return nodeError(err)
	}
	err = c.Observe(ctx, name, func(l client.Leader) error {
		switch {
		case f.json:
			line := leaderLine{Time: time.Now().UTC().Format(time.RFC3339Nano), Leader: l.Present, Token: uint64(l.Token)}
			line.Name, line.NameBase64 = jsonText([]byte(name))
			line.Value, line.ValueBase64 = jsonText(l.Value)
			b, err := json.Marshal(line)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(out, string(b))
			return err
		case l.Present:
			_, err := fmt.Fprintf(out, "leader token=%d value=%s\n", l.Token, spec.QuoteName(string(l.Value)))
			return err
		}
		_, err := fmt.Fprintln(out, "no leader")
		return err
	})
	if ctx.Err() != nil {
		return nil
	}
	return lockError(err)
}
