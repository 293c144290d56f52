package sim

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/replica"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

// A cluster run replaces the one node with a raft group of Options.Nodes
// replicas (package replica), each a replicaSim with its own drifting
// clock, stepped in virtual time. Clients talk to one member at a time
// (protocol.Members): a follower refuses with the leader's id, a silent
// member is left for the next. Raft's messages cross their own network:
// delayed, reordered, dropped, duplicated, and cut by layouts (a replica
// alone, the leader cut off from its followers but not from clients, a
// split with clients on either side, a one-way link). Under load the leader
// is asked to transfer its leadership, the group's membership changes (a
// new replica joins and catches up by snapshot, a voter leaves, the leader
// among them), and readers ask for linearizable reads (ReadIndex).
//
// The checkers of a one-node run all hold, plus the cluster's: at most one
// leader per term; every replica applies the same entry at each index;
// equal states at equal applied indexes; an answer only from the replica
// that proposed the entry, and only for an entry that was committed (it is
// in the applied log, at its index, in its term); a read answered only
// from a state that applied every entry committed before it was asked. The
// model is stepped along the log: each entry, the first time a replica
// applies it, with its stamp (Step for a client turn, Tick for a tick
// entry, Failover then Tick for a new leader's first entry); the
// proposer's answers must equal the model's, and the front-running
// replica's whole state the model's.

// Cluster timing: raft counts ticks; these fix what a tick is.
const (
	tickInterval  = 20 * time.Millisecond
	electionTicks = 10 // 200 to 400 ms without a leader before a campaign
	heartbeatTick = 2
	// replicasMax bounds the replicas a run makes (membership changes
	// add new ones).
	replicasMax = 16
	// leaderBound is how long after the heal a leader known to every
	// replica must exist.
	leaderBound = 3 * time.Second
	// compactAfter is small, so that runs compact their logs and send
	// snapshots to replicas that fell behind.
	compactAfter = 256
	// hashEvery: the replicas' states are compared at the indexes that
	// are multiples of it (a state hash costs a walk of the whole state).
	hashEvery = 32
	// frontEvery: the front-running replica's whole state is compared with
	// the model's, and checked, every frontEvery*CheckEvery Readies that
	// applied entries (its answers at every entry).
	frontEvery = 4
)

type clusterSim struct {
	s     *Sim
	reps  []*replicaSim // every replica ever made: replica i has id i+1
	peers []uint64      // the group's first voters
	// joining is the replica made to join the group whose addition is not
	// yet applied (-1: none).
	joining int

	// The raft network's layout: the side of each replica and of each
	// client (-1: it reaches every replica); a link from oneWay[0] to
	// oneWay[1] drops everything (-1: none).
	side      []int
	cside     []int
	oneWay    [2]int
	layoutGen uint64

	// The checkers' view of the log.
	log        map[uint64]logRec // every entry applied, by index
	model      *spec.Model
	modelIndex uint64
	modelOK    bool
	invOK      bool
	last       *spec.State
	bufs       [2]engine.StateBuf       // checkState builds in the one last is not in
	expect     map[uint64][]spec.Result // the model's answers to turns not yet answered
	hashAt     map[uint64]uint64        // state hashes at sampled indexes
	leaders    map[uint64]uint64        // term -> the replica that led it
	stateSeen  int                      // front-running states compared with the model
	shown      uint64                   // the highest index whose state went to Config.States
	// reads are the readers' reads not yet answered: the highest index any
	// replica had applied (so committed) when each was asked.
	reads   map[uint64]uint64
	readSeq uint64
}

type logRec struct {
	term     uint64
	proposal replica.ProposalID
}

// replicaSim is one member: a replica on its own clock.
type replicaSim struct {
	cl  *clusterSim
	idx int
	id  uint64
	r   *replica.Replica
	disk
	up    bool
	join  bool // made to join a running group (Config.Join)
	gone  bool // removed from the group: never up again
	busy  bool // a Ready's outputs wait for its commit
	gen   uint64
	clk   clock
	inbox []*message
	props map[replica.ProposalID][]*message
}

// replicaOut is what a Ready produced, held until its commit completes.
type replicaOut struct {
	msgs    []*raftpb.Message
	replies []replica.Reply
	events  []spec.Event
}

func newClusterSim(s *Sim) *clusterSim {
	o := &s.opts
	cl := &clusterSim{s: s, oneWay: [2]int{-1, -1}, log: map[uint64]logRec{}, model: spec.NewModel(s.lim),
		modelOK: true, invOK: true, expect: map[uint64][]spec.Result{}, hashAt: map[uint64]uint64{},
		leaders: map[uint64]uint64{}, modelIndex: 1, joining: -1, reads: map[uint64]uint64{}} // a group starts at index 1
	for i := range o.Nodes {
		cl.peers = append(cl.peers, uint64(i+1))
	}
	for range o.Nodes {
		cl.newReplica()
	}
	return cl
}

