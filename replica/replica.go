package replica

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Bounds on raft's buffers, so that no queue grows without limit. A
// proposal beyond them is refused (ErrDropped), never queued.
const (
	msgBytesMax         = 1 << 20 // entries in one append message
	inflightMsgsMax     = 256     // append messages in flight to one follower
	uncommittedBytesMax = 1 << 26 // the leader's log not yet committed
	committedBytesMax   = 1 << 26 // committed entries handed out in one Ready
	compactAfterDefault = 4096    // Config.CompactAfter's default
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

// errLoneNode: the store holds a lone node's records and no replica.
var errLoneNode = errors.New("replica: the store holds a lone node's data, not a replica: a member starts from an empty directory")

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
	// Reads are the reads (Read) that may be answered now: the leader
	// confirmed its leadership after they were asked and has applied the
	// log up to the commit index it had then. Answer each from Core()
	// before the next Ready.
	Reads []uint64
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
	// Voters is the group's voters after a membership change entry (nil
	// for every other entry).
	Voters []uint64
}

// Reply answers one proposal: one result per input, in the order proposed.
type Reply struct {
	Proposal    ProposalID
	Index, Term uint64 // the entry's place in the log
	Results     []spec.Result
}

// Replica is one member of a replicated lock service: a raft RawNode and the
// engine's Core, with no goroutines, no clock and no I/O but its store's
// (one Pebble database: engine.Store). Time enters only
// through the log: the leader stamps each entry with its time, and every
// replica applies the same entries with the same times to the same core.
// See doc.go for the caller's obligations.
type Replica struct {
	id       uint64
	lim      spec.Limits
	store    *engine.Store       // the core's records and raft's state, on disk
	storage  *raft.MemoryStorage // raft's log and hard state in memory, loaded from store
	conf     *raftpb.ConfState   // the group's configuration as of the applied index
	members  map[uint64][]byte   // what AddMember carried for each member it added
	compact  uint64              // Config.CompactAfter
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
	applied         uint64 // index of the last entry applied to the core
	appliedTerm     uint64 // its term
	// hardTerm and hardVote are raft's term and vote as last written.
	hardTerm, hardVote uint64
	// lostBelow: own entries with a seq up to it may be applied without a
	// pending proposal (their proposals were lost to a restart or a
	// snapshot); any later one must be pending.
	lostBelow uint64
	batch     *engine.Batch // the Ready's batch, while Ready runs
	coreWrote bool          // the core wrote records in this Ready (only a planted bug reads it)
	// confChanged: this Ready applied a membership change. The log is then
	// compacted at once, so that the snapshot a new member is sent has it
	// among the voters (raft refuses a snapshot whose configuration leaves
	// it out).
	confChanged bool
	// storedApplied is the applied state last written (only a planted bug reads it).
	storedApplied appliedState
	failed        error                   // the store failed: the replica has stopped
	sendEarly     func([]*raftpb.Message) // see SendEarly
	clock         spec.Time               // the time of the last Tick (only planted bugs read it)
	inReady       bool                    // between Ready and Advance
	// reads are the confirmed reads waiting for the core to apply their
	// index, in the order raft confirmed them (so by index).
	reads   []readState
	out     Ready
	scratch entry
}

type readState struct{ id, index uint64 }

type pending struct {
	term   uint64 // the term the leader proposed it in: its entry's term
	kind   byte   // kindTurn, kindTick or kindFailover
	inputs int    // 0 for a tick or failover entry
}

// New opens the replica in cfg.FS and cfg.Dir. When the directory holds
// no replica, it bootstraps a member of a new group whose voters are
// cfg.Peers: every replica starts from the same empty state at log index 1
// (term 1), as if the group had been bootstrapped together. Otherwise it
// restarts from what is stored (its voters from the stored configuration;
// cfg.Peers is then not read): its core exactly as of the stored applied
// index, and raft replays the committed entries after it. A stored replica
// with another id than cfg.ID is an error.
func New(cfg Config) (*Replica, error) {
	if err := cfg.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	fs, dir := cfg.storeFS()
	st, err := engine.OpenStore(fs, dir, cfg.Log)
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	r, err := open(cfg, st)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return r, nil
}

