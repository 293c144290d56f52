package engine

import (
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// Clock is where the loop gets the time; the loop is the only part of the
// engine that has one. Production uses a MonotonicClock; tests drive a fake.
type Clock interface {
	Now() spec.Time
	// After returns a channel that receives once d has passed, and a
	// function that stops it.
	After(d time.Duration) (<-chan time.Time, func() bool)
}

// MonotonicClock times the node's leases, wait timeouts and lock-delays.
// It reads the process's monotonic clock, never the wall clock: an NTP step
// or a VM resume that moves the wall clock by an hour would otherwise
// expire every session at once (or none for an hour), while clients,
// which count their leases on monotonic clocks, still believe in theirs.
// Its epoch is the node's own: it starts from the clock the store
// recovered (the clock of the last batch written, which each batch
// persists), so the node's time never goes back across restarts either.
type MonotonicClock struct {
	base    spec.Time
	elapsed func() time.Duration // monotonic time since the clock started
}

// NewMonotonicClock returns a clock that reads base now and then moves with
// the process's monotonic clock.
func NewMonotonicClock(base spec.Time) *MonotonicClock {
	start := time.Now() // carries a monotonic reading; time.Since uses it
	return &MonotonicClock{base: base, elapsed: func() time.Duration { return time.Since(start) }}
}

// Now returns the node's time.
func (c *MonotonicClock) Now() spec.Time { return c.base.Add(c.elapsed()) }

// After starts a real timer (Go's timers run on the monotonic clock).
func (c *MonotonicClock) After(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}
