package server

import (
	"sync"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// readClock carries the core's time past its latest turn for the reads
// that show durations (Describe, List, Watch, WaitGraph). The core's time
// moves only when a turn is taken; on an idle node that can be a
// keepalive interval ago, and a lock held for 5s would read as held for
// 2s. The reads add the real time since the turn that set the core's
// time: the core itself still never reads a clock.
type readClock struct {
	mu   sync.Mutex
	core spec.Time // the core's time at the latest turn seen
	at   time.Time // when that turn was seen (a monotonic reading)
}

// turned records the core's time after a turn (on the loop goroutine).
func (c *readClock) turned(now spec.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now != c.core || c.at.IsZero() {
		c.core, c.at = now, time.Now()
	}
}

// read is the time to show a state read at the core's time now: now plus
// the time since, if now is the latest turn's (an older or newer core
// time is shown as it is).
func (c *readClock) read(now spec.Time) spec.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now != c.core || c.at.IsZero() {
		return now
	}
	return now.Add(time.Since(c.at))
}
