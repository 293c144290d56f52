package spec

import "fmt"

// Code is the outcome of a lock-protocol operation. The values are stable:
// they are the same in the Go model, the engine, the TLA+ model, the wire
// protocol and the CLI's exit status, so never renumber them; add new codes
// at the end.
type Code uint8

const (
	OK              Code = iota // the operation took effect
	WouldBlock                  // NoQueue request that would have had to wait
	Timeout                     // a queued request's wait timeout ran out
	Deadlock                    // granting or queueing would close a wait-for cycle
	Cancelled                   // a queued request was cancelled (Cancel, Release or Close)
	NotHeld                     // the session holds no such lock (or request)
	AlreadyHeld                 // the session already holds or waits on the resource
	SessionExpired              // the session's lease ran out
	UnknownSession              // no such session (never opened, closed, or forgotten)
	InvalidArgument             // the input is malformed; nothing changed
	LimitExceeded               // a named limit would be exceeded; nothing changed
	Unavailable                 // the node could not persist; nothing was acknowledged
	// PermissionDenied: the node's access rules do not let the caller's
	// identity do this (on this resource); nothing changed. The model and
	// the engine never return it: the server refuses before the core.
	PermissionDenied

	codeCount
)

var codeNames = [codeCount]string{
	"OK", "WouldBlock", "Timeout", "Deadlock", "Cancelled", "NotHeld",
	"AlreadyHeld", "SessionExpired", "UnknownSession", "InvalidArgument",
	"LimitExceeded", "Unavailable", "PermissionDenied",
}

// Valid reports whether c is a known code.
func (c Code) Valid() bool { return c < codeCount }

func (c Code) String() string {
	if !c.Valid() {
		return fmt.Sprintf("Code(%d)", uint8(c))
	}
	return codeNames[c]
}

// ParseCode returns the code with the given name (as printed by String).
func ParseCode(s string) (Code, bool) {
	for c, name := range codeNames {
		if name == s {
			return Code(c), true
		}
	}
	return 0, false
}

// Error is a lock-protocol outcome other than OK as a Go error, for the edges
// (client library, CLI) that prefer errors. The core and the model never
// return it: they return a Result whose Code says what happened.
type Error struct {
	Code   Code
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Detail
}

// Is lets errors.Is match on the code alone: errors.Is(err, &Error{Code: Timeout}).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}
