// Package spectest generates random workloads for the lock service with
// rapid, for tests that compare implementations with the spec model or check
// invariants. It is imported only by tests.
package spectest

import (
	"fmt"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
	"pgregory.net/rapid"
)

// SmallLimits are limits small enough that random workloads hit every bound.
func SmallLimits() spec.Limits {
	return spec.Limits{
		NameBytesMax:          8,
		ValueBytesMax:         4,
		SessionsMax:           4,
		ResourcesMax:          3,
		LocksPerSessionMax:    3,
		WaitersPerResourceMax: 2,
		RepliesPerSessionMax:  5,
		TombstonesMax:         3,
		TTLMin:                time.Second,
		TTLMax:                8 * time.Second,
		WaitTimeoutMin:        time.Millisecond,
		WaitTimeoutMax:        6 * time.Second,
		LockDelayMax:          3 * time.Second,
		InputsPerBatchMax:     8,
	}
}

// Gen draws inputs over a few sessions and resources (more of each than
// SmallLimits allows at once), keeps the clock and each session's request
// ids, and remembers past requests so it can retry them. Feed every outcome
// back with Observe: it tells the generator which sessions are open and
// what each client may acknowledge.
type Gen struct {
	Now       spec.Time
	Sessions  []spec.SessionID // every session named so far
	Resources []string

	next    map[spec.SessionID]spec.RequestID
	past    map[spec.SessionID][]spec.Input
	seen    map[spec.SessionID]map[spec.RequestID]bool
	ackable map[spec.SessionID]spec.RequestID
	open    map[spec.SessionID]bool
	locks   map[spec.SessionID]map[string]bool // held or queued, as far as the client knows
}

// sessionNamesMax bounds how many session names one run uses.
const sessionNamesMax = 12

// NewGen returns a generator with resources a, b, c, d.
func NewGen() *Gen {
	return &Gen{Resources: []string{"a", "b", "c", "d"},
		next: map[spec.SessionID]spec.RequestID{}, past: map[spec.SessionID][]spec.Input{},
		seen: map[spec.SessionID]map[spec.RequestID]bool{}, ackable: map[spec.SessionID]spec.RequestID{},
		open: map[spec.SessionID]bool{}, locks: map[spec.SessionID]map[string]bool{}}
}

// percent draws a number in [0, 100). Rapid favours small numbers, so
// callers test rare branches against the top of the range.
func percent(t *rapid.T, label string) int { return rapid.IntRange(0, 99).Draw(t, label) }

// Advance draws a step of the clock: mostly none or small, sometimes past a
// wait timeout or a TTL.
func (g *Gen) Advance(t *rapid.T) spec.Time {
	var d time.Duration
	switch p := percent(t, "advance"); {
	case p < 60:
	case p < 85:
		d = time.Millisecond
	case p < 95:
		d = 100 * time.Millisecond
	case p < 97:
		d = time.Second
	case p < 99:
		d = 3 * time.Second
	default:
		d = 9 * time.Second
	}
	g.Now = g.Now.Add(d)
	return g.Now
}

// Input draws one input of a random kind.
func (g *Gen) Input(t *rapid.T) spec.Input {
	var op spec.Op
	switch p := percent(t, "op"); {
	case p < 30:
		op = spec.OpAcquire
	case p < 45:
		op = spec.OpRelease
	case p < 58:
		op = spec.OpConvert
	case p < 72:
		op = spec.OpKeepAlive
	case p < 80:
		op = spec.OpOpen
	case p < 92:
		op = spec.OpCancel
	default:
		op = spec.OpClose
	}
	if g.openCount() < 2 && op != spec.OpOpen && percent(t, "reopen?") < 70 {
		op = spec.OpOpen
	}
	return g.InputOf(t, op)
}

func (g *Gen) openCount() int {
	n := 0
	for _, s := range g.Sessions {
		if g.open[s] {
			n++
		}
	}
	return n
}

// InputOf draws an input of the given kind.
func (g *Gen) InputOf(t *rapid.T, op spec.Op) spec.Input {
	s := g.session(t, op == spec.OpOpen)
	in := spec.Input{Op: op, Session: s}
	switch op {
	case spec.OpOpen:
		in.TTL = rapid.SampledFrom([]time.Duration{time.Second, 5 * time.Second, 8 * time.Second}).Draw(t, "ttl")
		in.Label = rapid.SampledFrom([]string{"", "host/1/prog", "é"}).Draw(t, "label")
		return in
	case spec.OpKeepAlive, spec.OpClose:
		return in
	}
	g.next[s]++
	in.Request = g.next[s]
	if percent(t, "ack") < 80 {
		in.Acked = g.ackable[s]
	}
	in.Resource = g.resource(t, s, op)
	switch op {
	case spec.OpAcquire, spec.OpConvert:
		in.Mode = spec.Mode(rapid.IntRange(0, spec.ModeCount-1).Draw(t, "mode"))
		if op == spec.OpAcquire && percent(t, "shared?") < 40 {
			in.Mode = rapid.SampledFrom([]spec.Mode{spec.PR, spec.CR}).Draw(t, "shared")
		}
		if op == spec.OpConvert && percent(t, "up?") < 60 {
			in.Mode = rapid.SampledFrom([]spec.Mode{spec.EX, spec.PW, spec.PR, spec.CW}).Draw(t, "up")
		}
		if percent(t, "try") >= 75 {
			in.NoQueue = true
		} else {
			in.WaitTimeout = rapid.SampledFrom([]time.Duration{6 * time.Second, time.Second, time.Millisecond}).Draw(t, "wait")
		}
	}
	// Permits of a semaphore: mostly on the second resource with limit 3,
	// so holders meet there; sometimes another limit or any resource, for
	// the refusals of a mismatch.
	if op == spec.OpAcquire && (in.Resource == g.Resources[1] && percent(t, "sem?") < 70 || percent(t, "sem anywhere?") >= 95) {
		in.Mode, in.Limit = spec.PR, 3
		if percent(t, "limit?") >= 90 {
			in.Limit = uint32(rapid.IntRange(1, 4).Draw(t, "limit"))
		}
		in.Permits = uint32(rapid.IntRange(1, int(in.Limit)).Draw(t, "permits"))
	}
	if op == spec.OpAcquire && percent(t, "delay?") >= 70 {
		in.LockDelay = rapid.SampledFrom([]time.Duration{time.Second, 3 * time.Second}).Draw(t, "lockdelay")
	}
	if (op == spec.OpRelease || op == spec.OpConvert) && percent(t, "write?") >= 50 {
		in.WriteValue = true
		in.Value = []byte(rapid.SampledFrom([]string{"v1", "v2", "", "toolong"}).Draw(t, "value"))
	}
	if percent(t, "spoil?") >= 97 {
		g.spoil(t, &in)
	}
	g.past[s] = append(g.past[s], in)
	return in
}

