package peers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Failing is a replicated group whose leader can be killed (*Group).
type Failing interface {
	Endpoint() string
	// Leader waits until the group is whole and returns its leader's index.
	Leader(ctx context.Context) (int, error)
	// Kill sends SIGKILL to member i and waits until it has gone.
	Kill(i int) error
	// Restart starts member i again on its data.
	Restart(ctx context.Context, i int) error
	// ElectedSince is when a member first said it became the leader at
	// or after t (false if none did, or the group cannot tell).
	ElectedSince(t time.Time) (time.Time, bool)
}

// FailoverConfig is how the failover of a group is measured.
type FailoverConfig struct {
	Kills   int // leaders killed, one after the other (0: no failover measured)
	Clients int // clients cycling locks meanwhile
	Grants  int // the grants after a kill that ToN waits for
	// Settle: grants that arrive within Settle of the kill are the old
	// leader's answers still on their way (on loopback they arrive at
	// once), not the new leader's, which cannot come before an election
	// timeout (a second or more by default in both systems).
	Settle time.Duration
	// Timeout bounds the wait for the Grants after a kill.
	Timeout time.Duration
}

// DefaultFailover is 5 kills, 64 clients, 1,000 grants.
var DefaultFailover = FailoverConfig{Kills: 5, Clients: 64, Grants: 1000, Settle: 100 * time.Millisecond, Timeout: 30 * time.Second}

// FailoverSample is one kill of a group's leader while clients cycle locks.
type FailoverSample struct {
	Leader   int           // the member killed, 1-based
	Elected  time.Duration // from the kill to a member's saying it leads (its log line); 0 if unknown
	ToFirst  time.Duration // from the kill to the first grant after it (past Settle)
	ToN      time.Duration // from the kill to the Grants-th grant after it
	Residual int           // grants within Settle of the kill (the old leader's answers)
	Errors   int           // clients whose calls failed (a client's calls that fail in a row count once)
	Error    string        // the first such failure's error, if any
	// ErrorKinds counts the failures by the first error's message (the
	// first errKindLen bytes of it).
	ErrorKinds map[string]int
	Rejoin     time.Duration // from the killed member's restart to the group whole again
}

// grantLog times the grants of a failover load.
type grantLog struct {
	mu              sync.Mutex
	total           int
	since, settled  time.Time // record grants at or after since; residual before settled
	residual        int
	after           []time.Time
	errors          int
	firstErr        string
	errorsSinceKill int
	kinds           map[string]int
}

// errKindLen is how much of an error message tells its kind.
const errKindLen = 120

func (l *grantLog) grant(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	switch {
	case l.since.IsZero() || t.Before(l.since):
	case t.Before(l.settled):
		l.residual++
	default:
		l.after = append(l.after, t)
	}
}

func (l *grantLog) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errors++
	if !l.since.IsZero() {
		l.errorsSinceKill++
		if l.firstErr == "" {
			l.firstErr = err.Error()
		}
		msg := err.Error()
		l.kinds[msg[:min(len(msg), errKindLen)]]++
	}
}

// arm starts recording the grants after a kill at t.
func (l *grantLog) arm(t time.Time, settle time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.since, l.settled = t, t.Add(settle)
	l.residual, l.after, l.errorsSinceKill, l.firstErr, l.kinds = 0, nil, 0, "", map[string]int{}
}

func (l *grantLog) counts() (total, after int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, len(l.after)
}

// disarm stops recording and returns what was recorded since arm.
func (l *grantLog) disarm() (after []time.Time, residual, errs int, firstErr string, kinds map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	after, residual, errs, firstErr, kinds = l.after, l.residual, l.errorsSinceKill, l.firstErr, l.kinds
	l.since, l.after = time.Time{}, nil
	slices.SortFunc(after, time.Time.Compare)
	return after, residual, errs, firstErr, kinds
}

