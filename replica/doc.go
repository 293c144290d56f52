// Package replica runs the engine's core as a replicated state machine on
// etcd's raft library (go.etcd.io/raft/v3): a group of 3 or 5 replicas that
// agree on one log of turns and apply it, in order, to identical cores.
//
// # The replica
//
// Replica holds a raft RawNode, an engine.Core and the engine.Store (one
// Pebble database) that keeps both durable. Like the RawNode and the core
// it has no goroutines, no clock and no I/O of its own: the store does its
// I/O. Its surface follows them:
//
//	r, err := New(cfg)       // bootstrap, or restart from cfg.FS, cfg.Dir
//	r.Tick(now)              // one tick interval passed; the clock reads now
//	r.Step(msg)              // a raft message from a peer
//	id, err := r.Propose(now, inputs) // a client turn, on the leader
//	err = r.Read(id)         // a linearizable read (ReadIndex), on the leader
//	rd, err := r.Ready()     // made durable; messages to send, replies, events, reads
//	r.Advance()              // rd was handled
//	r.ReportSnapshot(to, failed) // how sending a MsgSnap ended
//	err = r.AddMember(id, data) // membership (ConfChangeV2), on the leader
//	err = r.RemoveMember(id)
//	r.TransferLeader(id)
//	r.Close()
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
//  4. When HasReady, call Ready. It returns only once everything the
//     Ready's messages and replies depend on is synced. Send rd.Messages to
//     their peers (GetTo), in any order, losing some if the network does;
//     deliver rd.Replies (one result per proposed input, in order, under
//     the id Propose returned) and rd.Events to the clients. Tell the
//     clients of rd.Lost proposals that their outcome is unknown: they
//     retry with the same request ids, which the core answers from its
//     record if the turn did commit.
//     Answer each read of rd.Reads from Core() now (the state at the
//     applied index, which covers every write committed before the read
//     was asked); a read never listed was dropped by raft (leadership
//     lost): time it out and ask again.
//  5. Call Advance before any other call on the replica.
//  6. For every MsgSnap sent (on the leader), call ReportSnapshot(to,
//     failed) once the transport knows how it ended: delivered, or lost
//     (dropped, the peer unreachable). Raft sends that peer nothing more
//     until told. ReportUnreachable(to) may tell it that a peer could not
//     be reached at all.
//  7. If Ready returns an error (it wraps engine.ErrStoreFailed), the store
//     failed: the replica has stopped. Deliver nothing of that Ready, do not
//     call Advance; Close the replica (Close then returns the failure) and
//     reopen it from its directory with New when the disk is back. A
//     replica may also be stopped at any time between calls (Close, or a
//     crash): New restarts it from what it had synced.
//
// Election jitter is raft's one source of randomness, drawn from
// crypto/rand; a test or simulator that wants one seed to be one run
// seeds it (testing/cryptotest.SetGlobalRandom in tests), and drives every
// replica from one goroutine so that the draws come in a fixed order.
//
// # Storage
//
// Each replica has one Pebble database (engine.Store, on Config.FS in
// Config.Dir). It holds the core's records (engine/record.go) and, under
// keys that begin with engine.ForeignPrefix (0x00), which no record key
// does and which the core's load never reads, raft's state:
//
//	0x00 'i'               the replica's id: a replica lives here
//	0x00 'h'               raft's HardState
//	0x00 's'               the snapshot metadata: index, term, ConfState; the
//	                       log's entries up to its index are compacted away
//	0x00 'a'               the applied state: applied index and term, the
//	                       core's clock there, the last failover term
//	                       applied, the count of this replica's proposals
//	0x00 'c'               the configuration (voters) as of the applied index
//	0x00 'm' id(BE64)      what AddMember carried for member id (addresses);
//	                       in the snapshot's data too
//	0x00 'e' index(BE64)   each log entry after the snapshot's index
//
// Every Ready that changes anything is one batch committed with one fsync
// before Ready returns: the new entries (and the deletion of any stored
// entries they replace), the hard state, the core's writes of every entry
// applied, and the applied state; when the log is compacted or a snapshot
// installed, also the new snapshot metadata and the deletions. So the
// database always holds the core exactly as of the applied index it
// records. raft.MemoryStorage stays as the in-memory copy raft reads,
// loaded from the database by New.
//
// A restart is exact: the core comes back through engine.RestoreExact as
// every other replica had it at the stored applied index (same StateHash),
// not with the single-node restart's grace, which no other replica applies.
// For that the core writes each session's deadline whenever it moves
// (engine's Core.WriteDeadlines: a keepalive is then two records, about 40
// bytes, in a batch that is written anyway), and the applied state keeps
// the core's clock (a tick entry may move it without writing a record).
// Raft restarts with Applied at the stored index and replays the committed
// entries after it; the stored proposal count keeps a restarted replica
// from reusing a ProposalID.
//
// # Snapshots and compaction
//
// When the log holds Config.CompactAfter applied entries beyond its
// snapshot, the replica takes a snapshot at its applied index: the
// metadata and the deletion of the entries up to it go in the Ready's
// batch, and after the commit the snapshot's data is read from the store
// (so it is exactly what a restart would load) and set in MemoryStorage
// (CreateSnapshot, Compact). The data is the core's clock and failover
// term, then every record, length-prefixed; its size is bounded by
// spec.Limits, which bound every record the core keeps. A restart makes a
// fresh in-memory snapshot at the applied index the same way. A follower
// behind the leader's first index gets raft's MsgSnap: in the Ready that
// carries it, the replica wipes the core's records and its stored log,
// writes the snapshot's records and metadata, moves applied to its index
// and rebuilds its core with RestoreExact, all in the one batch. It answers
// nothing for the entries it skipped: its pending proposals are Lost.
//
// # Membership, leadership transfer, reads
//
// AddMember and RemoveMember propose one change of voters through raft's
// ConfChangeV2 (a simple change: one voter at a time, so no joint
// configuration); raft takes one change at a time and turns a second one
// proposed before the first is applied into an empty entry, so a caller
// watches Voters (or Applied.Voters) and proposes again. A new member is
// made with Config.Join: an empty store with no voters, which the leader
// fills with a snapshot and then the log. The configuration as of the
// applied index is stored (0x00 'c') in the batch that applies a change,
// and a Ready that applies one compacts the log at once: raft refuses a
// snapshot whose configuration leaves its receiver out, and a newcomer is
// sent the latest snapshot. A removed leader steps down once it applies
// its removal (StepDownOnRemoval). TransferLeader hands leadership to a
// voter; while it is in progress the leader drops proposals (ErrDropped).
//
// Read is raft's ReadIndex with ReadOnlySafe: the leader confirms with a
// heartbeat round that it still leads and notes its commit index; once its
// core has applied that index the read is listed in a Ready, and answered
// from the core as it is then. A leader that was deposed without knowing
// it cannot confirm, so it answers no read (reads never go through the
// log, and cost no fsync). Lock requests need no such step: their answers
// come from applied entries, which only a current leader can commit.
//
// # Still to come
//
//   - snapshots sent in chunks (today one message, up to the limits'
//     bound on the core's records);
//   - the networked client's failover and the server's cluster mode (the
//     sans-I/O part, protocol.Members, and the simulator's cluster mode,
//     which drives replicas with it, are done).
//
// # Checking
//
// The tests drive 3 and 5 replicas and retrying clients in virtual time
// over a seeded network (delays, drops, partitions), each replica on its
// own crashable in-memory file system, then heal it. Some configurations
// also stop random replicas, the leader among them, by Close or by a power
// cut (a crash image of what was synced), and restart them; keep one down
// while the others compact (it must catch up by snapshot); or fail one
// replica's disk (its Ready must fail with engine.ErrStoreFailed while the
// others go on). Their checkers: at most one leader per term; a restarted
// replica comes back at the applied index of its last Ready with the state
// hash every replica had there; every replica applies the same
// entry at each index; equal state hashes (StateHash) at equal applied
// indexes; spec.CheckInvariants on every applied state; only the proposer
// answers, once, an entry that is committed and applied; after healing, one
// leader known to all and every request answered within a bound; with short
// leases, no session expires before the grace has passed since the last
// failover entry a replica applied. Each seed
// runs twice and must give the same trace. Built with -tags bugzoo,
// bugzoo_test.go plants a mistake per checker and shows it fail.
package replica
