// Package engine is Bouncer's lock service: the deterministic core that
// implements the semantics of package spec, its Pebble store, and the event
// loop that drives them with group commit.
//
// # The core
//
// Core is a plain struct with no goroutines, no clock, no random source and
// no I/O; everything it needs arrives in its inputs, and everything it does
// leaves as values. Its surface follows etcd's raft library:
//
//	reply := core.Step(now, &input) // or core.Tick(now) for time alone
//	rd := core.Ready()              // events to deliver, records to persist
//	core.Advance()                  // rd was handled
//
// The caller's obligations, in order, for every turn:
//
//  1. Step the core with each input of the turn (or Tick it when no input
//     waits but NextDeadline has come), passing the time of the turn. Keep
//     each reply; do not send it yet.
//  2. Call Ready. If rd.Writes is not empty, write all of it to stable
//     storage in one atomic batch and sync it (Store.Apply, then Store.Synced). If
//     that fails, stop: never send a reply or event of this turn, never
//     step this core again; restart from the store (fail-stop).
//  3. Only now send the replies of step 1 and deliver rd.Events.
//  4. Call Advance. The slices of rd, and any Result.Value in the replies,
//     are reused or may be referenced afterwards only as immutable values.
//  5. Wake for the next turn when an input arrives or at NextDeadline.
//
// Node does 1 to 4 for a batch of inputs (Node.Turn); Loop runs Node on one
// goroutine, taking every input waiting (up to InputsPerBatchMax) into one
// turn, so that one fsync serves them all. The simulator calls Node.Turn
// itself, in virtual time.
//
// Step 2 may be split to pipeline turns, as Loop does: hand the batch to
// the log (Store.Apply, in turn order, from the goroutine that steps) and
// step the next turn while it syncs; wait for the sync elsewhere
// (Store.Synced), and send each turn's outputs only once its own sync has
// returned, in turn order (the log is written in order, so the durable
// turns are always a prefix). A turn without writes still waits for the
// turns before it. Reading the core for anyone outside (describe, watch)
// waits until no turn is in flight, for the core then holds only durable
// state. Node.Begin and Turn.Wait are steps 1, 2 and 4 split this way.
//
// # Recovery
//
// Restore (Store.Load) rebuilds a core from its records as a restart at a
// given instant: the core then equals what it was after the last durable
// batch, except that every session gets a full TTL from the restart (the
// node cannot know how long it was down) — exactly what spec.Model.Recover
// says. The caller makes a turn at once to fire timers that came due.
//
// A replica's core must come back exactly, not with that grace (the other
// replicas never applied it): Core.WriteDeadlines makes the core write each
// session's deadline whenever it moves, and RestoreExact (Store.LoadExact)
// rebuilds exactly that core from its records and the clock the replica
// kept. A replica shares its Store with raft: its keys begin with
// ForeignPrefix, which Load never reads, and Store.NewBatch commits them
// with the core's writes in one synced batch.
//
// Failover is the same for a change of leader in a replicated group
// (spec.Model.Failover): the core keeps its state and every session's
// expiry moves out to at least the failover's instant plus a grace. It
// writes nothing (see Core.Failover for why that is enough); the caller
// Ticks at once.
//
// # Checking
//
// Built with -tags invariants (or -race), the core checks every invariant
// of spec.CheckInvariants and of its own structures after every step and
// panics on a broken one (a programmer error). Cheap local assertions
// (assert.go: counts never negative, a lock on the lists it should be on, a
// queued request with a timer, an outcome recorded once) are on in every
// build. Tests compare it step by step
// with spec.Model (model_test.go, testdata/scenarios), cut power in the
// middle of commits (crash_test.go) and inject I/O errors (errorfs_test.go);
// package internal/lint lints the core's imports and calls (clock.go,
// store.go, node.go, loop.go and mailbox.go are the edges it leaves out).
//
// Files: core.go (the Core, Step, dispatch, sessions), grant.go (the grant
// rules), session.go (replies, expiry, tombstones), deadlock.go (wait-for
// search), timer.go (the timer heap), list.go (intrusive lists), record.go
// and restore.go (the record encoding and recovery), state.go and
// invariants.go (inspection); store.go, node.go and loop.go are the edges
// that do I/O, start goroutines and read the clock, and mailbox.go the
// hand-off between callers and the goroutine that owns a core (Loop's, and
// a replicated member's in package cluster).
package engine
