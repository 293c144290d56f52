package replica

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Config configures a replica. Every replica of a group gets the same Peers
// and Limits.
type Config struct {
	ID     uint64   // this replica's raft id, > 0
	Peers  []uint64 // the ids of every voter, this one included
	Limits spec.Limits
	// ElectionTick is the number of Ticks a follower waits without hearing
	// from a leader before it campaigns; raft adds a random jitter of up to
	// as much again. HeartbeatTick is the number of Ticks between a leader's
	// heartbeats. Zero means the default (10 and 1).
	ElectionTick, HeartbeatTick int
}

// Bounds on raft's buffers, so that no queue grows without limit. A
// proposal beyond them is refused (ErrDropped), never queued.
const (
	msgBytesMax         = 1 << 20 // entries in one append message
	inflightMsgsMax     = 256     // append messages in flight to one follower
	uncommittedBytesMax = 1 << 26 // the leader's log not yet committed
	committedBytesMax   = 1 << 26 // committed entries handed out in one Ready
)

// ProposalID names a proposal: the replica that proposed it and its count
// of proposals. It is carried in the entry, so that the proposer knows its
// own entry when it applies it.
type ProposalID struct {
	Replica uint64
	Seq     uint64
}

// NotLeader is Propose's refusal on a replica that is not the leader: the
// client should ask Leader (0: this replica knows of no leader).
type NotLeader struct{ Leader uint64 }

func (e *NotLeader) Error() string {
	return fmt.Sprintf("replica: not the leader; the leader is %d", e.Leader)
}

// ErrDropped is Propose's refusal on a leader that cannot take a proposal
// now (a leadership transfer, or its uncommitted log is full): retry later.
var ErrDropped = errors.New("replica: proposal dropped by raft")

// Ready is the work the replica has for its caller. It stays valid until
// Advance; Reply.Results and the events may be kept after it.
type Ready struct {
	// Messages are raft messages to send, each to the peer named by GetTo().
	Messages []*raftpb.Message
	// Applied lists the committed entries applied to the core, in log order.
	Applied []Applied
	// Replies answer this replica's own proposals whose entries were applied.
	Replies []Reply
	// Events are the core's events from the entries this replica proposed
	// (client turns and tick entries), in order.
	Events []spec.Event
	// Lost are this replica's proposals that can no longer commit (a later
	// leader's entries replaced them): their outcome is unknown, and a
	// client should retry them with the same request ids.
	Lost []ProposalID
}

// Applied is one committed entry applied to the core.
type Applied struct {
	Index, Term uint64
	Proposal    ProposalID // zero for raft's own empty entries
	At          spec.Time  // the entry's stamp (zero for raft's empty entries)
	Failover    bool       // a new leader's failover entry
	Tick        bool       // a tick entry: time alone
	// Inputs are a client turn's inputs, stepped in order (valid until
	// Advance): with the stamp, all an observer needs to replay the log.
	Inputs  []spec.Input
	Expired int // sessions that expired when the entry was applied
}

// Reply answers one proposal: one result per input, in the order proposed.
type Reply struct {
	Proposal    ProposalID
	Index, Term uint64 // the entry's place in the log
	Results     []spec.Result
}

// Replica is one member of a replicated lock service: a raft RawNode and the
// engine's Core, with no goroutines, no clock and no I/O. Time enters only
// through the log: the leader stamps each entry with its time, and every
// replica applies the same entries with the same times to the same core.
// See doc.go for the caller's obligations.
type Replica struct {
	id       uint64
	lim      spec.Limits
	storage  *raft.MemoryStorage
	rn       *raft.RawNode
	core     *engine.Core
	seq      uint64             // proposals made
	stampMax spec.Time          // the latest stamp proposed, appended or applied
	pending  map[uint64]pending // own proposals not yet applied, by seq
	tickSeq  uint64             // the own tick entry in flight, 0 if none
	// failoverTerm is the term whose failover entry this replica proposed,
	// as its leader; appliedFailover the term of the last failover entry
	// applied. Every other entry of a term comes after its failover entry.
	failoverTerm    uint64
	appliedFailover uint64
	applied         uint64    // index of the last entry applied to the core
	clock           spec.Time // the time of the last Tick (only planted bugs read it)
	inReady         bool      // between Ready and Advance
	out             Ready
	scratch         entry
}

type pending struct {
	term   uint64 // the term the leader proposed it in: its entry's term
	kind   byte   // kindTurn, kindTick or kindFailover
	inputs int    // 0 for a tick or failover entry
}

