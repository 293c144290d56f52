package spec

import (
	"fmt"
	"strings"
	"time"
)

// State is the canonical, comparable snapshot of a lock service's state: the
// model and the engine both produce it, sorted the same way, so that tests
// compare them with Equal or as text.
type State struct {
	Now        Time
	TokenMax   Token // the highest token ever returned (0: none yet)
	Sessions   []SessionState
	Resources  []ResourceState
	Tombstones []Tombstone // ended sessions, oldest first
}

// SessionState is a live session.
type SessionState struct {
	ID       SessionID
	Label    string // the client's, for people
	TTL      time.Duration
	Deadline Time      // the lease runs out at this instant
	Acked    RequestID // outcomes up to here may be forgotten
	Replies  []Reply   // recorded outcomes, by request id
}

// Reply is the recorded outcome of one request (Pending while it waits).
type Reply struct {
	Request RequestID
	Digest  uint64 // Input.Digest of the request: a retry must match it
	Result  Result
}

// ResourceState is a resource in use: it has a lock, a queued request or a
// lock-delay. A resource with none of these does not exist (its value block
// is dropped with it, as in the DLM).
type ResourceState struct {
	Name       string
	Value      []byte
	ValueValid bool
	DelayUntil Time        // lock-delay: nothing new is granted before this (0: none)
	Limit      uint32      // a semaphore's permits; 0: a lock resource
	Granted    []LockState // holders in the order first granted; includes converting locks
	Converting []SessionID // the conversion queue, FIFO; these locks are also in Granted
	Waiting    []LockState // the wait queue of new requests, FIFO
}

// LockState is one session's lock on a resource, granted or waiting.
type LockState struct {
	Session SessionID
	Label   string // its session's label (a copy, for people)
	Mode    Mode   // granted mode; for a waiting lock, the mode it waits for
	Want    Mode   // the mode a queued conversion waits for; else equal to Mode
	// Permits held (or wanted, by a waiter) of a semaphore; 0 on a lock resource.
	Permits uint32
	Token   Token
	// Request is the id of the queued request (wait or conversion); 0 if none.
	Request   RequestID
	Deadline  Time // when the queued request times out
	LockDelay time.Duration
	// Notified is the highest mode a blocking notification was sent to this
	// holder for since its mode last changed; -1 if none.
	Notified int8
	// GrantedAt is the instant of the grant or up-conversion that gave the
	// lock its token (a down-conversion keeps both); 0 for a waiting lock.
	GrantedAt Time
	// QueuedAt is the instant the queued request (wait or conversion) was
	// queued; 0 if none.
	QueuedAt Time
}

// Tombstone remembers an ended session so that a late request learns it
// expired (SessionExpired) or was closed, and a retried Close succeeds.
type Tombstone struct {
	Session SessionID
	Closed  bool // closed by the client; otherwise expired
}

// String renders the state as readable text, one fact per line.
func (s *State) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "now=%v token-max=%d\n", s.Now, s.TokenMax)
	for _, ss := range s.Sessions {
		fmt.Fprintf(&b, "session %s ttl=%v deadline=%v acked=%d", ShortID(ss.ID), ss.TTL, ss.Deadline, ss.Acked)
		if ss.Label != "" {
			fmt.Fprintf(&b, " label=%q", ss.Label)
		}
		b.WriteString("\n")
		for _, r := range ss.Replies {
			fmt.Fprintf(&b, "  reply %d: %s\n", r.Request, r.Result.String())
		}
	}
	for _, r := range s.Resources {
		fmt.Fprintf(&b, "resource %q value=%q valid=%v", r.Name, r.Value, r.ValueValid)
		if r.DelayUntil != 0 {
			fmt.Fprintf(&b, " delay-until=%v", r.DelayUntil)
		}
		if r.Limit != 0 {
			fmt.Fprintf(&b, " limit=%d", r.Limit)
		}
		b.WriteString("\n")
		for _, l := range r.Granted {
			fmt.Fprintf(&b, "  granted %s\n", l.String())
		}
		for _, id := range r.Converting {
			fmt.Fprintf(&b, "  converting %s\n", ShortID(id))
		}
		for _, l := range r.Waiting {
			fmt.Fprintf(&b, "  waiting %s\n", l.String())
		}
	}
	for _, t := range s.Tombstones {
		fmt.Fprintf(&b, "tombstone %s closed=%v\n", ShortID(t.Session), t.Closed)
	}
	return b.String()
}

func (l LockState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v", ShortID(l.Session), l.Mode)
	if l.Want != l.Mode {
		fmt.Fprintf(&b, "->%v", l.Want)
	}
	if l.Permits != 0 {
		fmt.Fprintf(&b, " permits=%d", l.Permits)
	}
	if l.Token != 0 {
		fmt.Fprintf(&b, " token=%d", l.Token)
	}
	if l.GrantedAt != 0 {
		fmt.Fprintf(&b, " granted-at=%v", l.GrantedAt)
	}
	if l.Request != 0 {
		fmt.Fprintf(&b, " request=%d queued-at=%v deadline=%v", l.Request, l.QueuedAt, l.Deadline)
	}
	if l.LockDelay != 0 {
		fmt.Fprintf(&b, " lock-delay=%v", l.LockDelay)
	}
	if l.Notified >= 0 {
		fmt.Fprintf(&b, " notified=%v", Mode(l.Notified))
	}
	return b.String()
}

// String renders a result compactly: "OK PR token=3 value=\"x\"", "Pending",
// or "Timeout (wait_timeout: ...)".
func (r Result) String() string {
	switch {
	case r.Pending:
		return "Pending"
	case r.Code != OK:
		return fmt.Sprintf("%v (%s)", r.Code, r.Detail)
	case r.Token == 0:
		return "OK"
	}
	s := fmt.Sprintf("OK %v token=%d value=%q", r.Mode, r.Token, r.Value)
	if !r.ValueValid {
		s += " invalid"
	}
	return s
}

func (e Event) String() string {
	switch e.Kind {
	case Completed:
		return fmt.Sprintf("completed %s request=%d %q: %s", ShortID(e.Session), e.Request, e.Resource, e.Result.String())
	case Blocking:
		return fmt.Sprintf("blocking %s %q wanted=%v", ShortID(e.Session), e.Resource, e.Mode)
	case Expired:
		return fmt.Sprintf("expired %s", ShortID(e.Session))
	}
	return fmt.Sprintf("event(%d)", e.Kind)
}

// ShortID prints a session id for people: tests and scenarios name sessions
// with ids whose first bytes spell a short name, printed as that name.
func ShortID(id SessionID) string {
	n := 0
	for n < len(id) && id[n] != 0 {
		if id[n] < '!' || id[n] > '~' {
			return id.String()
		}
		n++
	}
	for _, c := range id[n:] {
		if c != 0 {
			return id.String()
		}
	}
	if n == 0 {
		return id.String()
	}
	return string(id[:n])
}

// NamedSession returns the session id that spells name (at most 16
// printable bytes) followed by zeros, for tests and scenarios.
func NamedSession(name string) SessionID {
	var id SessionID
	copy(id[:], name)
	return id
}
