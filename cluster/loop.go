// Package cluster runs a member of a replicated lock service in production:
// one goroutine (the loop) owns a replica.Replica, ticks it on a real clock,
// steps the raft messages a transport brings, proposes the clients' inputs
// in batches, and handles each Ready (whose batch the replica has synced):
// messages to the transport, replies and events to the server. It has the
// surface of engine.Loop (Submit, Enqueue, Inspect, Stop, Done, Err), so the
// server drives a member as it drives a lone node.
//
// Only the leader serves. On any other member Submit, Enqueue and Inspect
// fail with *NotLeader naming the leader's client address, and the server
// refuses the call with it (wire.NotLeaderError); inputs that were handed
// to the loop while it led but could not commit get Unavailable, and the
// client resends them (same request ids) to the new leader. Inspect is a
// linearizable read (replica.Read: raft's ReadIndex).
//
// Group commit comes from the loop's shape: while a Ready syncs, inputs
// queue on the channel, and the next round proposes all of them (up to
// InputsPerBatchMax per entry) before the next Ready.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/replica"
	"github.com/bouncer-dlm/bouncer/spec"
	"go.etcd.io/raft/v3/raftpb"
)

// Transport carries raft messages between members (package peer).
type Transport interface {
	// Send queues msgs for their peers (GetTo); it never blocks.
	Send(msgs []*raftpb.Message)
	// Recv delivers the messages peers sent this member.
	Recv() <-chan *raftpb.Message
}

// Options configure a Loop. Zero values take the defaults.
type Options struct {
	Clock engine.Clock // default: a MonotonicClock from the replica's applied clock
	// Tick is the raft tick interval (default 100ms): elections after
	// replica.Config.ElectionTick ticks, heartbeats every HeartbeatTick.
	Tick time.Duration
	// Members are the addresses of the members bootstrapped together (by
	// raft id); those added later come with their addresses through the
	// log. The client addresses name the leader in refusals.
	Members map[uint64]Addrs
	// OnMembers is told, on the loop goroutine, the voters and their
	// addresses at the start and after every membership change (for the
	// transport).
	OnMembers func(voters []uint64, addrs map[uint64]Addrs)
	// OnEvents receives the events of the entries this member proposed,
	// on the loop goroutine, once durable; it must not block.
	OnEvents func([]spec.Event)
	// OnTurn is called after each Ready that applied entries, on the loop
	// goroutine, with read access to the core; it must not block.
	OnTurn func(*engine.Core, engine.TurnStats)
	// OnRole is told, on the loop goroutine, when this member's view of
	// the leader changes (lead 0: none known).
	OnRole func(lead uint64, leading bool)
	// OnTick is told, on the loop goroutine after every tick, the member's
	// figures (for metrics and health); it must not block.
	OnTick func(Figures)
	// OnPeer is told, on the loop goroutine, each round trip of a leader's
	// heartbeat to a peer and its answer, and each snapshot sent (rtt 0);
	// it must not block.
	OnPeer func(to uint64, rtt time.Duration, snapshot bool)
	// QueueMax bounds the inputs waiting for the loop (default four
	// batches' worth).
	QueueMax int
	// ReadTimeout bounds how long a read waits for raft to confirm it
	// (default 20 ticks).
	ReadTimeout time.Duration
	Log         *slog.Logger
}

// Figures are a member's counters, after each tick.
type Figures struct {
	Lead, Term      uint64
	Commit, Applied uint64 // the commit index it knows, and its applied index
	InFlight        int    // its proposals not yet answered
}

// NotLeader is the refusal of a member that is not the leader: Addr is the
// leader's client address ("" when none is known).
type NotLeader struct {
	ID   uint64
	Addr string
}

func (e *NotLeader) Error() string {
	if e.Addr == "" {
		return "cluster: not the leader; no leader is known"
	}
	return "cluster: not the leader; the leader is at " + e.Addr
}

// ErrReadTimeout is Inspect's error when raft did not confirm the read in
// time (a leader change): ask again.
var ErrReadTimeout = errors.New("cluster: the read was not confirmed in time")