// New returns a replica of a new group whose voters are cfg.Peers. Every
// replica starts from the same empty state at log index 1 (term 1), as if
// the group had been bootstrapped together.
func New(cfg Config) (*Replica, error) {
	if cfg.ID == 0 || !slices.Contains(cfg.Peers, cfg.ID) {
		return nil, fmt.Errorf("replica: id %d is not one of the peers %v", cfg.ID, cfg.Peers)
	}
	peers := slices.Sorted(slices.Values(cfg.Peers))
	if peers[0] == 0 || len(slices.Compact(slices.Clone(peers))) != len(peers) {
		return nil, fmt.Errorf("replica: peers %v: ids must be distinct and > 0", cfg.Peers)
	}
	core, err := engine.New(cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	if bugzooOn && planted("lone-voter") && cfg.ID == peers[0] {
		peers = peers[:1] // bootstrapped with the wrong membership: itself alone
	}
	storage := raft.NewMemoryStorage()
	snap := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(1)), Term: new(uint64(1)),
		ConfState: &raftpb.ConfState{Voters: peers}}}
	if err := storage.ApplySnapshot(snap); err != nil {
		return nil, fmt.Errorf("replica: bootstrap: %w", err)
	}
	if err := storage.SetHardState(&raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(1))}); err != nil {
		return nil, fmt.Errorf("replica: bootstrap: %w", err)
	}
	rc := &raft.Config{
		ID:                        cfg.ID,
		ElectionTick:              orDefault(cfg.ElectionTick, 10),
		HeartbeatTick:             orDefault(cfg.HeartbeatTick, 1),
		Storage:                   storage,
		Applied:                   1,
		MaxSizePerMsg:             msgBytesMax,
		MaxInflightMsgs:           inflightMsgsMax,
		MaxUncommittedEntriesSize: uncommittedBytesMax,
		MaxCommittedSizePerReady:  committedBytesMax,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		DisableProposalForwarding: true, // the leader stamps the time: followers must not propose
		StepDownOnRemoval:         true,
		Logger:                    quietLogger{},
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	return &Replica{id: cfg.ID, lim: cfg.Limits, storage: storage, rn: rn, core: core,
		pending: map[uint64]pending{}, applied: 1}, nil
}

// orDefault returns v, or def when v is zero.
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// ID returns the replica's raft id.
func (r *Replica) ID() uint64 { return r.id }

// Leader returns the leader this replica knows of (0: none) and the term.
func (r *Replica) Leader() (id, term uint64) {
	st := r.rn.BasicStatus()
	return st.Lead, st.HardState.GetTerm()
}

// IsLeader reports whether this replica is its term's leader.
func (r *Replica) IsLeader() bool { return r.rn.BasicStatus().RaftState == raft.StateLeader }

// Applied returns the index of the last entry applied to the core.
func (r *Replica) Applied() uint64 { return r.applied }

// Core gives read access to the core (state, invariants). Stepping it
// directly would bypass the log: don't.
func (r *Replica) Core() *engine.Core { return r.core }

// StateHash returns a hash of the core's canonical state: replicas that
// applied the same entries have the same hash.
func (r *Replica) StateHash() uint64 {
	st := r.core.State()
	return HashState(&st)
}

// HashState hashes a canonical state (FNV-1a over its text).
func HashState(st *spec.State) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(st.String()))
	return h.Sum64()
}

// Tick tells the replica that one tick interval has passed and that its
// clock now reads now. Raft counts ticks for elections and heartbeats; the
// leader also proposes a tick entry stamped now when the core's next
// deadline has come, so that expiries and timeouts happen through the log.
// Followers ignore now.
func (r *Replica) Tick(now spec.Time) {
	r.assertOutsideReady("Tick")
	r.clock = now
	r.rn.Tick()
	if !r.IsLeader() {
		return
	}
	if fresh, err := r.startTerm(now); fresh || err != nil || r.tickSeq != 0 {
		return // the failover entry comes first; its Tick fires what is due
	}
	if at, ok := r.core.NextDeadline(); ok && at <= now {
		if seq, err := r.propose(kindTick, now, nil); err == nil {
			r.tickSeq = seq
		}
	}
}

// Step hands the replica a raft message from a peer. An error means the
// message was not for it (a local message type, an unknown peer): drop it.
func (r *Replica) Step(m *raftpb.Message) error {
	r.assertOutsideReady("Step")
	if err := r.rn.Step(m); err != nil {
		return fmt.Errorf("replica %d: step %v from %d: %w", r.id, m.GetType(), m.GetFrom(), err)
	}
	return nil
}