// newReplica makes the next replica, with a clock of its own.
func (cl *clusterSim) newReplica() *replicaSim {
	s, o := cl.s, &cl.s.opts
	i := len(cl.reps)
	n := &replicaSim{cl: cl, idx: i, id: uint64(i + 1), props: map[replica.ProposalID][]*message{},
		disk: disk{mem: vfs.NewCrashableMem()}}
	n.clk = clock{offset: spec.Time(s.rng.Int64N(int64(o.SkewMax) + 1))}
	if o.DriftPPM > 0 {
		half := o.DriftPPM / 2
		n.clk.ppm = s.rng.Int64N(2*half+1) - half
	}
	cl.reps = append(cl.reps, n)
	cl.side = append(cl.side, 0)
	return n
}

func (cl *clusterSim) start() {
	s := cl.s
	cl.cside = make([]int, len(s.clients))
	for i := range cl.cside {
		cl.cside[i] = -1
	}
	for _, n := range cl.reps {
		if !n.open() {
			return
		}
		// Replicas start ticking out of step.
		n.scheduleTick(spec.Time(s.rng.Int64N(int64(tickInterval))))
	}
	if o := &s.opts; o.RaftPartitionEvery > 0 {
		s.schedule(event{at: s.at(gap(s.rng, o.RaftPartitionEvery)), kind: evLayout})
	}
	if o := &s.opts; o.TransferEvery > 0 {
		s.schedule(event{at: s.at(gap(s.rng, o.TransferEvery)), kind: evTransfer})
	}
	if o := &s.opts; o.MemberEvery > 0 {
		s.schedule(event{at: s.at(gap(s.rng, o.MemberEvery)), kind: evMembers})
	}
	if o := &s.opts; o.ReadEvery > 0 {
		s.schedule(event{at: s.at(gap(s.rng, o.ReadEvery)), kind: evRead})
	}
}

func (n *replicaSim) local() spec.Time { return n.clk.local(n.cl.s.now) }

// open opens the replica's store: a new group's member at the start, a
// restart from what its disk kept after a crash.
func (n *replicaSim) open() bool {
	s := n.cl.s
	fs := n.disk.open()
	var r *replica.Replica
	err := catch(func() error {
		var err error
		r, err = replica.New(replica.Config{ID: n.id, Peers: n.cl.peers, Join: n.join, Limits: s.lim,
			ElectionTick: electionTicks, HeartbeatTick: heartbeatTick,
			FS: fs, Dir: storeDir, CompactAfter: compactAfter})
		return err
	})
	if err != nil {
		s.crashed(fmt.Sprintf("replica %d: open at %v: %v", n.id, s.now, err))
		return false
	}
	n.r, n.up, n.busy = r, true, false
	n.gen++
	// As in production (package cluster), a leader's appends leave while
	// its own copy is being committed.
	r.SendEarly(func(msgs []*raftpb.Message) {
		for _, m := range msgs {
			n.cl.sendRaft(n.idx, m)
		}
	})
	return true
}

// ---- crashes and disk faults ----

// crash cuts the power of a replica (the leader half the time), now or in
// the middle of its next commit, if fewer than half are down: a majority
// stays to make progress.
func (cl *clusterSim) crash() {
	s := cl.s
	down, members := 0, 0
	for _, n := range cl.reps {
		if !n.gone {
			members++
			if !n.up {
				down++
			}
		}
	}
	if 2*(down+1) >= members+1 {
		return
	}
	i := s.rng.IntN(len(cl.reps))
	if lead := cl.leaderIdx(); lead >= 0 && s.rng.IntN(2) == 0 {
		i = lead
	}
	n := cl.reps[i]
	if !n.up {
		return
	}
	if percent(s.rng, s.opts.MidCommitPercent) {
		n.crashNext = true
		return
	}
	s.stats.Crashes++
	s.tr.ev(s.now, "crash").int("replica", int64(n.id)).bool("mid_commit", false).bool("in_commit", n.busy).end()
	n.down(n.crashImage(s.rng))
}

// failSoon fails a WAL write of a replica's next commit: it stops, the rest
// go on.
func (cl *clusterSim) failSoon() {
	s := cl.s
	if n := cl.reps[s.rng.IntN(len(cl.reps))]; n.up {
		n.failNext = true
	}
}

// down stops the replica; image is what its disk holds now. It restarts
// after a while (at once once the faults have healed).
func (n *replicaSim) down(image *vfs.MemFS) {
	s := n.cl.s
	n.shutdown()
	n.mem = image
	for _, c := range s.clients {
		if c.member == n.idx {
			c.nodeDown()
			s.schedule(event{at: s.at(between(s.rng, time.Millisecond, 50*time.Millisecond)), kind: evConnect, c: c.idx})
		}
	}
	at := s.now
	if s.faulty() {
		at = s.at(between(s.rng, time.Millisecond, s.opts.DownMax+time.Millisecond))
	}
	s.schedule(event{at: at, kind: evRestart, n: n.idx, gen: n.gen})
}

