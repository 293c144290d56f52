package spec

import (
	"encoding/hex"
	"fmt"
	"time"
)

// Time is an instant in nanoseconds since an arbitrary epoch (Unix time in
// production, zero at the start of a simulation). The core never reads a
// clock: every input carries its Time.
type Time int64

// Add returns t+d.
func (t Time) Add(d time.Duration) Time { return t + Time(d) }

// Sub returns t-u as a duration.
func (t Time) Sub(u Time) time.Duration { return time.Duration(t - u) }

func (t Time) String() string { return time.Duration(t).String() }

// SessionID names a session. It is a capability: 128 unguessable bits,
// from crypto/rand in production and from the seeded generator in a
// simulation. The zero value is never a valid session.
type SessionID [16]byte

// IsZero reports whether id is the zero (invalid) session id.
func (id SessionID) IsZero() bool { return id == SessionID{} }

func (id SessionID) String() string { return hex.EncodeToString(id[:]) }

// ParseSessionID parses the 32 hex digits printed by String.
func ParseSessionID(s string) (SessionID, error) {
	var id SessionID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("session id %q: want 32 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// RequestID is a client's id for one mutating request, unique within its
// session and greater than zero. A retry reuses the id; the node applies the
// request at most once and answers every retry with the original outcome.
type RequestID uint64

// Token is a fencing token: every grant and every up-conversion returns one
// strictly greater than every token the node returned before, for any
// resource, across crashes and restarts.
type Token uint64

// Op is the kind of an Input.
type Op uint8

const (
	OpOpen      Op = iota + 1 // open a session with a TTL (idempotent by session id)
	OpKeepAlive               // renew a session's lease; changes nothing durable
	OpClose                   // close a session: release its locks, cancel its requests
	OpAcquire                 // request a lock on a resource in a mode
	OpConvert                 // change the mode of a granted lock
	OpRelease                 // give a granted lock up (optionally writing the value block)
	OpCancel                  // cancel a queued acquire or conversion
)

var opNames = [...]string{"", "open", "keepalive", "close", "acquire", "convert", "release", "cancel"}

func (o Op) String() string {
	if int(o) < len(opNames) && o != 0 {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Mutating reports whether inputs of this kind carry a RequestID and have
// their outcome recorded for exactly-once retries.
func (o Op) Mutating() bool { return o >= OpAcquire && o <= OpCancel }

// Input is one request to the lock service. One struct serves every Op (like
// raftpb.Message) so that inputs pass by value without allocation; Validate
// says which fields each Op uses.
type Input struct {
	Op      Op
	Session SessionID
	// Request identifies a mutating request within its session (> 0).
	Request RequestID
	// Acked tells the node the client has the outcome of every request up to
	// and including this id, so their recorded outcomes may be forgotten.
	Acked RequestID

	Resource string
	Mode     Mode
	// NoQueue makes Acquire and Convert a try: WouldBlock instead of waiting.
	NoQueue bool
	// WaitTimeout bounds how long a queued request waits (required unless NoQueue).
	WaitTimeout time.Duration
	// LockDelay (Acquire): if the session expires while holding this lock in a
	// mode other than NL, the resource grants nothing new for this long.
	LockDelay time.Duration
	// TTL (Open): the session's lease; every keepalive extends it to now+TTL.
	TTL time.Duration
	// Label (Open): what the client says it is, for people (host, pid,
	// program): at most LabelBytesMax bytes of UTF-8. It changes nothing.
	Label string

	// Permits and Limit (Acquire) ask for Permits of a counting semaphore
	// of Limit permits (1 <= Permits <= Limit <= PermitsMax, Mode PR):
	// see "semaphore" in doc.go. Both zero: a lock.
	Permits, Limit uint32

	// WriteValue (Release, Convert down from PW/EX) stores Value in the
	// resource's value block and marks it valid.
	WriteValue bool
	Value      []byte
}

// Digest identifies what a mutating request asks for: its operation,
// resource, mode, options and value, but not Request or Acked (a retry may
// acknowledge more). The node records it with the outcome, so that a retry
// can be told from another request that reuses the id. FNV-1a, 64 bits:
// it guards against mistakes, not against an adversary, who could only
// confuse its own session.
func (in *Input) Digest() uint64 {
	flags := uint64(in.Op) | uint64(in.Mode)<<8
	if in.NoQueue {
		flags |= 1 << 16
	}
	if in.WriteValue {
		flags |= 1 << 17
	}
	h := fnvWord(fnvOffset, flags)
	h = fnvWord(h, uint64(in.WaitTimeout))
	h = fnvWord(h, uint64(in.LockDelay))
	h = fnvWord(h, uint64(in.Permits)|uint64(in.Limit)<<32)
	h = fnvWord(h, uint64(len(in.Resource)))
	for i := 0; i < len(in.Resource); i++ {
		h = (h ^ uint64(in.Resource[i])) * fnvPrime
	}
	h = fnvWord(h, uint64(len(in.Value)))
	for _, c := range in.Value {
		h = (h ^ uint64(c)) * fnvPrime
	}
	return h
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnvWord hashes the 8 bytes of v, little-endian, into h (FNV-1a).
func fnvWord(h, v uint64) uint64 {
	for i := 0; i < 8; i++ {
		h = (h ^ (v & 0xff)) * fnvPrime
		v >>= 8
	}
	return h
}

// Result is the outcome of an operation, returned as the reply to an input or
// carried by a Completed event.
type Result struct {
	Code   Code
	Detail string // why, for codes other than OK; names the field and the bound
	// Pending means the request was queued: its outcome arrives later in a
	// Completed event (and is what a retry returns once it has).
	Pending bool
	// For a grant or conversion: the mode now held, its fencing token and the
	// value block with its validity.
	Mode       Mode
	Token      Token
	Value      []byte
	ValueValid bool
}

// EventKind is the kind of an Event.
type EventKind uint8

const (
	// Completed: a queued request (Session, Request, Resource) finished with Result.
	Completed EventKind = iota + 1
	// Blocking: Session holds a lock on Resource that blocks a request for Mode.
	Blocking
	// Expired: Session's lease ran out; its locks are released, its requests cancelled.
	Expired
)

var eventNames = [...]string{"", "completed", "blocking", "expired"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && k != 0 {
		return eventNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is an output that is not the direct reply to an input: it may concern
// another session than the input's, or follow from time alone.
type Event struct {
	Kind     EventKind
	Session  SessionID
	Request  RequestID // Completed
	Resource string    // Completed, Blocking
	Mode     Mode      // Blocking: the mode a waiter wants
	Result   Result    // Completed
}
