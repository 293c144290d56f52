// Package client is Bouncer's Go client library.
//
// Connect prepares a connection to a lock node, or to a replicated group
// (Config.Addrs, or a comma-separated Config.Addr); NewSession opens a session
// (a lease the library keeps alive); Session.Lock and Session.TryLock take
// a lock in any of the six modes and return a *Lock with its fencing token
// (Token) and value block (Value); Lock.Convert changes its mode and
// Lock.Unlock releases it, optionally writing the value block.
//
// # Leases and fencing
//
// A lock is only as good as the session's lease. The library counts the
// lease conservatively, from the time the last answered keepalive was sent
// (not when its answer came back), shrunk for clock drift, so that it
// gives a lock up before the node can grant it to anyone else. Session.Done
// (and Lock.Done) closes the moment the lease may be lost; from then on,
// stop using what the lock protects. A process can still be paused between
// checking Done and writing, so pass Lock.Token to the protected resource
// and have it refuse writes with a lower token than it has seen (see the
// example).
//
// # Retries and reconnects
//
// gRPC reconnects by itself. Every mutating request carries a request id;
// a request whose answer is lost (a broken connection, a restarting node)
// is sent again with the same id, and the node applies it at most once and
// answers every retry with the first outcome. A request still unanswered
// when the lease runs out ends with ErrLeaseLost: it may or may not have
// taken effect, and the lock must be treated as lost.
//
// NewSession itself makes the open, once per attempt: the node issues the
// id, so an open is not retried with the same id, and an attempt whose
// answer was lost leaves a session on the node that expires after its TTL.
// The lease is counted with the TTL the node answered.
//
// # Groups and leaders
//
// Given a group's members, the client talks to one at a time (Member says
// which), chosen by a protocol.Members. Only the leader serves: a member
// that is not refuses every call and stream (wire.NotLeaderError) naming
// the leader it knows, and the client moves there, or to the next member
// if none is named (after a retry interval, so that an election does not
// make it spin). A member that leaves a request unanswered for three retry
// intervals (min(TTL/8, 500ms) each), or cannot be reached that long, is
// left for the next. A move ends every call and stream on the member left
// and is a reconnect for the sessions: they resend everything unanswered
// with the same request ids, which the new leader answers from the group's
// replicated record, and each lease is still counted from send time, so a
// session lives through a failover as long as some leader answers a
// keepalive within its TTL; Done and the locks' beliefs (AtRisk, Lost)
// tell of a lease at risk or lost as with one node. The stub of API goes
// to the current member too, and makes a unary call again on the next
// member when it is refused or left unanswered. A leader named that is not
// in the list (a member added since) is learned, up to
// protocol.MembersMax members. The client keeps one gRPC connection per
// member it has used.
//
// All of this protocol logic lives in package client/protocol, a sans-I/O state
// machine that the deterministic simulator (package sim) drives through
// network, clock and crash faults; this package runs the same code on one
// goroutine per session and carries its messages over gRPC.
//
// # Leader election
//
// Session.Campaign waits its turn (FIFO) for an election's resource in EX,
// then converts down to PW writing its value into the value block: the
// grant's token is the leadership's epoch, and Leadership.Done is the
// session's lease. Client.Observe reports the PW holder's value and token
// on every change, from a watch. The design, and why, is in election.go.
//
// # Errors
//
// Refusals by the node are *Error values with a stable code: test them with
// errors.Is(err, ErrWouldBlock), ErrTimeout, ErrDeadlock and the others, or
// with CodeOf. A Lock or Convert whose context ends first fails with
// ErrTimeout (or ErrCancelled), which also matches the context's error.
package client