// shutdown closes the replica's store (after a failed write it is left as
// it is: its background work writes to a disk nobody reads again).
func (n *replicaSim) shutdown() {
	if n.r != nil {
		_ = catch(func() error { return n.r.Close() })
		n.r = nil
	}
	n.up, n.busy, n.inbox = false, false, nil
	clear(n.props)
	n.gen++
}

func (n *replicaSim) restart(gen uint64) {
	if gen != n.gen || n.up || n.gone {
		return
	}
	s := n.cl.s
	s.tr.ev(s.now, "restart").int("replica", int64(n.id)).end()
	if n.open() {
		n.scheduleTick(s.at(between(s.rng, 0, tickInterval)))
	}
}

func (n *replicaSim) scheduleTick(at spec.Time) {
	n.cl.s.schedule(event{at: at, kind: evReplicaTick, n: n.idx, gen: n.gen})
}

// tick: one tick interval of the replica's clock passed.
func (n *replicaSim) tick(gen uint64) {
	if gen != n.gen || !n.up {
		return
	}
	s := n.cl.s
	local := n.local()
	err := catch(func() error { n.r.Tick(local); return nil })
	if err != nil {
		s.crashed(fmt.Sprintf("replica %d: tick at %v: %v", n.id, s.now, err))
		return
	}
	n.pump()
	n.scheduleTick(max(n.clk.trueAt(local+spec.Time(tickInterval)), s.now+1))
}

// arrive: a client's message reaches this member.
func (cl *clusterSim) arrive(m *message) {
	s := cl.s
	c := s.clients[m.client]
	n := cl.reps[m.member]
	if !n.up || m.epoch != c.epoch || c.cutOff() || !cl.clientLink(m.client, m.member) {
		s.tr.ev(s.now, "lost").int("c", int64(m.client)).int("call", int64(m.call)).str("at", "node").end()
		return
	}
	n.inbox = append(n.inbox, m)
	n.pump()
}

// pump proposes what waits and handles raft's Ready, unless a commit is in
// progress: like the production loop, one Ready at a time.
func (n *replicaSim) pump() {
	if !n.up || n.busy {
		return
	}
	n.propose()
	if !n.up || !n.r.HasReady() {
		return
	}
	s := n.cl.s
	n.armFaults(s.rng)
	var rd replica.Ready
	err := catch(func() error {
		var err error
		rd, err = n.r.Ready()
		return err
	})
	image, failed := n.inj.fired()
	switch {
	case errors.Is(err, engine.ErrStoreFailed) && failed:
		s.stats.DiskFaults++
		s.tr.ev(s.now, "disk-fault").int("replica", int64(n.id)).end()
		n.down(n.crashImage(s.rng))
		return
	case err != nil:
		s.crashed(fmt.Sprintf("replica %d: ready at %v: %v", n.id, s.now, err))
		return
	case image != nil:
		s.stats.Crashes++
		s.tr.ev(s.now, "crash").int("replica", int64(n.id)).bool("mid_commit", true).end()
		n.down(image)
		return
	}
	out := &replicaOut{msgs: rd.Messages, replies: rd.Replies, events: append([]spec.Event(nil), rd.Events...)}
	for _, id := range rd.Lost {
		delete(n.props, id) // their clients resend
	}
	n.cl.observe(n, &rd)
	n.r.Advance()
	n.busy = true
	s.schedule(event{at: s.at(between(s.rng, s.opts.CommitMin, s.opts.CommitMax)), kind: evReplicaOut, n: n.idx,
		gen: n.gen, out: out})
}

// propose hands the inbox to raft: on the leader as turns of up to
// InputsPerBatchMax inputs; elsewhere each is refused with the leader's id.
func (n *replicaSim) propose() {
	s := n.cl.s
	for len(n.inbox) > 0 {
		k := min(len(n.inbox), s.lim.InputsPerBatchMax)
		msgs := n.inbox[:k:k]
		inputs := make([]spec.Input, k)
		for i, m := range msgs {
			inputs[i] = m.input
		}
		var id replica.ProposalID
		err := catch(func() error {
			var err error
			id, err = n.r.Propose(n.local(), inputs)
			return err
		})
		var nl *replica.NotLeader
		switch {
		case errors.As(err, &nl):
			n.refuse(n.inbox, nl.Leader)
			n.inbox = nil
			return
		case errors.Is(err, replica.ErrDropped):
			n.inbox = nil // the clients resend
			return
		case err != nil:
			s.crashed(fmt.Sprintf("replica %d: propose at %v: %v", n.id, s.now, err))
			return
		}
		n.inbox = n.inbox[k:]
		n.props[id] = msgs
	}
}