// churn is a failover load: clients that cycle locks, each on a resource of
// its own, and that try again after a failed call (on a resource new to
// them, so that a lock whose grant was lost cannot block them), as an
// application would: see failoverRetryPause.
type churn struct {
	ctx     context.Context
	dial    Dialer
	addr    string
	tag     string
	log     grantLog
	workers sync.WaitGroup
	closing sync.WaitGroup // clients given up, closing in the background
	running atomic.Int32
}

// failoverOpTimeout bounds one call of the failover load; a call that
// takes longer counts as failed.
const failoverOpTimeout = 15 * time.Second

// A client of the failover load whose call fails tries again every
// failoverRetryPause, on a resource new to it, with the same client and
// session; if its calls still fail after failoverRedialAfter it opens a
// new client and session.
var (
	failoverRetryPause  = 50 * time.Millisecond
	failoverRedialAfter = 5 * time.Second
)

func (ch *churn) run(i int, c Client) {
	defer ch.workers.Done()
	defer func() {
		if c != nil {
			ch.closeInBackground(c)
		}
	}()
	var failing time.Time // since when the calls fail, if they do
	for gen := 0; ch.ctx.Err() == nil; {
		ctx, cancel := context.WithTimeout(ch.ctx, failoverOpTimeout)
		h, err := c.Lock(ctx, fmt.Sprintf("%s-f%d-%d", ch.tag, i, gen), Exclusive)
		if err == nil {
			ch.log.grant(time.Now())
			err = h.Unlock(ctx)
		}
		cancel()
		switch {
		case ch.ctx.Err() != nil:
		case err == nil:
			failing = time.Time{}
		case failing.IsZero(): // the first failure since a success
			failing = time.Now()
			ch.log.failed(err)
			fallthrough
		case time.Since(failing) < failoverRedialAfter: // try again on the same client
			gen++
			select {
			case <-time.After(failoverRetryPause):
			case <-ch.ctx.Done():
			}
		default:
			ch.closeInBackground(c)
			gen++
			if c = ch.redial(); c == nil {
				return
			}
			failing = time.Time{}
		}
	}
}

func (ch *churn) closeInBackground(c Client) {
	ch.closing.Go(func() { _ = c.Close() })
}

// redial opens a new client, trying again every 50ms until it can (nil if
// the load ends first).
func (ch *churn) redial() Client {
	for ch.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(ch.ctx, 5*time.Second)
		c, err := ch.dial(ctx, ch.addr)
		cancel()
		if err == nil {
			return c
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ch.ctx.Done():
		}
	}
	return nil
}