func open(cfg Config, st *engine.Store) (*Replica, error) {
	s, ok, err := load(st)
	if err != nil {
		return nil, err
	}
	if !ok {
		lone := false
		if err := st.Records(func(_, _ []byte) error { lone = true; return errLoneNode }); err != nil && !errors.Is(err, errLoneNode) {
			return nil, fmt.Errorf("replica: %w", err)
		}
		if lone {
			return nil, errLoneNode
		}
	}
	if !ok && cfg.Join {
		if cfg.ID == 0 {
			return nil, fmt.Errorf("replica: id must be > 0")
		}
		if err := bootstrap(st, cfg.ID, nil); err != nil {
			return nil, fmt.Errorf("replica: join: %w", err)
		}
		if s, ok, err = load(st); err != nil || !ok {
			return nil, fmt.Errorf("replica: join: read back: %v, %w", ok, err)
		}
	}
	if !ok {
		if cfg.ID == 0 || !slices.Contains(cfg.Peers, cfg.ID) {
			return nil, fmt.Errorf("replica: id %d is not one of the peers %v", cfg.ID, cfg.Peers)
		}
		peers := slices.Sorted(slices.Values(cfg.Peers))
		if peers[0] == 0 || len(slices.Compact(slices.Clone(peers))) != len(peers) {
			return nil, fmt.Errorf("replica: peers %v: ids must be distinct and > 0", cfg.Peers)
		}
		if bugzooOn && planted("lone-voter") && cfg.ID == peers[0] {
			peers = peers[:1] // bootstrapped with the wrong membership: itself alone
		}
		if err := bootstrap(st, cfg.ID, peers); err != nil {
			return nil, fmt.Errorf("replica: bootstrap: %w", err)
		}
		if s, ok, err = load(st); err != nil || !ok {
			return nil, fmt.Errorf("replica: bootstrap: read back: %v, %w", ok, err)
		}
	}
	if s.id != cfg.ID {
		return nil, fmt.Errorf("replica: the store holds replica %d, not %d", s.id, cfg.ID)
	}
	var core *engine.Core
	if bugzooOn && planted("restart-with-grace") {
		core, err = st.Load(cfg.Limits, s.applied.now) // the single-node restart: every session a fresh TTL
		if err == nil {
			core.WriteDeadlines()
		}
	} else {
		core, err = st.LoadExact(cfg.Limits, s.applied.now)
	}
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	members, err := loadMembers(st)
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	r := &Replica{id: cfg.ID, lim: cfg.Limits, store: st, core: core, conf: s.conf, members: members,
		compact: cfg.CompactAfter, pending: map[uint64]pending{}, applied: s.applied.index,
		appliedTerm: s.applied.term, appliedFailover: s.applied.failover, seq: s.applied.seq + seqGap,
		hardTerm: s.hard.GetTerm(), hardVote: s.hard.GetVote(),
		lostBelow: s.applied.seq + seqGap, stampMax: core.Now(), storedApplied: s.applied}
	if r.compact == 0 {
		r.compact = compactAfterDefault
	}
	// The in-memory log: the stored snapshot point, then the stored
	// entries, with a snapshot of the core at the applied index (what a
	// follower too far behind is sent).
	data, err := r.snapshotData()
	if err != nil {
		return nil, fmt.Errorf("replica: snapshot: %w", err)
	}
	storage := raft.NewMemoryStorage()
	snap := &raftpb.Snapshot{Metadata: s.snap}
	if s.applied.index == s.snap.GetIndex() {
		snap.Data = data
	}
	if s.snap.GetIndex() > 0 { // else a joining member, with no log yet
		if err := storage.ApplySnapshot(snap); err != nil {
			return nil, fmt.Errorf("replica: restart: %w", err)
		}
	}
	if err := storage.Append(s.entries); err != nil {
		return nil, fmt.Errorf("replica: restart: %w", err)
	}
	if s.applied.index > s.snap.GetIndex() {
		if _, err := storage.CreateSnapshot(s.applied.index, r.conf, data); err != nil {
			return nil, fmt.Errorf("replica: restart: %w", err)
		}
	}
	if err := storage.SetHardState(s.hard); err != nil {
		return nil, fmt.Errorf("replica: restart: %w", err)
	}
	r.storage = storage
	r.appended(s.entries) // their stamps: time never goes back in the log
	rc := &raft.Config{
		ID:                        cfg.ID,
		ElectionTick:              orDefault(cfg.ElectionTick, 10),
		HeartbeatTick:             orDefault(cfg.HeartbeatTick, 1),
		Storage:                   storage,
		Applied:                   s.applied.index,
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
	if bugzooOn && planted("apply-uncommitted") {
		rc.Applied = min(rc.Applied, s.hard.GetCommit()) // raft refuses an applied index beyond commit
	}
	if r.rn, err = raft.NewRawNode(rc); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	return r, nil
}

// Close closes the replica's store. After a failed Ready it returns that
// failure (wrapping engine.ErrStoreFailed) and leaves the files as a crash
// would: reopen the replica from its directory with New.
func (r *Replica) Close() error {
	if err := r.store.Close(); err != nil {
		return fmt.Errorf("replica %d: close: %w", r.id, err)
	}
	return nil
}

// seqGap is how far a restarted replica's proposal count jumps past the
// stored one. A leader sends its entries while its own copy syncs
// (SendEarly), so a crash may lose the count of proposals whose entries
// other replicas have and may yet commit: the restarted replica must
// never reuse their ids (and applies them as lost proposals of its own).
// Proposals between two synced batches are bounded by raft's uncommitted
// log size, far below the gap.
const seqGap = 1 << 32

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

// Commit returns the commit index this replica knows.
func (r *Replica) Commit() uint64 { return r.rn.BasicStatus().HardState.GetCommit() }

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
	if r.failed != nil {
		return
	}
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

// TransferLeader asks the leader to hand its leadership to the voter to:
// raft brings it up to date and has it campaign at once. While the
// transfer is in progress (an election timeout at most) the leader refuses
// proposals (ErrDropped). On a follower it does nothing.
func (r *Replica) TransferLeader(to uint64) {
	r.assertOutsideReady("TransferLeader")
	if r.failed == nil {
		r.rn.TransferLeader(to)
	}
}

// Status is what a replica knows of its group, for operators.
type Status struct {
	ID, Lead, Term  uint64
	Commit, Applied uint64
	SnapshotIndex   uint64
	Voters          []uint64
	// Progress, on the leader only: for each voter, the index raft knows it
	// has (match) and whether it heard from it lately.
	Progress map[uint64]Progress
}

// Progress is the leader's view of one member.
type Progress struct {
	Match        uint64
	RecentActive bool
}

// Status returns what the replica knows of its group.
func (r *Replica) Status() Status {
	st := r.rn.Status()
	out := Status{ID: r.id, Lead: st.Lead, Term: st.GetTerm(), Commit: st.GetCommit(), Applied: r.applied,
		Voters: r.Voters()}
	if sn, err := r.storage.Snapshot(); err == nil {
		out.SnapshotIndex = sn.GetMetadata().GetIndex()
	}
	if len(st.Progress) > 0 {
		out.Progress = map[uint64]Progress{}
		for id, p := range st.Progress {
			// map order: into another map
			out.Progress[id] = Progress{Match: p.Match, RecentActive: p.RecentActive}
		}
	}
	return out
}

// SendEarly sets f to be handed a leader's messages during Ready, before
// its batch syncs, when they may go out then (no new term or vote waits to
// be durable): its appends reach the followers while its own copy is
// written. f must not block, nor call the replica; the messages it was
// given are not in the Ready's Messages (a snapshot never goes early). Nil
// (the default) sends nothing early.
func (r *Replica) SendEarly(f func(msgs []*raftpb.Message)) { r.sendEarly = f }

// Voters returns the group's voters as of the applied index.
func (r *Replica) Voters() []uint64 { return slices.Clone(r.conf.GetVoters()) }

// Members returns what AddMember carried for each member it added (their
// addresses, say), as of the applied index: replicated state, in every
// replica's store and snapshot. Members bootstrapped together carried
// nothing.
func (r *Replica) Members() map[uint64][]byte {
	m := make(map[uint64][]byte, len(r.members))
	for id, v := range r.members {
		// map order: into another map
		m[id] = slices.Clone(v)
	}
	return m
}

// AddMember proposes, on the leader, to add the replica id to the group as
// a voter. The new replica is made with Config.Join: it starts empty and
// catches up from the leader (a snapshot, then the log). RemoveMember
// proposes to remove the voter id (the leader itself included: it steps
// down once the change is applied). Either takes effect when its entry is
// applied (Applied.Voters, Voters); AddMember's data (at most
// memberDataMax bytes) is kept for the member in replicated state
// (Members): how to reach it. Raft takes one change at a time: one
// proposed while another is still unapplied is dropped by raft (its entry
// becomes an empty one); watch Voters and propose again.
func (r *Replica) AddMember(id uint64, data []byte) error {
	if len(data) > memberDataMax {
		return fmt.Errorf("replica: member data of %d bytes: at most %d", len(data), memberDataMax)
	}
	return r.changeMembers(raftpb.ConfChangeType_ConfChangeAddNode, id, data)
}

// memberDataMax bounds what AddMember keeps for a member.
const memberDataMax = 1024

// RemoveMember: see AddMember.
func (r *Replica) RemoveMember(id uint64) error {
	return r.changeMembers(raftpb.ConfChangeType_ConfChangeRemoveNode, id, nil)
}

func (r *Replica) changeMembers(t raftpb.ConfChangeType, id uint64, data []byte) error {
	r.assertOutsideReady("change members")
	if r.failed != nil {
		return r.failed
	}
	voters := r.conf.GetVoters()
	switch {
	case id == 0:
		return fmt.Errorf("replica: member id must be > 0")
	case t == raftpb.ConfChangeType_ConfChangeAddNode && slices.Contains(voters, id):
		return fmt.Errorf("replica: %d is a voter already", id)
	case t == raftpb.ConfChangeType_ConfChangeRemoveNode && !slices.Contains(voters, id):
		return fmt.Errorf("replica: %d is not a voter", id)
	case t == raftpb.ConfChangeType_ConfChangeRemoveNode && len(voters) == 1:
		return fmt.Errorf("replica: %d is the last voter", id)
	}
	if st := r.rn.BasicStatus(); st.RaftState != raft.StateLeader {
		return &NotLeader{Leader: st.Lead}
	}
	if _, err := r.startTerm(r.stampMax); err != nil {
		return err
	}
	cc := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: t.Enum(), NodeId: new(id)}}, Context: data}
	if err := r.rn.ProposeConfChange(cc); err != nil {
		if errors.Is(err, raft.ErrProposalDropped) {
			return ErrDropped
		}
		return fmt.Errorf("replica: propose a membership change: %w", err)
	}
	return nil
}