// refuse answers msgs: this member is not the leader; leader is (0: none known).
func (n *replicaSim) refuse(msgs []*message, leader uint64) {
	s := n.cl.s
	for _, m := range msgs {
		s.transmit(&message{client: m.client, epoch: m.epoch, member: m.member, session: m.session, call: m.call,
			notLeader: true, leader: int(leader)}, evClientArrive)
	}
}

// sent: the commit of a Ready finished; its outputs go out.
func (n *replicaSim) sent(gen uint64, out *replicaOut) {
	if gen != n.gen || !n.up {
		return // the replica crashed before its commit finished: nothing goes out
	}
	cl := n.cl
	s := cl.s
	n.busy = false
	for _, m := range out.msgs {
		cl.sendRaft(n.idx, m)
	}
	var sent turnOut
	for i := range out.replies {
		rep := &out.replies[i]
		msgs, ok := n.props[rep.Proposal]
		if !ok {
			continue
		}
		delete(n.props, rep.Proposal)
		sent.msgs = append(sent.msgs, msgs...)
		sent.replies = append(sent.replies, rep.Results...)
		for j, m := range msgs {
			s.sendToClient(&message{client: m.client, epoch: m.epoch, member: m.member, session: m.session,
				call: m.call, reply: rep.Results[j]})
		}
	}
	sent.events = out.events
	cl.sentGrants(&sent)
	s.sendEvents(out.events)
	n.pump()
}

// ---- the raft network ----

func (cl *clusterSim) linkUp(from, to int) bool {
	return cl.side[from] == cl.side[to] && !(cl.oneWay[0] == from && cl.oneWay[1] == to)
}

func (cl *clusterSim) clientLink(c, member int) bool {
	return cl.cside[c] < 0 || cl.cside[c] == cl.side[member]
}

func (cl *clusterSim) sendRaft(from int, m *raftpb.Message) {
	s := cl.s
	to := int(m.GetTo()) - 1
	if to < 0 || to >= len(cl.reps) {
		return
	}
	if s.faulty() && (!cl.linkUp(from, to) || percent(s.rng, s.opts.DropPercent)) {
		if m.GetType() == raftpb.MessageType_MsgSnap {
			cl.reps[from].r.ReportSnapshot(m.GetTo(), true)
		}
		return
	}
	gen := cl.reps[from].gen
	s.schedule(event{at: s.delay(), kind: evRaftArrive, n: to, raft: m, from: from, gen: gen})
	if s.faulty() && percent(s.rng, s.opts.DupPercent) {
		s.schedule(event{at: s.delay(), kind: evRaftArrive, n: to, raft: m, from: from, gen: gen})
	}
}

func (cl *clusterSim) raftArrive(e *event) {
	s := cl.s
	n := cl.reps[e.n]
	delivered := n.up && !(s.faulty() && !cl.linkUp(e.from, e.n))
	if e.raft.GetType() == raftpb.MessageType_MsgSnap && e.gen == cl.reps[e.from].gen && cl.reps[e.from].up {
		// The sender learns how its snapshot went (a duplicate's second
		// copy tells it again, which raft ignores).
		from := cl.reps[e.from]
		from.r.ReportSnapshot(e.raft.GetTo(), !delivered)
		defer from.pump()
	}
	if !delivered {
		return // down, or cut while in flight
	}
	if s.tr != nil {
		m := e.raft
		s.tr.ev(s.now, "raft").int("from", int64(m.GetFrom())).int("to", int64(m.GetTo())).str("type", m.GetType().String()).
			int("term", int64(m.GetTerm())).int("index", int64(m.GetIndex())).int("commit", int64(m.GetCommit())).
			int("entries", int64(len(m.GetEntries()))).end()
	}
	if err := catch(func() error { _ = n.r.Step(e.raft); return nil }); err != nil {
		s.crashed(fmt.Sprintf("replica %d: step at %v: %v", n.id, s.now, err))
		return
	}
	n.pump()
}