// waitFor waits until cond holds (polled every 5ms) or until timeout.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// RunFailover starts cfg.Clients clients cycling locks on the group g, and
// cfg.Kills times: waits until the group is whole and the clients are
// granted locks, kills the leader with SIGKILL, times the grants that
// follow, restarts the killed member and waits until the group is whole
// again. It returns a sample per kill that could be measured, and the
// errors of those that could not.
func RunFailover(ctx context.Context, g Failing, dial Dialer, cfg FailoverConfig, tag string, logf func(string, ...any)) ([]FailoverSample, []error) {
	clients, err := dialClients(ctx, dial, g.Endpoint(), cfg.Clients)
	if err != nil {
		return nil, []error{fmt.Errorf("failover: %w", err)}
	}
	lctx, stop := context.WithCancel(ctx)
	ch := &churn{ctx: lctx, dial: dial, addr: g.Endpoint(), tag: tag}
	for i, c := range clients {
		ch.workers.Add(1)
		go ch.run(i, c)
	}
	defer func() {
		stop()
		ch.workers.Wait()
		ch.closing.Wait()
	}()
	var samples []FailoverSample
	var errs []error
	for k := range cfg.Kills {
		lead, err := g.Leader(ctx)
		if err != nil {
			return samples, append(errs, fmt.Errorf("kill %d: %w", k+1, err))
		}
		// The clients cycle: some grants since the group was whole.
		total, _ := ch.log.counts()
		if !waitFor(ctx, cfg.Timeout, func() bool { n, _ := ch.log.counts(); return n >= total+200 }) {
			return samples, append(errs, fmt.Errorf("kill %d: the clients were not granted 200 locks within %v before it", k+1, cfg.Timeout))
		}
		kill := time.Now()
		ch.log.arm(kill, cfg.Settle)
		if err := g.Kill(lead); err != nil {
			return samples, append(errs, fmt.Errorf("kill %d: %w", k+1, err))
		}
		done := waitFor(ctx, cfg.Timeout, func() bool { _, n := ch.log.counts(); return n >= cfg.Grants })
		after, residual, nerr, firstErr, kinds := ch.log.disarm()
		s := FailoverSample{Leader: lead + 1, Residual: residual, Errors: nerr, Error: firstErr, ErrorKinds: kinds}
		if len(after) > 0 {
			s.ToFirst = after[0].Sub(kill)
		}
		if at, ok := g.ElectedSince(kill); ok {
			s.Elected = at.Sub(kill)
		}
		if done && len(after) >= cfg.Grants {
			s.ToN = after[cfg.Grants-1].Sub(kill)
		}
		restarted := time.Now()
		if err := g.Restart(ctx, lead); err != nil {
			return samples, append(errs, fmt.Errorf("kill %d: restart member %d: %w", k+1, lead+1, err))
		}
		if _, err := g.Leader(ctx); err != nil {
			return samples, append(errs, fmt.Errorf("kill %d: after member %d restarted: %w", k+1, lead+1, err))
		}
		s.Rejoin = time.Since(restarted)
		if !done || len(after) == 0 {
			errs = append(errs, fmt.Errorf("kill %d (member %d): %d grants within %v of the kill, wanted %d (%d failed calls: %s)",
				k+1, lead+1, len(after), cfg.Timeout, cfg.Grants, nerr, firstErr))
			continue
		}
		samples = append(samples, s)
		if logf != nil {
			logf("kill %d/%d at %s: member %d: new leader after %v, first grant after %v, %d after %v; %d residual grants, %d clients saw calls fail; rejoined in %v",
				k+1, cfg.Kills, kill.UTC().Format("15:04:05.000"), s.Leader, s.Elected.Round(time.Millisecond), s.ToFirst.Round(time.Millisecond), cfg.Grants, s.ToN.Round(time.Millisecond),
				s.Residual, s.Errors, s.Rejoin.Round(time.Millisecond))
		}
	}
	return samples, errs
}

// FailoverRow is the medians of a system's kills.
type FailoverRow struct {
	ToFirst, ToN, Rejoin     time.Duration
	MinFirst, MaxFirst       time.Duration
	Elected                  time.Duration // median of the kills that know it; 0 if none
	AfterElection            time.Duration // median of ToFirst - Elected, likewise
	Kills, Errors, Residuals int
	ErrorKinds               map[string]int // summed over the kills
}

// failoverMedian is the row of ss (false if ss is empty).
func failoverMedian(ss []FailoverSample) (FailoverRow, bool) {
	if len(ss) == 0 {
		return FailoverRow{}, false
	}
	r := FailoverRow{Kills: len(ss), MinFirst: ss[0].ToFirst, MaxFirst: ss[0].ToFirst, ErrorKinds: map[string]int{}}
	var first, toN, rejoin, elected, afterElection []time.Duration
	for _, s := range ss {
		first, toN, rejoin = append(first, s.ToFirst), append(toN, s.ToN), append(rejoin, s.Rejoin)
		if s.Elected > 0 {
			elected, afterElection = append(elected, s.Elected), append(afterElection, s.ToFirst-s.Elected)
		}
		for k, n := range s.ErrorKinds {
			r.ErrorKinds[k] += n
		}
		r.MinFirst, r.MaxFirst = min(r.MinFirst, s.ToFirst), max(r.MaxFirst, s.ToFirst)
		r.Errors += s.Errors
		r.Residuals += s.Residual
	}
	r.ToFirst, r.ToN, r.Rejoin = medianDuration(first), medianDuration(toN), medianDuration(rejoin)
	r.Elected, r.AfterElection = medianDuration(elected), medianDuration(afterElection)
	return r, true
}

// medianDuration is the median of v (0 if v is empty); it sorts v.
func medianDuration(v []time.Duration) time.Duration {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