// Propose proposes one turn of the core: inputs, stamped with the leader's
// time now (or with its latest stamp, if now is earlier: time never goes
// backward in the log). Only the leader takes proposals; a follower
// refuses with *NotLeader. The results come in a later Ready's Replies,
// under the returned id, once the entry is committed and applied.
func (r *Replica) Propose(now spec.Time, inputs []spec.Input) (ProposalID, error) {
	r.assertOutsideReady("Propose")
	if len(inputs) == 0 || len(inputs) > r.lim.InputsPerBatchMax {
		return ProposalID{}, fmt.Errorf("replica: a proposal takes 1 to InputsPerBatchMax %d inputs, got %d",
			r.lim.InputsPerBatchMax, len(inputs))
	}
	if st := r.rn.BasicStatus(); st.RaftState != raft.StateLeader {
		lead := st.Lead
		if bugzooOn && planted("hint-self") {
			lead = r.id
		}
		return ProposalID{}, &NotLeader{Leader: lead}
	}
	if _, err := r.startTerm(now); err != nil {
		return ProposalID{}, err
	}
	seq, err := r.propose(kindTurn, now, inputs)
	if err != nil {
		return ProposalID{}, err
	}
	return ProposalID{Replica: r.id, Seq: seq}, nil
}

// startTerm proposes, on a leader that has not yet done so in its term,
// the failover entry that must precede every other entry of the term, and
// reports whether it did. (The term tells a new leadership more surely than
// raft's SoftState, which would not show a leader that lost its place and
// won it back between two Readies.)
//
// The failover grace. A new leader cannot know what leases the old one
// promised, nor how far its own clock is from the old leader's: its stamps
// may jump ahead of the log's time. So its first entry, stamped with its
// time, gives every session a grace from then before anything can expire
// (Core.Failover). A client counts its lease from the send time of its last
// answered keepalive, which came before the failover entry was stamped, and
// for at most its session's TTL; so a grace of the longest TTL of a live
// session covers every lease a client may still believe in. It is worked
// out when the entry is applied (Core.SessionTTLMax), from the state every
// replica has at that index, not by the leader, which may not have applied
// all of its log yet. A grace per session (its own TTL) would be as safe
// and let a short-lived session of a dead client go sooner; one grace keeps
// the one transition of the spec, the engine and the TLA+ model, at the
// cost of keeping such a session up to the longest TTL after a leader
// change.
func (r *Replica) startTerm(now spec.Time) (bool, error) {
	term := r.rn.BasicStatus().HardState.GetTerm()
	if r.failoverTerm == term {
		return false, nil
	}
	if _, err := r.propose(kindFailover, now, nil); err != nil {
		return false, err
	}
	r.failoverTerm = term
	return true, nil
}

func (r *Replica) propose(kind byte, now spec.Time, inputs []spec.Input) (uint64, error) {
	e := entry{kind: kind, at: max(now, r.stampMax), proposer: r.id, seq: r.seq + 1, inputs: inputs}
	// A fresh slice each time: raft keeps it in its log.
	if err := r.rn.Propose(appendEntry(nil, &e)); err != nil {
		if errors.Is(err, raft.ErrProposalDropped) {
			return 0, ErrDropped
		}
		return 0, fmt.Errorf("replica: propose: %w", err)
	}
	r.seq, r.stampMax = e.seq, e.at
	r.pending[e.seq] = pending{term: r.rn.BasicStatus().HardState.GetTerm(), kind: kind, inputs: len(inputs)}
	return e.seq, nil
}

// HasReady reports whether Ready has work.
func (r *Replica) HasReady() bool { return r.rn.HasReady() }

// Ready stores the new log entries and hard state (in memory, in this
// slice), applies the newly committed entries to the core in log order,
// and returns what the caller must send and deliver. Call Advance after.
func (r *Replica) Ready() Ready {
	r.assertOutsideReady("Ready")
	r.inReady = true
	rd := r.rn.Ready()
	if !raft.IsEmptySnap(rd.Snapshot) {
		panic("replica: raft sent a snapshot; snapshots are not supported yet")
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := r.storage.SetHardState(rd.HardState); err != nil {
			panic(fmt.Sprintf("replica: memory storage: %v", err)) // memory cannot fail
		}
	}
	out := &r.out
	clear(out.Events)
	out.Applied, out.Replies, out.Events, out.Lost = out.Applied[:0], out.Replies[:0], out.Events[:0], out.Lost[:0]
	if len(rd.Entries) > 0 {
		if err := r.storage.Append(rd.Entries); err != nil {
			panic(fmt.Sprintf("replica: memory storage: %v", err))
		}
		r.appended(rd.Entries)
	}
	for _, ent := range rd.CommittedEntries {
		r.apply(ent)
	}
	out.Messages = rd.Messages
	return *out
}

// Advance tells the replica that the last Ready was handled: its messages
// handed to the network, its replies and events delivered.
func (r *Replica) Advance() {
	if !r.inReady {
		panic("replica: Advance without Ready")
	}
	r.inReady = false
	r.rn.Advance(raft.Ready{})
}