// Step hands the replica a raft message from a peer. An error means the
// message was not for it (a local message type, an unknown peer): drop it.
func (r *Replica) Step(m *raftpb.Message) error {
	r.assertOutsideReady("Step")
	if r.failed != nil {
		return r.failed
	}
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
	if r.failed != nil {
		return ProposalID{}, r.failed
	}
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

// HasReady reports whether Ready has work (never, once the store failed).
func (r *Replica) HasReady() bool {
	return r.failed == nil && (r.rn.HasReady() || len(r.reads) > 0 && r.reads[0].index <= r.applied)
}

// Ready makes the new log entries, the hard state and the applied entries
// durable, and returns what the caller must send and deliver; call Advance
// after. It installs a snapshot raft received (replacing the core), stores
// the new entries, applies the newly committed ones to the core in log
// order and, when the log has grown CompactAfter entries beyond its last
// snapshot, takes a snapshot at the applied index and drops the entries
// before it; all of that is one batch in the store, committed with one
// fsync before Ready returns.
//
// An error (wrapping engine.ErrStoreFailed) means the store failed: the
// replica has stopped, nothing of this Ready may be sent or delivered, and
// the only call left is Close (then reopen it from its directory with New).
func (r *Replica) Ready() (Ready, error) {
	r.assertOutsideReady("Ready")
	if r.failed != nil {
		return Ready{}, r.failed
	}
	r.inReady = true
	rd := r.rn.Ready()
	out := &r.out
	clear(out.Events)
	out.Applied, out.Replies, out.Events, out.Lost = out.Applied[:0], out.Replies[:0], out.Events[:0], out.Lost[:0]
	out.Messages, out.Reads = nil, out.Reads[:0]
	for _, rs := range rd.ReadStates {
		r.reads = append(r.reads, readState{id: readID(rs.RequestCtx), index: rs.Index})
	}
	snap := !raft.IsEmptySnap(rd.Snapshot)
	if !snap && len(rd.Entries) == 0 && raft.IsEmptyHardState(rd.HardState) && len(rd.CommittedEntries) == 0 {
		out.Messages = rd.Messages // nothing to make durable: no batch, no fsync
		r.readsDue()
		return *out, nil
	}
	b, err := r.store.NewBatch()
	if err != nil {
		return r.stop(err)
	}
	r.batch, r.coreWrote, r.confChanged = b, false, false
	defer func() { r.batch = nil }()
	if snap {
		if err := r.installSnapshot(rd.Snapshot); err != nil {
			b.Close()
			return r.stop(err)
		}
	}
	if len(rd.Entries) > 0 {
		if err := r.putEntries(rd.Entries); err != nil {
			b.Close()
			return r.stop(err)
		}
		r.appended(rd.Entries)
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := b.Put(keyHard, mustMarshal(rd.HardState)); err != nil {
			b.Close()
			return r.stop(err)
		}
	}
	ents := rd.CommittedEntries
	if bugzooOn && planted("apply-uncommitted") {
		ents = r.applyOnAppend(rd.CommittedEntries, rd.Entries) // the log past applied, committed or not
	}
	for _, ent := range ents {
		if err := r.apply(ent); err != nil {
			b.Close()
			return r.stop(err)
		}
	}
	compact, err := false, error(nil)
	if !snap { // an installed snapshot is the log's new start already
		compact, err = r.compactLog()
	}
	if err == nil {
		err = r.putApplied(snap)
	}
	if err != nil {
		b.Close()
		return r.stop(err)
	}
	// A leader may send its appends while its own copy syncs (raft's
	// thesis, 10.2.1): it counts itself among the copies, but acts on the
	// acknowledgements only after this Ready, so only once its copy is
	// durable. Not when the hard state has a new term or vote, which must
	// be durable before any message that depends on it.
	early := r.sendEarly != nil && !snap && r.IsLeader() &&
		(raft.IsEmptyHardState(rd.HardState) || rd.HardState.GetTerm() == r.hardTerm && rd.HardState.GetVote() == r.hardVote)
	if early && len(rd.Messages) > 0 {
		// Snapshots wait: their sender must report how each went, which it
		// may not do inside a Ready.
		var now, later []*raftpb.Message
		for _, m := range rd.Messages {
			if m.GetType() == raftpb.MessageType_MsgSnap {
				later = append(later, m)
			} else {
				now = append(now, m)
			}
		}
		if len(now) > 0 {
			r.sendEarly(now)
		}
		rd.Messages = later
	}
	if err := b.Commit(); err != nil {
		return r.stop(err)
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		r.hardTerm, r.hardVote = rd.HardState.GetTerm(), rd.HardState.GetVote()
	}
	// Durable: now raft's in-memory log may follow.
	if snap {
		if err := r.storage.ApplySnapshot(rd.Snapshot); err != nil {
			panic(fmt.Sprintf("replica %d: memory storage: %v", r.id, err)) // raft sends only newer snapshots
		}
	}
	if err := r.storage.Append(rd.Entries); err != nil {
		panic(fmt.Sprintf("replica %d: memory storage: %v", r.id, err)) // memory cannot fail
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := r.storage.SetHardState(rd.HardState); err != nil {
			panic(fmt.Sprintf("replica %d: memory storage: %v", r.id, err))
		}
	}
	if compact {
		data, err := r.snapshotData()
		if err != nil {
			return r.stop(err)
		}
		// A restart may have put the in-memory snapshot at this index
		// already (open): then only the entries go.
		if sn, _ := r.storage.Snapshot(); sn.GetMetadata().GetIndex() < r.applied {
			if _, err := r.storage.CreateSnapshot(r.applied, r.conf, data); err != nil {
				panic(fmt.Sprintf("replica %d: memory storage: snapshot at %d: %v", r.id, r.applied, err))
			}
		}
		if err := r.storage.Compact(r.applied); err != nil {
			panic(fmt.Sprintf("replica %d: memory storage: compact to %d: %v", r.id, r.applied, err))
		}
	}
	out.Messages = rd.Messages
	r.readsDue()
	return *out, nil
}

// Read asks the leader for a linearizable read, named id by the caller
// (distinct among its reads in flight): raft's ReadIndex (ReadOnlySafe)
// confirms with a quorum that this replica still leads and notes its
// commit index; once the core has applied that index, a Ready lists id in
// Reads, and the caller answers the read from Core(). So a read sees every
// write acknowledged before it was asked, even on a leader that was
// deposed without knowing it (it cannot confirm, and the read never comes
// back). A read raft could not confirm (leadership lost, a new leader not
// yet sure of its commit index) is dropped without a word: the caller
// times it out and asks again. A follower refuses with *NotLeader.
func (r *Replica) Read(id uint64) error {
	r.assertOutsideReady("Read")
	if r.failed != nil {
		return r.failed
	}
	if st := r.rn.BasicStatus(); st.RaftState != raft.StateLeader {
		return &NotLeader{Leader: st.Lead}
	}
	if bugzooOn && planted("read-without-index") {
		r.reads = append(r.reads, readState{id: id, index: r.applied}) // the leader believes it leads
		return nil
	}
	var ctx [8]byte
	binary.BigEndian.PutUint64(ctx[:], id)
	r.rn.ReadIndex(ctx[:])
	return nil
}

func readID(ctx []byte) uint64 {
	if len(ctx) != 8 {
		panic(fmt.Sprintf("replica: read context %x: not one of ours", ctx))
	}
	return binary.BigEndian.Uint64(ctx)
}

// readsDue moves the reads whose index the core has applied to the Ready.
func (r *Replica) readsDue() {
	i := 0
	for i < len(r.reads) && r.reads[i].index <= r.applied {
		r.out.Reads = append(r.out.Reads, r.reads[i].id)
		i++
	}
	r.reads = append(r.reads[:0], r.reads[i:]...)
}

// stop stops the replica after its store failed.
func (r *Replica) stop(err error) (Ready, error) {
	if !errors.Is(err, engine.ErrStoreFailed) {
		err = fmt.Errorf("%w: %w", engine.ErrStoreFailed, err)
	}
	r.failed = fmt.Errorf("replica %d: %w", r.id, err)
	r.inReady = false // nothing of this Ready goes out, and there is no Advance
	return Ready{}, r.failed
}

// putEntries writes new log entries to the batch, deleting the stored
// entries they replace (raft overwrites a conflicting suffix).
func (r *Replica) putEntries(ents []*raftpb.Entry) error {
	b := r.batch
	last, err := r.storage.LastIndex()
	if err != nil {
		return err
	}
	if newLast := ents[len(ents)-1].GetIndex(); newLast < last {
		if err := b.DeleteRange(entryKey(newLast+1), entryKey(last+1)); err != nil {
			return err
		}
	}
	for _, ent := range ents {
		if err := b.Put(entryKey(ent.GetIndex()), mustMarshal(ent)); err != nil {
			return err
		}
	}
	return nil
}

// putApplied writes the applied state to the batch, whatever else it
// holds: even an entry that changed no record (an empty entry, a tick that
// fired nothing) moves applied, and the clock.
func (r *Replica) putApplied(snap bool) error {
	a := appliedState{index: r.applied, term: r.appliedTerm, now: r.core.Now(), failover: r.appliedFailover, seq: r.seq}
	if bugzooOn && planted("applied-with-writes-only") && !snap && !r.coreWrote {
		a, a.seq = r.storedApplied, r.seq // the index and clock of the last Ready with records
	}
	r.storedApplied = a
	return r.batch.Put(keyApplied, a.append(nil))
}

// compactLog, when the log holds more than CompactAfter applied entries
// beyond its snapshot, moves the snapshot to the applied index in the
// batch (its metadata; the entries up to it deleted) and says so: after
// the commit, Ready builds the snapshot's data from the store and compacts
// the in-memory log alike.
func (r *Replica) compactLog() (bool, error) {
	first, err := r.storage.FirstIndex()
	if err != nil {
		return false, err
	}
	if r.applied < first || r.applied-first < r.compact && !r.confChanged {
		return false, nil
	}
	if bugzooOn && planted("apply-uncommitted") && r.applied > r.rn.BasicStatus().HardState.GetCommit() {
		return false, nil // raft still has to hand out the committed entries up to applied
	}
	meta := &raftpb.SnapshotMetadata{Index: new(r.applied), Term: new(r.appliedTerm), ConfState: r.conf}
	if err := r.batch.DeleteRange(entryKey(0), entryKey(r.applied+1)); err != nil {
		return false, err
	}
	return true, r.batch.Put(keySnap, mustMarshal(meta))
}

// installSnapshot replaces the core by a snapshot's (the leader's core at
// the snapshot's index, exactly) in the batch: the core's records and the
// stored log are wiped, the snapshot's records and metadata written, and
// applied moves to its index. The entries it skips are applied nowhere
// here: this replica's proposals still pending are Lost (their outcome is
// unknown; a retry with the same request ids gets the recorded outcome).
func (r *Replica) installSnapshot(snap *raftpb.Snapshot) error {
	b, meta := r.batch, snap.GetMetadata()
	if err := b.DeleteRecords(); err != nil {
		return err
	}
	if err := b.DeleteRange(entryKey(0), entryKey(maxIndex)); err != nil {
		return err
	}
	if err := b.DeleteRange(memberStart, memberEnd); err != nil {
		return err
	}
	members := map[uint64][]byte{}
	now, failover, err := decodeSnapshot(snap.GetData(), func(key, value []byte) error {
		if len(key) == 10 && key[0] == engine.ForeignPrefix && key[1] == 'm' {
			members[binary.BigEndian.Uint64(key[2:])] = slices.Clone(value)
		}
		return b.Put(key, value)
	})
	if err != nil {
		return err
	}
	records := func(f func(key, value []byte) error) error { // the core's records alone
		_, _, err := decodeSnapshot(snap.GetData(), func(key, value []byte) error {
			if len(key) > 0 && key[0] == engine.ForeignPrefix {
				return nil
			}
			return f(key, value)
		})
		return err
	}
	var core *engine.Core
	if bugzooOn && planted("restart-with-grace") {
		core, err = engine.Restore(r.lim, now, records)
		if err == nil {
			core.WriteDeadlines()
		}
	} else {
		core, err = engine.RestoreExact(r.lim, now, records)
	}
	if err != nil {
		return fmt.Errorf("replica %d: install snapshot %d: %w", r.id, meta.GetIndex(), err)
	}
	if bugzooOn && planted("token-not-replicated") {
		keepTokenCounter(core, r.core) // the counter kept as the replica's own, like its proposal count
	}
	if err := b.Put(keySnap, mustMarshal(meta)); err != nil {
		return err
	}
	if err := b.Put(keyConf, mustMarshal(meta.GetConfState())); err != nil {
		return err
	}
	r.core, r.conf, r.members = core, meta.GetConfState(), members
	r.applied, r.appliedTerm, r.appliedFailover = meta.GetIndex(), meta.GetTerm(), failover
	r.stampMax = max(r.stampMax, now)
	r.loseAll()
	return nil
}

// loseAll drops every pending proposal: a snapshot skipped their entries,
// if they were committed at all.
func (r *Replica) loseAll() {
	first := len(r.out.Lost)
	for seq, p := range r.pending {
		// map order: sorted below
		delete(r.pending, seq)
		if p.kind == kindTurn {
			r.out.Lost = append(r.out.Lost, ProposalID{Replica: r.id, Seq: seq})
		}
	}
	slices.SortFunc(r.out.Lost[first:], func(a, b ProposalID) int { return cmp.Compare(a.Seq, b.Seq) })
	r.tickSeq, r.lostBelow = 0, r.seq
}

// ReportSnapshot tells the leader how sending a snapshot (a MsgSnap in
// rd.Messages) to peer to ended: delivered, or failed (lost, refused,
// the peer unreachable). Raft sends that peer nothing more until told,
// so the caller must report every MsgSnap it sends, one way or the other.
func (r *Replica) ReportSnapshot(to uint64, failed bool) {
	r.assertOutsideReady("ReportSnapshot")
	status := raft.SnapshotFinish
	if failed {
		status = raft.SnapshotFailure
	}
	r.rn.ReportSnapshot(to, status)
}

// ReportUnreachable tells the leader that a message to peer to could not
// be sent: raft then probes it again instead of streaming appends to it.
func (r *Replica) ReportUnreachable(to uint64) {
	r.assertOutsideReady("ReportUnreachable")
	r.rn.ReportUnreachable(to)
}

// Advance tells the replica that the last Ready was handled: its messages
// handed to the network, its replies and events delivered. Never after a
// Ready that failed.
func (r *Replica) Advance() {
	if !r.inReady || r.failed != nil {
		panic("replica: Advance without a successful Ready")
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

// apply applies one committed entry to the core and adds the core's writes
// to the Ready's batch.
func (r *Replica) apply(ent *raftpb.Entry) error {
	index, term := ent.GetIndex(), ent.GetTerm()
	if index != r.applied+1 {
		panic(fmt.Sprintf("replica %d: applies entry %d after %d", r.id, index, r.applied))
	}
	r.applied, r.appliedTerm = index, term
	r.loseOlder(term)
	if ent.GetType() != raftpb.EntryNormal {
		return r.applyConfChange(ent)
	}
	if len(ent.Data) == 0 { // a new leader's empty entry
		r.out.Applied = append(r.out.Applied, Applied{Index: index, Term: term})
		return nil
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
	if e.proposer == r.id && !mine && e.seq > r.lostBelow {
		panic(fmt.Sprintf("replica %d: applies its own entry %d (seq %d) that it has no record of", r.id, index, e.seq))
	}
	answer := mine || bugzooOn && planted("follower-answers")
	at := e.at
	if bugzooOn && planted("apply-own-clock") {
		at = max(r.clock, r.core.Now())
	}
	if bugzooOn && planted("reply-table-not-replicated") {
		recordReplies(r.core, mine) // the outcomes kept only where they are answered
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
	crd := r.core.Ready()
	r.coreWrote = r.coreWrote || crd.Writes.Len() > 0
	if err := r.batch.AddWrites(crd.Writes); err != nil {
		return err
	}
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
		return nil
	}
	if answer && !(bugzooOn && planted("reply-on-append")) {
		r.out.Replies = append(r.out.Replies, Reply{Proposal: id, Index: index, Term: term, Results: results})
	}
	return nil
}

// applyConfChange applies a membership change: raft's configuration
// changes, and so does the stored one, in the batch.
func (r *Replica) applyConfChange(ent *raftpb.Entry) error {
	var cc raftpb.ConfChangeI
	switch ent.GetType() {
	case raftpb.EntryConfChange:
		cc = &raftpb.ConfChange{}
	case raftpb.EntryConfChangeV2:
		cc = &raftpb.ConfChangeV2{}
	default:
		panic(fmt.Sprintf("replica %d: entry %d of unknown type %v", r.id, ent.GetIndex(), ent.GetType()))
	}
	if err := proto.Unmarshal(ent.GetData(), cc.(proto.Message)); err != nil {
		panic(fmt.Sprintf("replica %d: entry %d: %v", r.id, ent.GetIndex(), err)) // raft and Members wrote it
	}
	r.conf, r.confChanged = r.rn.ApplyConfChange(cc), true
	r.out.Applied = append(r.out.Applied, Applied{Index: ent.GetIndex(), Term: ent.GetTerm(),
		Voters: slices.Clone(r.conf.GetVoters())})
	v2 := cc.AsV2()
	for _, c := range v2.GetChanges() {
		id := c.GetNodeId()
		switch c.GetType() {
		case raftpb.ConfChangeType_ConfChangeAddNode:
			if len(v2.GetContext()) == 0 {
				continue
			}
			r.members[id] = slices.Clone(v2.GetContext())
			if err := r.batch.Put(memberKey(id), v2.GetContext()); err != nil {
				return err
			}
		case raftpb.ConfChangeType_ConfChangeRemoveNode:
			delete(r.members, id)
			if err := r.batch.Delete(memberKey(id)); err != nil {
				return err
			}
		}
	}
	return r.batch.Put(keyConf, mustMarshal(r.conf))
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