// layout changes the raft network's layout, in the safety phase.
func (cl *clusterSim) layout() {
	s := cl.s
	if !s.faulty() {
		return
	}
	o := &s.opts
	cl.reset()
	leader := cl.leaderIdx()
	desc := "whole"
	switch s.rng.IntN(4) {
	case 0: // one replica (often the leader) cut off from the others; clients reach all
		i := s.rng.IntN(len(cl.reps))
		if leader >= 0 && s.rng.IntN(2) == 0 {
			i = leader
		}
		cl.side[i] = 1
		desc = fmt.Sprintf("isolated %d", i+1)
	case 1: // a split, clients on either side
		for i := range cl.side {
			cl.side[i] = s.rng.IntN(2)
		}
		for i := range cl.cside {
			cl.cside[i] = s.rng.IntN(2)
		}
		desc = fmt.Sprintf("split %v clients %v", cl.side, cl.cside)
	case 2: // a one-way link, often from the leader
		from := s.rng.IntN(len(cl.reps))
		if leader >= 0 && s.rng.IntN(2) == 0 {
			from = leader
		}
		to := (from + 1 + s.rng.IntN(len(cl.reps)-1)) % len(cl.reps)
		cl.oneWay = [2]int{from, to}
		desc = fmt.Sprintf("one-way %d->%d", from+1, to+1)
	case 3: // the leader with its clients, cut off from the rest
		if leader < 0 {
			break
		}
		cl.side[leader] = 1
		for i := range cl.cside {
			if s.rng.IntN(2) == 0 {
				cl.cside[i] = 1
			}
		}
		desc = fmt.Sprintf("leader %d with clients %v", leader+1, cl.cside)
	}
	s.stats.RaftPartitions++
	cl.layoutGen++
	s.tr.ev(s.now, "layout").str("desc", desc).end()
	s.schedule(event{at: s.at(between(s.rng, o.PartitionMax/10, o.PartitionMax)), kind: evLayoutEnd, gen: cl.layoutGen})
	s.schedule(event{at: s.at(gap(s.rng, o.RaftPartitionEvery)), kind: evLayout})
}

func (cl *clusterSim) layoutEnd(gen uint64) {
	if gen == cl.layoutGen {
		cl.reset()
		cl.s.tr.ev(cl.s.now, "layout").str("desc", "whole").end()
	}
}

func (cl *clusterSim) reset() {
	clear(cl.side)
	for i := range cl.cside {
		cl.cside[i] = -1
	}
	cl.oneWay = [2]int{-1, -1}
}

// transfer asks the leader, if any, to hand its leadership to another
// replica that is up, under load.
func (cl *clusterSim) transfer() {
	s := cl.s
	lead := cl.leaderIdx()
	if lead < 0 {
		return
	}
	to := (lead + 1 + s.rng.IntN(len(cl.reps)-1)) % len(cl.reps)
	n := cl.reps[lead]
	if !cl.reps[to].up || !slices.Contains(n.r.Voters(), uint64(to+1)) {
		return
	}
	if n.busy {
		return // between Ready and its commit: the next one
	}
	s.stats.Transfers++
	s.tr.ev(s.now, "transfer").int("from", int64(n.id)).int("to", int64(to+1)).end()
	n.r.TransferLeader(uint64(to + 1))
	n.pump()
}

// members changes the group, under load, through its leader: it adds a
// new replica when the group has its first size, and removes a voter (the
// leader, a time in three) when it has one more; so a run goes from N to
// N+1 voters and back, again and again, each new replica catching up from
// a snapshot. A change raft dropped (one was still in progress) is
// proposed again next time.
func (cl *clusterSim) members() {
	s := cl.s
	lead := cl.leaderIdx()
	if lead < 0 || cl.reps[lead].busy {
		return
	}
	ln := cl.reps[lead]
	voters := ln.r.Voters()
	var add, remove uint64
	switch {
	case cl.joining >= 0:
		add = cl.reps[cl.joining].id
	case len(voters) <= s.opts.Nodes && len(cl.reps) < replicasMax:
		n := cl.newReplica()
		n.join = true
		if !n.open() {
			return
		}
		n.scheduleTick(s.at(between(s.rng, 0, tickInterval)))
		cl.joining, add = n.idx, n.id
	case len(voters) > s.opts.Nodes:
		remove = voters[s.rng.IntN(len(voters))]
		if s.rng.IntN(3) == 0 {
			remove = ln.id
		}
	default:
		return
	}
	var err error
	if add != 0 {
		err = catch(func() error { return ln.r.AddMember(add, nil) })
	} else {
		err = catch(func() error { return ln.r.RemoveMember(remove) })
	}
	var nl *replica.NotLeader
	switch {
	case err == nil:
		s.stats.MemberChanges++
		s.tr.ev(s.now, "members").int("by", int64(ln.id)).int("add", int64(add)).int("remove", int64(remove)).end()
	case errors.Is(err, replica.ErrDropped) || errors.As(err, &nl):
		return // next time
	default:
		s.crashed(fmt.Sprintf("replica %d: change members at %v: %v", ln.id, s.now, err))
		return
	}
	ln.pump()
}

// configured: an entry changed the group's voters (the first replica to
// apply it tells). The joining replica, once a voter, is a member like the
// others; a replica no longer a voter is removed from the run a little
// later (it may still be answering its last Ready). The new membership is
// published to the clients, as an operator would (a client at a removed
// member moves to another).
func (cl *clusterSim) configured(voters []uint64) {
	s := cl.s
	if cl.joining >= 0 && slices.Contains(voters, cl.reps[cl.joining].id) {
		cl.joining = -1
	}
	for _, n := range cl.reps {
		if !n.gone && n.idx != cl.joining && !slices.Contains(voters, n.id) {
			n.gone = true
			s.schedule(event{at: s.at(tickInterval), kind: evRemoved, n: n.idx})
		}
	}
	names := make([]string, len(voters))
	for i, id := range voters {
		names[i] = memberName(int(id) - 1)
	}
	for _, c := range s.clients {
		cur, moved, err := c.members.Update(names)
		if err != nil {
			s.crashed(fmt.Sprintf("client %d: members %v: %v", c.idx, names, err))
			return
		}
		if moved {
			c.moveTo(cur)
		}
	}
}