// appended notes the stamps and indexes of entries newly written to the log.
func (r *Replica) appended(ents []*raftpb.Entry) {
	for _, ent := range ents {
		if ent.GetType() != raftpb.EntryNormal || len(ent.Data) == 0 {
			continue
		}
		r.stampMax = max(r.stampMax, entryTime(ent.Data))
		if bugzooOn && planted("reply-on-append") {
			r.replyOnAppend(ent)
		}
	}
}

// apply applies one committed entry to the core.
func (r *Replica) apply(ent *raftpb.Entry) {
	index, term := ent.GetIndex(), ent.GetTerm()
	if index != r.applied+1 {
		panic(fmt.Sprintf("replica %d: applies entry %d after %d", r.id, index, r.applied))
	}
	if ent.GetType() != raftpb.EntryNormal {
		panic(fmt.Sprintf("replica %d: entry %d of type %v; membership changes are not supported yet", r.id, index, ent.GetType()))
	}
	r.applied = index
	r.loseOlder(term)
	if len(ent.Data) == 0 { // a new leader's empty entry
		r.out.Applied = append(r.out.Applied, Applied{Index: index, Term: term})
		return
	}
	e := &r.scratch
	decodeEntry(ent.Data, e)
	id := ProposalID{Replica: e.proposer, Seq: e.seq}
	if e.kind == kindFailover {
		r.appliedFailover = term
	} else if r.appliedFailover != term {
		panic(fmt.Sprintf("replica %d: entry %d of term %d comes before its term's failover entry", r.id, index, term))
	}
	p, mine := r.pending[e.seq]
	mine = mine && e.proposer == r.id
	if e.proposer == r.id && !mine {
		panic(fmt.Sprintf("replica %d: applies its own entry %d (seq %d) that it has no record of", r.id, index, e.seq))
	}
	answer := mine || bugzooOn && planted("follower-answers")
	at := e.at
	if bugzooOn && planted("apply-own-clock") {
		at = max(r.clock, r.core.Now())
	}
	var results []spec.Result
	switch e.kind {
	case kindFailover:
		grace := r.core.SessionTTLMax()
		if bugzooOn && planted("failover-no-grace") {
			grace = 0
		}
		r.core.Failover(at, grace)
		r.core.Tick(at)
	case kindTick:
		r.core.Tick(at)
	case kindTurn:
		if answer {
			results = make([]spec.Result, 0, len(e.inputs))
		}
		for i := range e.inputs {
			res := r.core.Step(at, &e.inputs[i])
			if answer {
				results = append(results, res)
			}
		}
	}
	r.stampMax = max(r.stampMax, e.at)
	crd := r.core.Ready() // its writes: the log is their record in this slice
	a := Applied{Index: index, Term: term, Proposal: id, At: e.at, Failover: e.kind == kindFailover,
		Tick: e.kind == kindTick}
	if e.kind == kindTurn {
		a.Inputs = slices.Clone(e.inputs) // e is reused by the next entry
	}
	for _, ev := range crd.Events {
		if ev.Kind == spec.Expired {
			a.Expired++
		}
	}
	r.out.Applied = append(r.out.Applied, a)
	if answer {
		r.out.Events = append(r.out.Events, crd.Events...)
	}
	r.core.Advance()
	if mine {
		delete(r.pending, e.seq)
		if term != p.term || e.kind != p.kind || len(e.inputs) != p.inputs {
			panic(fmt.Sprintf("replica %d: entry %d (term %d, %d inputs) does not match proposal %d (term %d, %d inputs)",
				r.id, index, term, len(e.inputs), e.seq, p.term, p.inputs))
		}
	}
	if e.kind == kindTick && mine {
		r.tickSeq = 0
	}
	if e.kind != kindTurn {
		return
	}
	if answer && !(bugzooOn && planted("reply-on-append")) {
		r.out.Replies = append(r.out.Replies, Reply{Proposal: id, Index: index, Term: term, Results: results})
	}
}

// loseOlder drops this replica's proposals from terms before term: the log
// has an entry of term at a later index than theirs, and terms never go
// down along the log, so they can no longer commit.
func (r *Replica) loseOlder(term uint64) {
	first := len(r.out.Lost)
	for seq, p := range r.pending {
		if p.term < term { // map order: sorted below
			delete(r.pending, seq)
			if seq == r.tickSeq {
				r.tickSeq = 0
			}
			if p.kind != kindTurn {
				continue // no client waits for it
			}
			r.out.Lost = append(r.out.Lost, ProposalID{Replica: r.id, Seq: seq})
		}
	}
	slices.SortFunc(r.out.Lost[first:], func(a, b ProposalID) int { return cmp.Compare(a.Seq, b.Seq) })
}

func (r *Replica) assertOutsideReady(verb string) {
	if r.inReady {
		panic("replica: " + verb + " between Ready and Advance")
	}
}
