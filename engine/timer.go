package engine

import (
	"bytes"
	"strings"

	"github.com/bouncer-dlm/bouncer/spec"
)

// A timer is something that happens at an instant: a session's lease runs
// out, a queued request times out, a resource's lock-delay ends. Timers live
// in one binary heap ordered exactly as the model orders them (instant, then
// kind, then resource name, then session id), so that timers due together
// fire in the model's order: O(log n) to set, move or stop one.
type timer struct {
	at       spec.Time
	kind     timerKind
	resource string
	session  spec.SessionID
	index    int // position in the heap; -1 when stopped

	// What the timer belongs to: one of these is set.
	sess *session
	lock *lock
	res  *resource
}

type timerKind uint8

const (
	timerExpiry timerKind = iota
	timerTimeout
	timerDelayEnd
)

func (a *timer) less(b *timer) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	if c := strings.Compare(a.resource, b.resource); c != 0 {
		return c < 0
	}
	return bytes.Compare(a.session[:], b.session[:]) < 0
}

type timerHeap []*timer

// set starts t at instant at, or moves it there if it is running.
func (h *timerHeap) set(t *timer, at spec.Time) {
	t.at = at
	if t.index >= 0 {
		h.fix(t.index)
		return
	}
	t.index = len(*h)
	*h = append(*h, t)
	h.up(t.index)
}

// stop removes t if it is running.
func (h *timerHeap) stop(t *timer) {
	i := t.index
	if i < 0 {
		return
	}
	last := len(*h) - 1
	if i != last {
		h.swap(i, last)
	}
	(*h)[last] = nil
	*h = (*h)[:last]
	t.index = -1
	if i != last {
		h.fix(i)
	}
}

// first returns the earliest timer, or nil.
func (h timerHeap) first() *timer {
	if len(h) == 0 {
		return nil
	}
	return h[0]
}

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h timerHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].less(h[p]) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h timerHeap) down(i int) bool {
	start := i
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h[r].less(h[l]) {
			m = r
		}
		if !h[m].less(h[i]) {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > start
}