// removed shuts down a replica removed from the group; its clients move on.
func (n *replicaSim) removed() {
	s := n.cl.s
	s.tr.ev(s.now, "removed").int("replica", int64(n.id)).end()
	n.shutdown()
	for _, c := range s.clients {
		if c.member == n.idx {
			c.nodeDown()
			s.schedule(event{at: s.at(between(s.rng, time.Millisecond, 50*time.Millisecond)), kind: evConnect, c: c.idx})
		}
	}
}

// ---- linearizable reads ----

// read: a reader (a client that describes a resource) asks the member it
// believes leads (the leader of the latest term it heard of) or, one time
// in two, any member up, which may be a deposed leader that does not know
// it yet. The read must see every entry applied anywhere (so committed)
// before it was asked.
func (cl *clusterSim) read() {
	s := cl.s
	to, term := -1, uint64(0)
	for t, id := range cl.leaders {
		if t > term { // map order: the maximum is one
			to, term = int(id)-1, t
		}
	}
	if to < 0 || s.rng.IntN(2) == 0 {
		to = s.rng.IntN(len(cl.reps))
	}
	if !cl.reps[to].up {
		return
	}
	cl.readSeq++
	cl.reads[cl.readSeq] = cl.modelIndex
	s.stats.Reads++
	s.schedule(event{at: s.delay(), kind: evReadArrive, n: to, read: cl.readSeq})
}

func (cl *clusterSim) readArrive(e *event) {
	s := cl.s
	n := cl.reps[e.n]
	if !n.up {
		delete(cl.reads, e.read)
		return
	}
	err := catch(func() error { return n.r.Read(e.read) })
	var nl *replica.NotLeader
	switch {
	case errors.As(err, &nl):
		delete(cl.reads, e.read)
		return
	case err != nil:
		s.crashed(fmt.Sprintf("replica %d: read at %v: %v", n.id, s.now, err))
		return
	}
	n.pump()
}

// readAnswered checks a read replica n answers from its core now: the
// core must have applied every entry committed before the read was asked.
func (cl *clusterSim) readAnswered(n *replicaSim, id uint64) {
	s := cl.s
	asked, ok := cl.reads[id]
	delete(cl.reads, id)
	switch {
	case !ok:
		s.fail(Replication, fmt.Sprintf("at %v replica %d answered read %d, which it was not asked or answered already", s.now, n.id, id))
	case n.r.Applied() < asked:
		s.fail(Replication, fmt.Sprintf("at %v replica %d answered read %d from its state at index %d, but entry %d was applied (committed) before the read was asked: a stale read",
			s.now, n.id, id, n.r.Applied(), asked))
	default:
		s.stats.ReadsAnswered++
	}
}

// leaderIdx is the index of a replica that believes it leads (-1: none).
func (cl *clusterSim) leaderIdx() int {
	for i, n := range cl.reps {
		if n.up && n.r.IsLeader() {
			return i
		}
	}
	return -1
}

func (cl *clusterSim) heal() {
	cl.reset()
	cl.layoutGen++
	s := cl.s
	for _, n := range cl.reps {
		n.calm()
		if !n.up && !n.gone {
			s.schedule(event{at: s.now, kind: evRestart, n: n.idx, gen: n.gen})
		}
	}
	s.schedule(event{at: s.at(leaderBound), kind: evLeaderCheck})
}

// memberUp reports whether member i is up (for the clients' connections).
func (cl *clusterSim) memberUp(i int) bool { return cl.reps[i].up }

func (cl *clusterSim) shutdown() {
	for _, n := range cl.reps {
		n.shutdown()
	}
}

// ---- checkers ----

// observe checks a Ready of replica n: the leader of its term, the entries
// it applied (stepping the model along the log), and its answers.
func (cl *clusterSim) observe(n *replicaSim, rd *replica.Ready) {
	s := cl.s
	if lead, term := n.r.Leader(); lead == n.id && n.r.IsLeader() {
		if prev, ok := cl.leaders[term]; ok && prev != n.id {
			s.fail(Replication, fmt.Sprintf("at %v replicas %d and %d both lead term %d", s.now, prev, n.id, term))
		} else if !ok {
			cl.leaders[term] = n.id
			s.stats.Elections++
			s.tr.ev(s.now, "leader").int("id", int64(n.id)).int("term", int64(term)).end()
		}
	}
	for i := range rd.Applied {
		cl.applied(n, &rd.Applied[i])
	}
	for i := range rd.Replies {
		cl.answered(n, &rd.Replies[i])
	}
	for _, id := range rd.Reads {
		cl.readAnswered(n, id)
	}
	if len(rd.Applied) > 0 {
		cl.sample(n)
	}
}

