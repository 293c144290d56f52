package server

import (
	"sync"
	"time"
)

// Refusal reasons, as the bouncer_refused_total metric labels them.
const (
	reasonConnections = "connections"
	reasonSessions    = "sessions_per_client"
	reasonRequests    = "requests_per_client"
	reasonStreams     = "streams_per_client"
	reasonQueue       = "queue_full"
)

// refusalLogEvery is how often a kind of refusal is logged at most: an
// abuser gets refused thousands of times a second, and the log must not
// become its amplifier.
const refusalLogEvery = 10 * time.Second

// refusalLog rate-limits the warning for each reason.
type refusalLog struct {
	mu   sync.Mutex
	last map[string]time.Time
	hush map[string]int // refusals not logged since the last line
}

// refused counts a refusal and logs it at most once per refusalLogEvery
// per reason, with how many went unlogged.
func (s *Server) refused(reason, client string) {
	s.metrics.refused.WithLabelValues(reason).Inc()
	l := &s.refusals
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last[reason]) < refusalLogEvery {
		l.hush[reason]++
		l.mu.Unlock()
		return
	}
	hushed := l.hush[reason]
	l.last[reason], l.hush[reason] = now, 0
	l.mu.Unlock()
	s.log.Warn("refused: a per-client or connection bound was reached", "reason", reason,
		"client", client, "unlogged_since_last", hushed)
}
