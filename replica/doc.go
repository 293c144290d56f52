// Package replica runs the engine's core as a replicated state machine on
// etcd's raft library (go.etcd.io/raft/v3): a group of 3 or 5 replicas that
// agree on one log of turns and apply it, in order, to identical cores.
//
// # The replica
//
// Replica holds a raft RawNode and an engine.Core and, like both, has no
// goroutines, no clock and no I/O of its own. Its surface follows them:
//
//	r.Tick(now)              // one tick interval passed; the clock reads now
//	r.Step(msg)              // a raft message from a peer
//	id, err := r.Propose(now, inputs) // a client turn, on the leader
//	rd := r.Ready()          // messages to send, replies, events
//	r.Advance()              // rd was handled
//
// Time enters only through the log. The leader stamps every entry with its
// time, never earlier than a stamp it has proposed, appended or applied, and
// every replica applies the entry with Core.Step(stamp, input) for each of
// its inputs; when the core's next deadline has come, the leader proposes a
// tick entry, applied everywhere with Core.Tick(stamp). No replica's own
// clock reaches its core, so expiries and timeouts happen at the same log
// position on every replica. Only the replica that proposed an entry
// answers it, and only once the entry is committed and applied; the others
// apply it silently.
//
// A new leader's first entry of its term, before any other, is a failover
// entry stamped with its time: every replica applies it with
// Core.Failover(stamp, grace) and then Core.Tick(stamp), the grace being
// the longest TTL of a live session, so that no lease a client may still
// believe in runs out on a leader that did not grant it, whatever the gap
// between the two leaders' clocks (startTerm says why that grace is
// enough). Raft is configured with PreVote, CheckQuorum,
// ReadOnlySafe and DisableProposalForwarding (the leader computes the stamp,
// so a follower must not propose).
//
// The caller's obligations, in order:
//
//  1. Call Tick on every replica once per tick interval, passing its
//     clock's time (monotonic; followers ignore it). ElectionTick and
//     HeartbeatTick count these calls.
//  2. Hand every raft message received from a peer to Step; an error means
//     it was not for this replica: drop it.
//  3. Give client inputs to Propose, batched into one turn if several wait.
//     A follower refuses with *NotLeader naming the leader it knows (0:
//     none): send the client there. ErrDropped means retry later.
//  4. When HasReady, call Ready. Send rd.Messages to their peers (GetTo), in
//     any order, losing some if the network does; deliver rd.Replies (one
//     result per proposed input, in order, under the id Propose returned)
//     and rd.Events to the clients. Tell the clients of rd.Lost proposals
//     that their outcome is unknown: they retry with the same request ids,
//     which the core answers from its record if the turn did commit.
//  5. Call Advance before any other call on the replica.
//
// Election jitter is raft's one source of randomness, drawn from
// crypto/rand; a test or simulator that wants one seed to be one run
// seeds it (testing/cryptotest.SetGlobalRandom in tests), and drives every
// replica from one goroutine so that the draws come in a fixed order.
//
// # This slice, and what it leaves for later
//
// The log and the hard state live in raft.MemoryStorage, and the core's
// writes are dropped (the log is their record), so a replica that stops is
// gone. Still to come, each a slice of its own:
//   - raft's entries, hard state and applied index in the same Pebble
//     database as the core's records, one synced batch per Ready;
//   - snapshots (a Pebble checkpoint sent as raft's MsgSnap) and log
//     compaction;
//   - membership changes (joint consensus through one admin path);
//   - linearizable reads through ReadIndex;
//   - the client library's failover (leader hints, retries across
//     replicas) and the server's cluster mode;
//   - the simulator's cluster mode: replicas on crashable storage with
//     drifting clocks and crashes, under its existing checkers.
//
// # Checking
//
// The tests drive 3 and 5 replicas and retrying clients in virtual time
// over a seeded network (delays, drops, partitions), then heal it. Their
// checkers: at most one leader per term; every replica applies the same
// entry at each index; equal state hashes (StateHash) at equal applied
// indexes; spec.CheckInvariants on every applied state; only the proposer
// answers, once, an entry that is committed and applied; after healing, one
// leader known to all and every request answered within a bound; with short
// leases, no session expires before the grace has passed since the last
// failover entry a replica applied. Each seed
// runs twice and must give the same trace. Built with -tags bugzoo,
// bugzoo_test.go plants a mistake per checker and shows it fail.
package replica