// resource draws a resource; to release, convert or cancel, mostly one the
// session was seen to hold or wait for.
func (g *Gen) resource(t *rapid.T, s spec.SessionID, op spec.Op) string {
	if op != spec.OpAcquire && len(g.locks[s]) > 0 && percent(t, "mine?") < 80 {
		var mine []string
		for _, r := range g.Resources {
			if g.locks[s][r] {
				mine = append(mine, r)
			}
		}
		return rapid.SampledFrom(mine).Draw(t, "resource")
	}
	// Skewed, so that several sessions meet on one resource.
	switch p := percent(t, "resource"); {
	case p < 50:
		return g.Resources[0]
	case p < 75:
		return g.Resources[1]
	case p < 90:
		return g.Resources[2]
	}
	return g.Resources[3]
}

// session draws a session: for an open, often a new name; otherwise mostly
// one the generator believes is open.
func (g *Gen) session(t *rapid.T, opening bool) spec.SessionID {
	var open []spec.SessionID
	for _, s := range g.Sessions {
		if g.open[s] {
			open = append(open, s)
		}
	}
	fresh := len(g.Sessions) < sessionNamesMax && (len(g.Sessions) == 0 || opening && percent(t, "fresh?") < 60)
	switch {
	case fresh:
		s := spec.NamedSession(fmt.Sprintf("s%d", len(g.Sessions)+1))
		g.Sessions = append(g.Sessions, s)
		return s
	case len(open) > 0 && !opening && percent(t, "open?") < 90:
		return rapid.SampledFrom(open).Draw(t, "session")
	}
	return rapid.SampledFrom(g.Sessions).Draw(t, "session")
}

// spoil makes one field of a request bad.
func (g *Gen) spoil(t *rapid.T, in *spec.Input) {
	switch rapid.IntRange(0, 4).Draw(t, "spoil") {
	case 0:
		in.Resource = ""
	case 1:
		in.Resource = "much-too-long"
	case 2:
		in.Mode = spec.ModeCount
	case 3:
		in.NoQueue, in.WaitTimeout = false, time.Hour
	case 4:
		in.Acked = in.Request
	}
}

// Retry draws an earlier mutating input to send again, if there is one.
func (g *Gen) Retry(t *rapid.T) (spec.Input, bool) {
	s := g.session(t, false)
	if len(g.past[s]) == 0 {
		return spec.Input{}, false
	}
	return rapid.SampledFrom(g.past[s]).Draw(t, "retry"), true
}

// Observe records what a client learns from a reply and events.
func (g *Gen) Observe(in spec.Input, r spec.Result, events []spec.Event) {
	if in.Op.Mutating() && !r.Pending {
		g.saw(in.Session, in.Request)
	}
	switch {
	case in.Op == spec.OpOpen && r.Code == spec.OK:
		g.open[in.Session] = true
	case in.Op == spec.OpClose, r.Code == spec.SessionExpired, r.Code == spec.UnknownSession:
		g.open[in.Session] = false
		delete(g.locks, in.Session)
	case in.Op == spec.OpAcquire && r.Code == spec.OK:
		g.lock(in.Session, in.Resource, true)
	case in.Op == spec.OpRelease && r.Code == spec.OK:
		g.lock(in.Session, in.Resource, false)
	}
	g.ObserveEvents(events)
}

// ObserveEvents records what clients learn from events alone.
func (g *Gen) ObserveEvents(events []spec.Event) {
	for _, e := range events {
		switch e.Kind {
		case spec.Completed:
			g.saw(e.Session, e.Request)
			if e.Result.Code != spec.OK && e.Result.Code != spec.Deadlock && e.Result.Token == 0 {
				g.lock(e.Session, e.Resource, false)
			}
		case spec.Expired:
			g.open[e.Session] = false
			delete(g.locks, e.Session)
		}
	}
}

func (g *Gen) lock(s spec.SessionID, resource string, on bool) {
	if g.locks[s] == nil {
		g.locks[s] = map[string]bool{}
	}
	if on {
		g.locks[s][resource] = true
	} else {
		delete(g.locks[s], resource)
	}
}

func (g *Gen) saw(s spec.SessionID, id spec.RequestID) {
	if g.seen[s] == nil {
		g.seen[s] = map[spec.RequestID]bool{}
	}
	g.seen[s][id] = true
	for g.seen[s][g.ackable[s]+1] {
		g.ackable[s]++
	}
}
