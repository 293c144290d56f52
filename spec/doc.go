// Package spec states what Bouncer means: the vocabulary of the lock
// service, the rules by which it grants, and a reference model that follows
// them in the plainest code we could write. The engine implements the same
// semantics fast and durably; tests hold it to this model step by step, and
// the TLA+ model in tla/ says the same thing again for TLC.
//
// # Glossary
//
//   - Session: a client's lease on the node, opened with a TTL and renewed
//     by keepalives. When it is not renewed within its TTL it expires: every
//     lock it held is released and every request it had queued ends. A
//     session id is a capability (128 unguessable bits): every operation
//     names its session, so no client can touch another's locks.
//   - Resource: a lock name (bytes, at most NameBytesMax). It has holders, a
//     conversion queue, a wait queue and a value block. It exists while it
//     has a lock, a queued request or a lock-delay; then it is dropped, its
//     value block with it (as in the DLM: hold an NL lock to keep it).
//   - Mode: NL, CR, CW, PR, PW, EX, the DLM's six modes (Gray's IS, IX, S,
//     SIX, X, plus null). Shared is PR, Exclusive is EX. Compatible gives
//     the matrix; a request is granted only if compatible with every
//     granted mode.
//   - Holder: a session with a granted lock on a resource. Waiter: a session
//     with a queued request. A session has at most one lock per resource.
//   - Grant: the moment a request takes effect. The rules, after the
//     OpenVMS/Linux DLM: a conversion is granted in place at once if its
//     mode is compatible with every other granted mode (a down-conversion
//     always is), even past queued conversions (the DLM without QUECVT);
//     queued conversions are served first, and only the head of their
//     queue, while it fits (they never overtake one another, so a queued
//     NL->EX cannot be put off forever); a new request is granted at once
//     only if no conversion and no request waits (strict FIFO: no
//     overtaking, so no starvation); a queued new request only when it is
//     first in line and no conversion waits. After every release, cancel,
//     expiry, timeout or grant the queues are rescanned in that order.
//   - Token (fencing token): every grant and every up-conversion returns a
//     token greater than every token returned before, for any resource,
//     across crashes. A resource that rejects writes bearing a lower token
//     than the highest it has seen stays safe from clients that hold on
//     past their lease. Tokens serve one writer at a time: fence PW and EX
//     holders only (CW holders write concurrently).
//   - Value block: a small value stored with a resource, returned with every
//     grant, written by a PW or EX holder on release or down-conversion, and
//     marked invalid when a PW or EX holder's session expires. The mark
//     lasts as long as the resource: if the expiring writer was its last
//     user, the resource is dropped with its block, and the next holder
//     gets a new, empty, valid one. Hold an NL lock to keep it.
//   - Blocking notification: a holder whose mode blocks a queued request of
//     another session is told the wanted mode, once per higher mode since
//     its own mode last changed, so that a cooperative holder can let go.
//     Unlike VMS, a holder with a queued conversion is told too: its
//     granted mode still blocks.
//   - Deadlock: a request that would close a cycle in the wait-for graph
//     (see graph.go), by queueing or by being granted in place, is refused.
//     A request waits for what must act before it can be granted: holders
//     that conflict with it or with a request ahead of it, and requests
//     ahead that conflict with a later one up to it (a compatible request
//     ahead is granted with it). The DLM's conversion deadlock is one case.
//     Unlike the Linux DLM, which detects only conversion deadlocks, cycles
//     across resources are refused too; the check is conservative for
//     sideways conversions (PR<->CW). The oracle in stuck.go judges every
//     refusal and every state by what a deadlock means instead.
//   - Lock-delay: if a session expires holding a lock taken with a
//     lock-delay (in a mode other than NL), the resource grants nothing new,
//     of any mode, nor any up-conversion, until that delay has passed
//     (Chubby), for resources that cannot check tokens. A reader's death
//     starts it too: ask for it on PW and EX locks only.
//   - Semaphore (counting semaphore): a resource of Limit permits
//     (1 <= Limit <= PermitsMax), fixed by the acquire that creates it.
//     A holder holds 1 to Limit permits in mode PR, with its own token,
//     and gives them all back on release or expiry (a lock-delay it asked
//     for then starts, as for a lock). A request is granted when its
//     permits fit in what the holders leave of the limit, in strict FIFO
//     order like a lock's (a large request at the head holds back smaller
//     ones behind it, so it is never starved). Permits are never
//     converted; the value block can be read, not written. Asking a lock
//     resource for permits, a semaphore without them, or a semaphore with
//     another limit is InvalidArgument. Deadlock: two requests conflict
//     when their permits add up to more than the limit (graph.go); a
//     waiter held up only by the sum of several holders gets no edge, and
//     such a deadlock is ended by a wait timeout, not refused.
//   - Request id: a client's id for a mutating request, unique in its
//     session. A retry of an id is never applied twice: it returns the
//     recorded outcome, also after a restart. A retry must repeat the
//     request: another request reusing the id (by Input.Digest) is refused
//     with InvalidArgument. Clients acknowledge outcomes (Input.Acked) so
//     that the node can forget them.
//   - Tombstone: the memory of an ended session, so that its late requests
//     learn SessionExpired (or, once closed, UnknownSession) and a retried
//     Close succeeds; at most TombstonesMax are kept.
//   - Limits: one struct with a named bound for everything kept or
//     accepted. Exceeding a bound is LimitExceeded naming it; malformed
//     input is InvalidArgument naming the field. Neither changes anything.
//   - Time: nanoseconds since an arbitrary epoch, carried by every input;
//     the model and the engine never read a clock, and the node's clock is
//     monotonic (never the wall clock) and never goes back, across restarts
//     too. A restart gives every session a full TTL (Recover), since the
//     node cannot know how long it was down.
//   - Failover: a change of leader in a replicated group, the cluster's
//     Recover. The new leader cannot know what leases the old one
//     promised, so every live session's deadline is pushed out to at least
//     the failover's instant plus a grace (Model.Failover), as long as any
//     lease a client may still believe in; nothing can expire before. The
//     rest of the state, wait deadlines and lock-delays included, stays.
//
// # The model
//
// Model is a pure state machine: Step(now, input) returns the reply and
// the events; Tick(now) lets time pass; Recover(now) is a restart;
// Failover(now, grace) is a change of leader in a replicated group. State
// returns a canonical snapshot; CheckInvariants and CheckTransition state
// what must hold of every state and every step. Outcome codes (Code) are
// stable across the model, the engine, the wire and the CLI.
package spec