// applied checks one entry replica n applied against the log so far, and
// steps the model if n is the first to apply it.
func (cl *clusterSim) applied(n *replicaSim, a *replica.Applied) {
	s := cl.s
	rec := logRec{term: a.Term, proposal: a.Proposal}
	if a.Index <= cl.modelIndex {
		if got, ok := cl.log[a.Index]; ok && got != rec {
			s.fail(Replication, fmt.Sprintf("at %v replica %d applied entry %d of term %d (proposal %v), another applied term %d (proposal %v)",
				s.now, n.id, a.Index, a.Term, a.Proposal, got.term, got.proposal))
		}
		return
	}
	if a.Index != cl.modelIndex+1 {
		s.fail(Replication, fmt.Sprintf("at %v replica %d applied entry %d before anyone applied %d", s.now, n.id, a.Index, cl.modelIndex+1))
		return
	}
	cl.modelIndex = a.Index
	cl.log[a.Index] = rec
	if a.Failover {
		s.stats.Failovers++
	}
	if a.Voters != nil {
		cl.configured(a.Voters)
	}
	if s.tr != nil {
		s.tr.ev(s.now, "entry").int("index", int64(a.Index)).int("term", int64(a.Term)).int("by", int64(a.Proposal.Replica)).
			int("at", int64(a.At)).int("inputs", int64(len(a.Inputs))).bool("failover", a.Failover).bool("tick", a.Tick).
			int("expired", int64(a.Expired)).end()
	}
	retried := s.stepped(a.Inputs)
	s.stats.Turns++
	s.stats.Inputs += len(a.Inputs)
	if !cl.modelOK {
		return
	}
	m := cl.model
	var events []spec.Event
	var replies []spec.Result
	switch {
	case a.Failover:
		m.Failover(a.At, m.SessionTTLMax())
		events = m.Tick(a.At)
	case a.Tick:
		events = m.Tick(a.At)
	case a.Proposal.Replica != 0:
		for i := range a.Inputs {
			r, ev := m.Step(a.At, a.Inputs[i])
			replies = append(replies, r)
			events = append(events, ev...)
		}
	}
	expired := 0
	for _, e := range events {
		if e.Kind == spec.Expired {
			expired++
		}
	}
	if expired != a.Expired {
		cl.modelFail(fmt.Sprintf("at %v entry %d expired %d sessions on replica %d, %d in the model", s.now, a.Index, a.Expired, n.id, expired))
		return
	}
	// The log's order is the true order of grants (the fence's).
	msgs := make([]*message, len(a.Inputs))
	for i := range a.Inputs {
		msgs[i] = &message{input: a.Inputs[i]}
	}
	t := turnOut{msgs: msgs, replies: replies, events: events, retried: retried}
	s.registerGrants(&t)
	s.observeGrants(&t)
	if len(a.Inputs) > 0 {
		cl.expect[a.Index] = replies
	}
}

// sentGrants judges the grants a replica sends: each must be one the log
// holds. (Their order is judged along the log, when they are applied: the
// replies of entries committed in one term may reach clients after those
// of a later term, sent by another leader.)
func (cl *clusterSim) sentGrants(out *turnOut) {
	s := cl.s
	for _, g := range s.grantsOf(out) {
		if _, ok := s.grants[grantKey{g.session, g.request, g.token}]; !ok && cl.modelOK {
			s.fail(Tokens, fmt.Sprintf("at %v session %s was sent a grant of %q with token %d (request %d) that no applied entry made",
				s.now, short(g.session), s.resources[g.res], g.token, g.request))
		}
	}
}

// answered checks an answer of replica n: its own proposal, an entry
// committed at that index in that term, and the model's results.
func (cl *clusterSim) answered(n *replicaSim, rep *replica.Reply) {
	s := cl.s
	if rep.Proposal.Replica != n.id {
		s.fail(Replication, fmt.Sprintf("at %v replica %d answered proposal %v of replica %d", s.now, n.id, rep.Proposal, rep.Proposal.Replica))
		return
	}
	got, ok := cl.log[rep.Index]
	if !ok || got.term != rep.Term || got.proposal != rep.Proposal {
		s.fail(Replication, fmt.Sprintf("at %v replica %d answered entry %d (term %d) that was not committed there (log: %v, applied %v)",
			s.now, n.id, rep.Index, rep.Term, got, ok))
		return
	}
	want, ok := cl.expect[rep.Index]
	delete(cl.expect, rep.Index)
	if !ok || !cl.modelOK {
		return
	}
	for i := range rep.Results {
		if i >= len(want) || !want[i].Equal(&rep.Results[i]) {
			model := "nothing"
			if i < len(want) {
				model = want[i].String()
			}
			cl.modelFail(fmt.Sprintf("at %v replica %d answered input %d of entry %d with %s, the model %s",
				s.now, n.id, i, rep.Index, rep.Results[i].String(), model))
			return
		}
	}
}