// Loop drives one member. See the package doc.
type Loop struct {
	r     *replica.Replica
	tr    Transport
	opts  Options
	clock engine.Clock
	lim   spec.Limits

	*engine.Mailbox // Stop, Done, Err; the inputs waiting
	reads           chan *read
	admin           chan func(*replica.Replica)
	reports         chan report

	lead    atomic.Uint64 // the leader this member knows (0: none)
	leading atomic.Bool
	mu      sync.Mutex
	addrs   map[uint64]Addrs // the voters' addresses
	voters  []uint64         // as of the last members (loop goroutine)

	// Owned by the loop goroutine.
	beats   map[uint64]time.Time // the last heartbeat sent to each peer not yet answered
	props   map[replica.ProposalID][]*engine.Submission
	pending map[uint64]*read // reads asked of raft, by id
	readSeq uint64
	batch   []*engine.Submission
	inputs  []spec.Input
}

type read struct {
	f     func(*engine.Core)
	done  chan error
	asked time.Time
}

type report struct {
	to       uint64
	snapshot bool
	failed   bool
}

// Start starts the loop goroutine over r, which it owns from now on (Stop
// closes it).
func Start(r *replica.Replica, tr Transport, lim spec.Limits, opts Options) *Loop {
	if opts.Clock == nil {
		opts.Clock = engine.NewMonotonicClock(r.Core().Now())
	}
	if opts.Tick <= 0 {
		opts.Tick = 100 * time.Millisecond
	}
	if opts.QueueMax <= 0 {
		opts.QueueMax = 4 * lim.InputsPerBatchMax
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 20 * opts.Tick
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	l := &Loop{r: r, tr: tr, opts: opts, clock: opts.Clock, lim: lim,
		Mailbox: engine.NewMailbox(opts.QueueMax, "member"), reads: make(chan *read),
		admin: make(chan func(*replica.Replica)), reports: make(chan report, 256),
		props: map[replica.ProposalID][]*engine.Submission{}, pending: map[uint64]*read{}, beats: map[uint64]time.Time{}}
	r.SendEarly(func(msgs []*raftpb.Message) { // the leader's appends go out while its copy syncs
		l.sending(msgs)
		l.tr.Send(msgs)
	})
	go l.run()
	return l
}

// notLeader is the refusal naming the leader this member knows.
func (l *Loop) notLeader() error {
	id := l.lead.Load()
	return &NotLeader{ID: id, Addr: l.clientAddr(id)}
}

// Leading reports nil on the leader, else its refusal (*NotLeader).
func (l *Loop) Leading() error {
	if l.leading.Load() {
		return nil
	}
	return l.notLeader()
}

// Submit hands in to the loop and waits for its reply, which comes once
// the entry that carries it is committed and applied. It fails with
// *NotLeader on a member that is not the leader.
func (l *Loop) Submit(ctx context.Context, in spec.Input) (spec.Result, error) {
	if err := l.Leading(); err != nil {
		return spec.Result{}, err
	}
	return l.Mailbox.Submit(ctx, in)
}

// Enqueue hands in to the loop without waiting, as engine.Mailbox.Enqueue
// does; it fails at once with *NotLeader on a member that is not the
// leader.
func (l *Loop) Enqueue(in spec.Input, tag uint64, replyTo engine.Replies) error {
	if err := l.Leading(); err != nil {
		select {
		case <-l.Done():
			return l.Mailbox.Enqueue(in, tag, replyTo) // its error
		default:
			return err
		}
	}
	return l.Mailbox.Enqueue(in, tag, replyTo)
}

// Inspect runs f with read access to the core once a linearizable read
// (ReadIndex) is confirmed: the core has applied every entry committed
// before Inspect was called. It fails with *NotLeader on a member that is
// not the leader, and with ErrReadTimeout when raft could not confirm.
func (l *Loop) Inspect(ctx context.Context, f func(*engine.Core)) error {
	if err := l.Leading(); err != nil {
		return err
	}
	rd := &read{f: f, done: make(chan error, 1)}
	select {
	case l.reads <- rd:
	case <-l.Done():
		return l.StopErr()
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-rd.done:
		return err
	case <-l.Done():
		return l.StopErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Admin runs f on the loop goroutine with the replica (membership changes,
// leadership transfer, status), between Readies.
func (l *Loop) Admin(ctx context.Context, f func(*replica.Replica)) error {
	return engine.Call(ctx, l.Mailbox, l.admin, f)
}

// ReportSnapshot tells raft how sending a snapshot to peer to ended; the
// transport calls it for every MsgSnap. It never blocks (a report that does
// not fit is dropped: raft retries after its own timeout).
func (l *Loop) ReportSnapshot(to uint64, failed bool) {
	select {
	case l.reports <- report{to: to, snapshot: true, failed: failed}:
	default:
	}
}

// ReportUnreachable tells raft that a message to peer to could not be sent.
func (l *Loop) ReportUnreachable(to uint64) {
	select {
	case l.reports <- report{to: to}:
	default:
	}
}

func (l *Loop) run() {
	stop := func(err error) {
		if cerr := l.r.Close(); err == nil {
			err = cerr
		}
		l.Fail(err)
		l.failAll()
		l.Finish()
	}
	ticker := time.NewTicker(l.opts.Tick)
	defer ticker.Stop()
	l.members()
	l.role()
	for {
		select {
		case <-l.Quit():
			stop(nil)
			return
		case <-ticker.C:
			l.r.Tick(l.clock.Now())
			l.expireReads()
			if l.opts.OnTick != nil {
				lead, term := l.r.Leader()
				l.opts.OnTick(Figures{Lead: lead, Term: term, Commit: l.r.Commit(), Applied: l.r.Applied(),
					InFlight: len(l.props)})
			}
		case m := <-l.tr.Recv():
			l.received(m)
			_ = l.r.Step(m) // not for this member: dropped
		case c := <-l.Inputs():
			l.batch = l.Drain(append(l.batch, c), l.opts.QueueMax)
		case rd := <-l.reads:
			l.ask(rd)
		case f := <-l.admin:
			f(l.r)
		case rep := <-l.reports:
			if rep.snapshot {
				l.r.ReportSnapshot(rep.to, rep.failed)
			} else {
				l.r.ReportUnreachable(rep.to)
			}
		}
		l.propose()
		if err := l.ready(); err != nil {
			l.opts.Log.Error("member stopped: store failed", "err", err)
			stop(err)
			return
		}
		l.role()
	}
}

// propose hands the batch to raft, as entries of up to InputsPerBatchMax
// inputs; on a member that is not (or no longer) the leader each input is
// answered Unavailable, and the client resends to the leader.
func (l *Loop) propose() {
	for len(l.batch) > 0 {
		k := min(len(l.batch), l.lim.InputsPerBatchMax)
		subs := l.batch[:k:k]
		l.inputs = l.inputs[:0]
		for _, c := range subs {
			l.inputs = append(l.inputs, c.In)
		}
		id, err := l.r.Propose(l.clock.Now(), l.inputs)
		if err != nil {
			res := spec.Refuse(spec.Unavailable, fmt.Sprintf("member: %v", err))
			var nl *replica.NotLeader
			if errors.As(err, &nl) {
				res = spec.Refuse(spec.Unavailable, l.notLeader().Error())
			}
			for _, c := range l.batch {
				c.Answer(res)
			}
			l.batch = l.batch[:0]
			return
		}
		l.props[id] = subs
		l.batch = l.batch[k:]
	}
	l.batch = nil
}

// sending notes the heartbeats and snapshots among msgs, for OnPeer.
func (l *Loop) sending(msgs []*raftpb.Message) {
	if l.opts.OnPeer == nil {
		return
	}
	for _, m := range msgs {
		switch m.GetType() {
		case raftpb.MessageType_MsgHeartbeat:
			if _, ok := l.beats[m.GetTo()]; !ok {
				l.beats[m.GetTo()] = time.Now()
			}
		case raftpb.MessageType_MsgSnap:
			l.opts.OnPeer(m.GetTo(), 0, true)
		}
	}
}

// received notes a heartbeat's answer, for OnPeer.
func (l *Loop) received(m *raftpb.Message) {
	if l.opts.OnPeer == nil || m.GetType() != raftpb.MessageType_MsgHeartbeatResp {
		return
	}
	if at, ok := l.beats[m.GetFrom()]; ok {
		delete(l.beats, m.GetFrom())
		l.opts.OnPeer(m.GetFrom(), time.Since(at), false)
	}
}

// ask asks raft to confirm a read.
func (l *Loop) ask(rd *read) {
	l.readSeq++
	if err := l.r.Read(l.readSeq); err != nil {
		var nl *replica.NotLeader
		if errors.As(err, &nl) {
			err = l.notLeader()
		}
		rd.done <- err
		return
	}
	rd.asked = time.Now()
	l.pending[l.readSeq] = rd
}

// expireReads fails the reads raft has not confirmed in time.
func (l *Loop) expireReads() {
	for id, rd := range l.pending {
		if time.Since(rd.asked) > l.opts.ReadTimeout {
			delete(l.pending, id)
			rd.done <- ErrReadTimeout
		}
	}
}

// ready handles every Ready the replica has.
func (l *Loop) ready() error {
	for l.r.HasReady() {
		start := time.Now()
		rd, err := l.r.Ready()
		if err != nil {
			return err
		}
		l.sending(rd.Messages)
		l.tr.Send(rd.Messages)
		inputs := 0
		for i := range rd.Replies {
			rep := &rd.Replies[i]
			subs := l.props[rep.Proposal]
			delete(l.props, rep.Proposal)
			for j, c := range subs {
				c.Answer(rep.Results[j])
			}
			inputs += len(subs)
		}
		for _, id := range rd.Lost {
			for _, c := range l.props[id] {
				c.Answer(spec.Refuse(spec.Unavailable, "member: leadership changed before the entry committed; retry"))
			}
			delete(l.props, id)
		}
		if !slices.Equal(l.voters, l.r.Voters()) { // a change applied, or a snapshot installed
			l.members()
		}
		if len(rd.Events) > 0 && l.opts.OnEvents != nil {
			l.opts.OnEvents(rd.Events)
		}
		for _, id := range rd.Reads {
			if r, ok := l.pending[id]; ok {
				delete(l.pending, id)
				r.f(l.r.Core())
				r.done <- nil
			}
		}
		if len(rd.Applied) > 0 && l.opts.OnTurn != nil {
			l.opts.OnTurn(l.r.Core(), engine.TurnStats{Inputs: inputs, Writes: len(rd.Applied), Duration: time.Since(start)})
		}
		l.r.Advance()
	}
	return nil
}

// role publishes the leader this member knows, and tells OnRole of a change.
func (l *Loop) role() {
	lead, _ := l.r.Leader()
	leading := l.r.IsLeader()
	if lead == l.lead.Load() && leading == l.leading.Load() {
		return
	}
	l.lead.Store(lead)
	l.leading.Store(leading)
	l.opts.Log.Info("leader", "id", lead, "self", leading)
	if !leading {
		// Inputs proposed as the leader will be answered if they commit;
		// reads asked as the leader can no longer be confirmed here.
		for id, rd := range l.pending {
			delete(l.pending, id)
			rd.done <- l.notLeader()
		}
	}
	if l.opts.OnRole != nil {
		l.opts.OnRole(lead, leading)
	}
}

// failAll answers everything in flight when the loop stops.
func (l *Loop) failAll() {
	res := l.Unavailable()
	l.FailQueued()
	for _, c := range l.batch {
		c.Answer(res)
	}
	l.batch = nil
	for id, subs := range l.props {
		// map order: each its own answer
		for _, c := range subs {
			c.Answer(res)
		}
		delete(l.props, id)
	}
	for id, rd := range l.pending {
		// map order: each its own answer
		delete(l.pending, id)
		rd.done <- l.StopErr()
	}
}
