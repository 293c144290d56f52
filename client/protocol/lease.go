package protocol

import (
	"errors"
	"fmt"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// Config configures a Session. Zero values take the defaults below; a
// negative DriftPPM or Margin means none (only tests with perfect clocks
// should).
type Config struct {
	// TTL is the session's lease on the node (spec limits apply).
	TTL time.Duration
	// KeepAliveInterval is how often a keepalive is sent. Default TTL/4.
	KeepAliveInterval time.Duration
	// RetryInterval is how long a call waits for its answer before it is
	// sent again (same request id). Default min(TTL/8, 500ms).
	RetryInterval time.Duration
	// PollInterval is how often the outcome of a queued request is asked
	// again, in case its Completed event was lost. Default 4*RetryInterval.
	PollInterval time.Duration
	// DriftPPM bounds how far the local clock's rate may differ from the
	// node's, in parts per million. The lease is shrunk to cover it.
	DriftPPM int64
	// Margin is subtracted from the lease on top of the drift allowance.
	// Default TTL/50.
	Margin time.Duration
	// AtRisk: a held lock is reported AtRisk once the lease has less than
	// this left. Default TTL/3.
	AtRisk time.Duration
	// Limits are the node's limits: a request that breaks one (a name or a
	// value over its bound, say) is refused before it is sent, as the node
	// would refuse it. Default spec.DefaultLimits().
	Limits spec.Limits
}

// DefaultDriftPPM is the default clock-rate bound: 0.1%.
const DefaultDriftPPM = 1000

// driftPPMMax bounds DriftPPM: beyond 10% a lease means little.
const driftPPMMax = 100_000

// withDefaults returns c with zero fields set to their defaults, or an error
// naming the first bad field.
func (c Config) withDefaults() (Config, error) {
	if c.TTL <= 0 {
		return c, errors.New("client: config: TTL must be positive")
	}
	if c.KeepAliveInterval == 0 {
		c.KeepAliveInterval = c.TTL / 4
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = min(c.TTL/8, 500*time.Millisecond)
	}
	if c.PollInterval == 0 {
		c.PollInterval = 4 * c.RetryInterval
	}
	switch {
	case c.DriftPPM == 0:
		c.DriftPPM = DefaultDriftPPM
	case c.DriftPPM < 0:
		c.DriftPPM = 0
	}
	switch {
	case c.Margin == 0:
		c.Margin = c.TTL / 50
	case c.Margin < 0:
		c.Margin = 0
	}
	if c.AtRisk == 0 {
		c.AtRisk = c.TTL / 3
	}
	if c.Limits == (spec.Limits{}) {
		c.Limits = spec.DefaultLimits()
	}
	if err := c.Limits.Validate(); err != nil {
		return c, fmt.Errorf("client: config: %w", err)
	}
	switch {
	case c.KeepAliveInterval <= 0 || c.RetryInterval <= 0 || c.PollInterval <= 0 || c.AtRisk < 0:
		return c, errors.New("client: config: intervals must be positive and AtRisk not negative")
	case c.DriftPPM > driftPPMMax:
		return c, fmt.Errorf("client: config: DriftPPM %d exceeds %d", c.DriftPPM, driftPPMMax)
	case LeaseFor(c.TTL, c.DriftPPM, c.Margin) <= c.KeepAliveInterval:
		return c, fmt.Errorf("client: config: the lease %v (TTL %v less drift and margin) must exceed KeepAliveInterval %v",
			LeaseFor(c.TTL, c.DriftPPM, c.Margin), c.TTL, c.KeepAliveInterval)
	}
	return c, nil
}

// LeaseFor is how long, by a local clock, a lease of ttl may be counted from
// the send time of an answered keepalive: ttl*(1-r)/(1+r) - margin for the
// rate bound r = driftPPM/10^6.
//
// Why: the node set the session's deadline to (its time of receipt) + ttl,
// and it received the keepalive after it was sent. A local clock running
// fast by r measures ttl(1-r)/(1+r) local as at most ttl/(1+r) true; a node
// clock running fast by r lets ttl of its time pass in no less than
// ttl/(1+r) true. So the local deadline comes no later than the node's.
func LeaseFor(ttl time.Duration, driftPPM int64, margin time.Duration) time.Duration {
	const million = 1_000_000
	// ttl (< 2^63 ns) times a factor below 1: split to avoid overflow.
	num, den := million-driftPPM, million+driftPPM
	whole := ttl / time.Duration(den)
	rest := ttl % time.Duration(den)
	d := whole*time.Duration(num) + rest*time.Duration(num)/time.Duration(den)
	return d - margin
}

// Belief is what the client believes of one lock.
type Belief uint8

const (
	// None: no lock and no request on the resource.
	None Belief = iota
	// Waiting: an acquire is in flight or queued; nothing is held yet.
	Waiting
	// Held: granted, and the lease is comfortably valid.
	Held
	// AtRisk: granted, but the lease has less than Config.AtRisk left or the
	// connection is down. Still held until the lease runs out.
	AtRisk
	// Lost: the session's lease ran out or the node said it expired; the
	// lock may be granted to someone else.
	Lost
)

var beliefNames = [...]string{"none", "waiting", "held", "at-risk", "lost"}

func (s Belief) String() string {
	if int(s) < len(beliefNames) {
		return beliefNames[s]
	}
	return fmt.Sprintf("Belief(%d)", uint8(s))
}

// Believed reports whether a lock in this state counts as held: the
// application may act on it (with its fencing token).
func (s Belief) Believed() bool { return s == Held || s == AtRisk }

// Status is the state of a session.
type Status uint8

const (
	// StatusOpening: the open has not been answered yet.
	StatusOpening Status = iota
	// StatusOpen: the session is live (its lease has not run out).
	StatusOpen
	// StatusLost: the lease ran out or the node ended the session; terminal.
	StatusLost
	// StatusClosed: the node answered the close; terminal.
	StatusClosed
)

var statusNames = [...]string{"opening", "open", "lost", "closed"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// LeaseDeadline returns the local instant at which the lease runs out, if
// the session was opened and is not lost or closed.
func (s *Session) LeaseDeadline() (spec.Time, bool) {
	if s.status != StatusOpen {
		return 0, false
	}
	return s.base.Add(s.lease), true
}

// LeaseBase returns the local send time from which the lease is counted:
// that of the first open attempt, or of the latest answered keepalive.
func (s *Session) LeaseBase() (spec.Time, bool) {
	return s.base, s.status == StatusOpen || s.status == StatusLost && s.opened
}

// expireIfDue makes the session lost if its lease ran out by now.
func (s *Session) expireIfDue(now spec.Time) {
	if d, ok := s.LeaseDeadline(); ok && now >= d {
		s.lose(now, false, spec.Refuse(spec.SessionExpired, DetailLeaseRanOut))
	}
}

// lockState is the state of l at now.
func (s *Session) lockState(now spec.Time, l *lock) Belief {
	switch {
	case s.status == StatusLost:
		return Lost
	case l.held && !s.closing:
		d, ok := s.LeaseDeadline()
		switch {
		case !ok || now >= d:
			return Lost
		case !s.connected || now >= d.Add(-s.cfg.AtRisk):
			return AtRisk
		}
		return Held
	case l.acquire != 0:
		return Waiting
	}
	return None
}

// DetailLeaseRanOut is the detail of the loss the client declares itself.
const DetailLeaseRanOut = "client: the lease ran out before a keepalive was answered"

// DetailUnknownOutcome is the detail of a request whose outcome was never
// learned.
const DetailUnknownOutcome = "client: the session ended before the outcome was known"