// sample compares replica n's state, now that it applied a Ready's
// entries, with the others' at the same index (every few indexes), and,
// if n is in front, with the model's (every frontEvery*CheckEvery fronts).
func (cl *clusterSim) sample(n *replicaSim) {
	s := cl.s
	at := n.r.Applied()
	front := at == cl.modelIndex
	if front {
		cl.stateSeen++
	}
	if front && at > cl.shown && s.cfg.States != nil {
		cl.shown = at
		st := n.r.Core().State()
		s.cfg.States(s.now, &st)
	}
	checkModel := front && cl.stateSeen%(frontEvery*s.opts.CheckEvery) == 0 && (cl.modelOK || cl.invOK)
	if at%hashEvery != 0 && !checkModel {
		return
	}
	b := &cl.bufs[0]
	if cl.last == &b.State {
		b = &cl.bufs[1]
	}
	st := n.r.Core().StateIn(b)
	h := replica.HashState(st)
	if at%hashEvery == 0 {
		if prev, ok := cl.hashAt[at]; !ok {
			cl.hashAt[at] = h
		} else if prev != h {
			s.fail(Replication, fmt.Sprintf("at %v replica %d's state at index %d differs from another replica's at the same index:\n%s",
				s.now, n.id, at, st.String()))
		}
	}
	if !checkModel {
		return
	}
	if cl.invOK {
		err := spec.CheckInvariants(st, &s.lim)
		if err == nil && cl.last != nil {
			err = spec.CheckTransition(cl.last, st)
		}
		if err == nil && cl.stateSeen%(8*frontEvery*s.opts.CheckEvery) == 0 {
			err = n.r.Core().CheckStructures() // spec.CheckInvariants passed on st just above
		}
		if err != nil {
			cl.invOK = false
			s.fail(Invariants, fmt.Sprintf("at %v on replica %d: %v", s.now, n.id, err))
		}
	}
	cl.last = st
	if cl.modelOK {
		if !cl.model.Matches(st) {
			ms := cl.model.State()
			cl.modelFail(fmt.Sprintf("at %v (index %d) the states differ\nmodel:\n%s\nreplica %d:\n%s", s.now, at, ms.String(), n.id, st.String()))
		}
	}
}

func (cl *clusterSim) modelFail(detail string) {
	cl.modelOK = false
	cl.s.fail(Model, detail)
}

// leaderCheck: some time after the heal, a leader every replica knows.
func (cl *clusterSim) leaderCheck() {
	s := cl.s
	lead := cl.leaderIdx()
	if lead < 0 {
		s.fail(Liveness, fmt.Sprintf("no leader %v after the heal", leaderBound))
		return
	}
	voters := cl.reps[lead].r.Voters()
	for _, n := range cl.reps {
		if !n.up || !slices.Contains(voters, n.id) {
			continue // a replica whose addition was not applied knows no leader
		}
		if id, _ := n.r.Leader(); id != cl.reps[lead].id {
			s.fail(Liveness, fmt.Sprintf("%v after the heal replica %d knows leader %d, not %d", leaderBound, n.id, id, lead+1))
			return
		}
	}
}

// checkEmpty: at the very end, with every client gone, the replicas that
// applied the whole log hold no session and no resource, and agree.
func (cl *clusterSim) checkEmpty() {
	s := cl.s
	lead := cl.leaderIdx()
	if lead < 0 {
		s.fail(Liveness, "no leader at the end")
		return
	}
	ln := cl.reps[lead]
	st := ln.r.Core().State()
	if len(st.Sessions) > 0 || len(st.Resources) > 0 {
		s.fail(Liveness, fmt.Sprintf("after every client closed, the leader still holds %d sessions and %d resources:\n%s",
			len(st.Sessions), len(st.Resources), st.String()))
	}
	h := replica.HashState(&st)
	for _, n := range cl.reps {
		if n.up && n != ln && n.r.Applied() == ln.r.Applied() {
			if st2 := n.r.Core().State(); replica.HashState(&st2) != h {
				s.fail(Replication, fmt.Sprintf("at the end replicas %d and %d differ at index %d", n.id, ln.id, ln.r.Applied()))
			}
		}
	}
	if cl.invOK {
		if err := ln.r.Core().CheckInvariantsOf(&st); err != nil {
			s.fail(Invariants, fmt.Sprintf("at the end on replica %d: %v", ln.id, err))
		}
	}
}

// memberName is the name a client knows member i by.
func memberName(i int) string { return strconv.Itoa(i + 1) }

func memberIndex(name string) int {
	i, err := strconv.Atoi(name)
	if err != nil {
		return -1
	}
	return i - 1
}
