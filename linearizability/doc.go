// Package linearizability checks what clients of a lock service observed
// against the semantics of package spec, with Porcupine
// (github.com/anishathalye/porcupine).
//
// A history is a list of Entry values, one per client request, session
// close or session expiry, each with the true times at which it was called
// and at which its outcome was learned. Check partitions it by resource (a
// close or expiry names every resource of its session and is split into
// one operation per resource) and asks Porcupine whether each partition has
// a linearization that the per-resource model (model.go) accepts.
//
// How a lock service looks to Porcupine:
//
//   - A request that may wait (acquire, convert) is two operations: its
//     application, linearized where the node stepped it (ending when the
//     client learned it was queued, or its outcome), and its outcome,
//     linearized where the node completed it (a grant by another's release,
//     a timeout, a cancel, the end of the session). A timeout cannot come
//     before the wait timeout ran from the call.
//   - A session's expiry is an operation no client called: it starts at the
//     send time of the session's last answered keepalive plus the TTL (the
//     node cannot have expired the session earlier) and ends when the client
//     learned of it.
//   - An outcome the client never learned is unknown: the request may have
//     taken effect at any point after its call, or never. Its operation
//     ends when the client learned the session had ended, or Never (at
//     infinity).
//   - What one resource cannot decide (Deadlock, which depends on other
//     resources' queues; LimitExceeded, which depends on global counts; the
//     end of a lock-delay) the model allows both ways; the simulator's trace
//     validation against spec.Model decides them exactly.
//
// A check that runs out of time is Unknown, which is a failure, never a
// pass.
//
// # History format (JSON lines)
//
// One object per line; times are integer nanoseconds; absent fields are
// zero. Lines that are blank or start with # are skipped.
//
//	{"client":0,"session":"<32 hex digits>","op":"acquire","resource":"r1","request":3,
//	 "mode":"EX","no_queue":false,"wait_timeout":2000000000,"lock_delay":0,
//	 "call":1500000,"pending":1900000,"return":2400000,
//	 "result":{"code":"OK","mode":"EX","token":17,"value":"<base64>","value_valid":true}}
//	{"client":0,"session":"...","op":"release","resource":"r1","request":4,
//	 "write_value":true,"value":"<base64>","call":...,"return":...,"result":{"code":"OK"}}
//	{"client":0,"session":"...","op":"close","resources":["r1","r2"],"call":...,"return":...,"result":{"code":"OK"}}
//	{"client":0,"session":"...","op":"expire","resources":["r1"],"call":...,"return":...}
//
// Fields: client (zero-based index, for the visualization); session;
// op (acquire, convert, release, cancel, close, expire); resource and
// request (requests); resources (close, expire); mode, no_queue,
// wait_timeout, lock_delay (acquire, convert); write_value and value
// (release, convert); call; pending (when the client learned the request
// was queued, if it did); return and result (when and what the client
// learned as the final outcome; absent if unknown); until (for an unknown
// outcome: the request took effect, if at all, no later than this). Result
// codes are spec's names (OK, WouldBlock, Timeout, ...); value blocks are
// base64, as encoding/json writes bytes.
package linearizability
