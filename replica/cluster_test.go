package replica_test

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/replica"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The harness runs a group of replicas and a few clients in virtual time,
// one millisecond per step, with a seeded network: every message is
// delayed, some are dropped, and the replicas are partitioned now and then.
// A run has two phases: faults until healAt (clients make requests), then a
// healed network in which a leader must emerge and every request must be
// answered within liveBound. One seed fixes the whole run, raft's election
// jitter included (cryptotest.SetGlobalRandom), so one seed is one trace.

const (
	ms            = spec.Time(time.Millisecond)
	tickInterval  = 10 * ms
	delayMax      = 12 // ms; each message takes 1 to delayMax
	retryAfter    = 150 * ms
	sessionTTL    = 30 * time.Second
	partitionMin  = 200 // ms a network layout lasts, at least
	partitionSpan = 600 // ms more, at most
	crashEvery    = 700 // ms between crashes, on average, while the faults last
	downMin       = 100 // ms a crashed replica stays down, at least
	downSpan      = 900 // ms more, at most
)

var resourceNames = []string{"a", "b", "c"}

type config struct {
	replicas, clients int
	ttl               time.Duration // every session's TTL; 0 means sessionTTL
	healAt            spec.Time
	liveBound         spec.Time
	dropPermille      int
	// crashes stops random replicas (the leader half the time) while the
	// faults last, a minority at a time, and restarts them from their
	// directory: half the time after a clean Close, half the time from a
	// crash image of their file system.
	crashes bool
	// compactAfter is the replicas' CompactAfter (0: the default).
	compactAfter uint64
	// downLong stops the last replica from downAt until the network heals,
	// so that it comes back behind the others' compacted logs.
	downLong bool
	downAt   spec.Time
	// diskFailAt, if set, fails every write of the last replica's log from
	// then on; once it has stopped, it is reopened when the network heals.
	diskFailAt spec.Time
}

// failure is a checker's finding: its kind names the checker.
type failure struct {
	kind string
	at   spec.Time
	msg  string
}

func (f failure) String() string { return fmt.Sprintf("%s at %v: %s", f.kind, f.at, f.msg) }

type result struct {
	trace    uint64 // hash of the trace
	failures []failure
	leaders  int // leaderships seen (term, id)
	answered int // requests answered
	applied  uint64
	graced   int // expiries applied after a failover (each replica's count)
	restarts int // replicas restarted from their store
	leadDown int // leaders stopped
	snapSent int // snapshots sent (MsgSnap delivered)
	snapsIn  int // snapshots installed
	stopped  int // replicas stopped by a failed store
}

type cluster struct {
	cfg     config
	lim     spec.Limits
	rng     *rand.Rand
	now     spec.Time
	reps    []*replica.Replica // id i+1 at i; nil while down
	fs      []*vfs.MemFS       // each replica's file system
	upAt    []spec.Time        // when a down replica restarts
	seen    []uint64           // each replica's applied index after its last Ready
	peers   []uint64
	disk    *diskFault   // the last replica's injected disk errors, if any
	reports []snapReport // snapshot sends ended, to report to their senders
	ticks   []spec.Time  // next tick of each replica
	side    []int        // partition side of each replica
	next    spec.Time    // next change of the network layout
	net     packets
	seq     uint64
	cls     []*client
	trace   hash.Hash64
	batch   [][]*request // client requests delivered to each replica this step

	// checker state
	leaders   map[uint64]uint64            // term -> leader
	hashAt    map[uint64]uint64            // applied index -> state hash
	committed map[uint64]replica.Applied   // index -> entry
	proposals map[replica.ProposalID]*prop // accepted proposals
	answered  map[replica.ProposalID]bool  // proposals answered
	sessions  map[spec.SessionID]*client   // by session
	failovers []spec.Time                  // each replica's last failover stamp applied, -1 none
	res       result
}

// prop is an accepted proposal: who took it, and the requests in it.
type prop struct {
	by   uint64
	reqs []*request
}

type client struct {
	addr      int
	session   spec.SessionID
	opened    bool
	target    uint64
	next      spec.Time
	req       *request
	requestID spec.RequestID
	acked     spec.RequestID
	held      []string
}

type request struct {
	c        *client
	in       spec.Input
	deadline spec.Time // retry then
	pending  bool      // queued: waiting for the Completed event
	refused  bool      // the last attempt was refused: c.target is where to go
}

type packet struct {
	at, seq  uint64
	from, to uint64 // replicas 1..N, clients 100+i
	msg      *raftpb.Message
	req      *request
	reply    *clientReply
}

type clientReply struct {
	req     *request
	refused bool
	leader  uint64
	res     spec.Result
}

type packets []*packet

func (p packets) Len() int { return len(p) }
func (p packets) Less(i, j int) bool {
	return p[i].at < p[j].at || p[i].at == p[j].at && p[i].seq < p[j].seq
}
func (p packets) Swap(i, j int) { p[i], p[j] = p[j], p[i] }
func (p *packets) Push(x any)   { *p = append(*p, x.(*packet)) }
func (p *packets) Pop() any {
	old := *p
	x := old[len(old)-1]
	*p = old[:len(old)-1]
	return x
}

// run runs one seed and returns its trace hash and the checkers' findings.
func run(t *testing.T, cfg config, seed uint64) result {
	t.Helper()
	cryptotest.SetGlobalRandom(t, seed) // raft's election jitter
	c := &cluster{cfg: cfg, lim: spec.DefaultLimits(), rng: rand.New(rand.NewPCG(seed, 0x5eed)),
		trace: fnv.New64a(), leaders: map[uint64]uint64{}, hashAt: map[uint64]uint64{},
		committed: map[uint64]replica.Applied{}, proposals: map[replica.ProposalID]*prop{},
		answered: map[replica.ProposalID]bool{}, sessions: map[spec.SessionID]*client{}}
	peers := make([]uint64, cfg.replicas)
	for i := range peers {
		peers[i] = uint64(i + 1)
	}
	c.peers = peers
	c.upAt, c.seen = make([]spec.Time, cfg.replicas), make([]uint64, cfg.replicas)
	for i, id := range peers {
		c.fs = append(c.fs, vfs.NewCrashableMem())
		fs := vfs.FS(c.fs[i])
		if cfg.diskFailAt > 0 && i == len(peers)-1 {
			c.disk = &diskFault{}
			fs = errorfs.Wrap(fs, c.disk)
		}
		r, err := replica.New(c.replicaConfig(id, fs))
		if err != nil {
			t.Fatal(err)
		}
		c.reps = append(c.reps, r)
		c.seen[i] = r.Applied()
		c.ticks = append(c.ticks, spec.Time(c.rng.IntN(int(tickInterval/ms)))*ms)
	}
	defer func() {
		for _, r := range c.reps {
			if r != nil {
				_ = r.Close()
			}
		}
	}()
	if c.cfg.ttl == 0 {
		c.cfg.ttl = sessionTTL
	}
	c.failovers = slices.Repeat([]spec.Time{-1}, cfg.replicas)
	c.side = make([]int, cfg.replicas)
	c.batch = make([][]*request, cfg.replicas)
	for i := range cfg.clients {
		cl := &client{addr: 100 + i, target: uint64(1 + c.rng.IntN(cfg.replicas))}
		binary.LittleEndian.PutUint64(cl.session[:8], c.rng.Uint64())
		binary.LittleEndian.PutUint64(cl.session[8:], c.rng.Uint64())
		c.sessions[cl.session] = cl
		c.cls = append(c.cls, cl)
	}
	end := cfg.healAt + cfg.liveBound
	for c.now = 0; c.now <= end; c.now += ms {
		c.layout()
		c.crash()
		c.deliver()
		c.report()
		c.proposeBatches()
		c.tick()
		for _, cl := range c.cls {
			c.act(cl)
		}
		for i := range c.reps {
			c.ready(i)
			c.report()
		}
		c.checkLeaders()
	}
	c.checkLive()
	c.res.trace = c.trace.Sum64()
	return c.res
}

func (c *cluster) replicaConfig(id uint64, fs vfs.FS) replica.Config {
	return replica.Config{ID: id, Peers: c.peers, Limits: c.lim, FS: fs, Dir: "replica", CompactAfter: c.cfg.compactAfter}
}

// diskFault fails every write to the write-ahead log once armed.
type diskFault struct{ armed atomic.Bool }

func (d *diskFault) MaybeError(op errorfs.Op) error {
	if d.armed.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsWrite && strings.HasSuffix(op.Path, ".log") {
		return errorfs.ErrInjected
	}
	return nil
}

func (d *diskFault) String() string { return "disk-fault" }

// crash stops and restarts replicas: at random while the faults last (a
// minority at a time, the leader half the time), the last one for long
// with downLong, and every down replica once the network heals.
func (c *cluster) crash() {
	n := len(c.reps)
	for i := range c.reps {
		if c.reps[i] == nil && (c.now >= c.upAt[i] || !c.faulty()) {
			c.restart(i)
		}
	}
	if c.disk != nil && c.now == c.cfg.diskFailAt {
		c.disk.armed.Store(true)
		fmt.Fprintf(c.trace, "%d disk of %d fails\n", c.now, n)
	}
	if c.cfg.downLong && c.now == c.cfg.downAt {
		c.stop(n-1, c.cfg.healAt)
	}
	if !c.faulty() || !c.cfg.crashes || c.rng.IntN(crashEvery) != 0 {
		return
	}
	i := c.rng.IntN(n)
	if c.rng.IntN(2) == 0 {
		for j, r := range c.reps {
			if r != nil && r.IsLeader() {
				i = j
			}
		}
	}
	down := 0
	for _, r := range c.reps {
		if r == nil {
			down++
		}
	}
	if c.reps[i] == nil || down >= (n-1)/2 {
		return
	}
	c.stop(i, c.now+spec.Time(downMin+c.rng.IntN(downSpan))*ms)
}

// stop stops replica i until up: a clean Close, or (half the time) a power
// cut that leaves only what its file system had synced.
func (c *cluster) stop(i int, up spec.Time) {
	r := c.reps[i]
	if r.IsLeader() {
		c.res.leadDown++
	}
	how := "closed"
	if c.rng.IntN(2) == 0 {
		how = "crashed"
		image := c.fs[i].CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: c.rng.IntN(101),
			RNG: rand.New(rand.NewPCG(c.rng.Uint64(), 1))})
		_ = r.Close() // the old instance's files are left behind
		c.fs[i] = image
	} else if err := r.Close(); err != nil {
		c.fail("harness", "close replica %d: %v", r.ID(), err)
	}
	c.reps[i], c.upAt[i] = nil, up
	fmt.Fprintf(c.trace, "%d replica %d %s, up at %v\n", c.now, i+1, how, up)
}

// restart reopens replica i from its directory. It must come back exactly
// as it was after its last Ready: the same applied index, and the state
// every replica had there.
func (c *cluster) restart(i int) {
	r, err := replica.New(c.replicaConfig(uint64(i+1), c.fs[i]))
	if err != nil {
		c.fail("restart", "replica %d: %v", i+1, err)
		c.upAt[i] = c.now + 1000*ms // liveness will say so
		return
	}
	c.reps[i] = r
	c.res.restarts++
	h := r.StateHash()
	fmt.Fprintf(c.trace, "%d replica %d restarted at %d hash %x\n", c.now, i+1, r.Applied(), h)
	if r.Applied() != c.seen[i] {
		c.fail("restart", "replica %d restarted at applied index %d, its last Ready had reached %d", i+1, r.Applied(), c.seen[i])
	}
	if prev, ok := c.hashAt[r.Applied()]; ok && prev != h {
		c.fail("restart", "replica %d restarted at index %d with state hash %x, the replicas had %x there", i+1, r.Applied(), h, prev)
	}
	st := r.Core().State()
	if err := spec.CheckInvariants(&st, &c.lim); err != nil {
		c.fail("invariants", "replica %d restarted at index %d: %v", i+1, r.Applied(), err)
	}
}

func (c *cluster) fail(kind, format string, args ...any) {
	if len(c.res.failures) < 20 {
		c.res.failures = append(c.res.failures, failure{kind: kind, at: c.now, msg: fmt.Sprintf(format, args...)})
	}
}

func (c *cluster) faulty() bool { return c.now < c.cfg.healAt }

// layout changes the partition now and then during the safety phase: all
// connected, one replica cut off, or a random split in two.
func (c *cluster) layout() {
	if !c.faulty() {
		clear(c.side)
		return
	}
	if c.now < c.next {
		return
	}
	c.next = c.now + spec.Time(partitionMin+c.rng.IntN(partitionSpan))*ms
	clear(c.side)
	switch c.rng.IntN(3) {
	case 0: // all connected
	case 1:
		c.side[c.rng.IntN(len(c.side))] = 1
	case 2:
		for i := range c.side {
			c.side[i] = c.rng.IntN(2)
		}
	}
	fmt.Fprintf(c.trace, "%d layout %v\n", c.now, c.side)
}

// send puts a packet on the network, unless the layout or a drop loses it.
// A lost snapshot is reported to its sender, as a transport would.
func (c *cluster) send(p *packet) {
	if p.from <= uint64(len(c.reps)) && p.to <= uint64(len(c.reps)) && c.side[p.from-1] != c.side[p.to-1] ||
		c.faulty() && c.rng.IntN(1000) < c.cfg.dropPermille {
		c.snapDone(p, true)
		return
	}
	c.seq++
	p.at, p.seq = uint64(c.now)+uint64(1+c.rng.IntN(delayMax))*uint64(ms), c.seq
	heap.Push(&c.net, p)
}

// snapDone reports to a snapshot's sender how sending it ended.
func (c *cluster) snapDone(p *packet, failed bool) {
	if p.msg == nil || p.msg.GetType() != raftpb.MessageType_MsgSnap || c.reps[p.from-1] == nil {
		return
	}
	fmt.Fprintf(c.trace, "%d snapshot %d->%d at %d failed %v\n", c.now, p.from, p.to, p.msg.GetSnapshot().GetMetadata().GetIndex(), failed)
	c.reports = append(c.reports, snapReport{from: p.from, to: p.to, failed: failed})
}

type snapReport struct {
	from, to uint64
	failed   bool
}

// report hands the snapshot reports to their senders, outside any Ready.
func (c *cluster) report() {
	for _, rp := range c.reports {
		if r := c.reps[rp.from-1]; r != nil {
			r.ReportSnapshot(rp.to, rp.failed)
		}
	}
	c.reports = c.reports[:0]
}

func (c *cluster) deliver() {
	for len(c.net) > 0 && c.net[0].at <= uint64(c.now) {
		p := heap.Pop(&c.net).(*packet)
		switch {
		case p.msg != nil:
			if p.from <= uint64(len(c.reps)) && c.side[p.from-1] != c.side[p.to-1] || c.reps[p.to-1] == nil {
				c.snapDone(p, true)
				continue // cut while in flight, or its replica is down
			}
			m := p.msg
			fmt.Fprintf(c.trace, "%d %d->%d %v t%d i%d c%d n%d\n", c.now, p.from, p.to, m.GetType(), m.GetTerm(),
				m.GetIndex(), m.GetCommit(), len(m.GetEntries()))
			err := c.reps[p.to-1].Step(m) // a message for no one is dropped, as a network would
			if err == nil && m.GetType() == raftpb.MessageType_MsgSnap {
				c.res.snapSent++
			}
			c.snapDone(p, err != nil)
		case p.req != nil:
			if c.reps[p.to-1] == nil {
				continue // its replica is down
			}
			c.batch[p.to-1] = append(c.batch[p.to-1], p.req)
		case p.reply != nil:
			c.receive(p.reply)
		}
	}
}

// proposeBatches proposes, on each replica, the requests it received this
// step as one turn.
func (c *cluster) proposeBatches() {
	for i, reqs := range c.batch {
		if len(reqs) == 0 {
			continue
		}
		r := c.reps[i]
		if r == nil {
			c.batch[i] = reqs[:0]
			continue
		}
		inputs := make([]spec.Input, len(reqs))
		for j, q := range reqs {
			inputs[j] = q.in
		}
		id, err := r.Propose(c.now, inputs)
		var nl *replica.NotLeader
		switch {
		case errors.As(err, &nl):
			for _, q := range reqs {
				c.send(&packet{from: r.ID(), to: uint64(q.c.addr), reply: &clientReply{req: q, refused: true, leader: nl.Leader}})
			}
		case errors.Is(err, replica.ErrDropped):
			for _, q := range reqs {
				c.send(&packet{from: r.ID(), to: uint64(q.c.addr), reply: &clientReply{req: q, refused: true}})
			}
		case err != nil:
			c.fail("harness", "propose: %v", err)
		default:
			c.proposals[id] = &prop{by: r.ID(), reqs: slices.Clone(reqs)}
			fmt.Fprintf(c.trace, "%d propose %d/%d n%d\n", c.now, id.Replica, id.Seq, len(reqs))
		}
		c.batch[i] = reqs[:0]
	}
}

func (c *cluster) tick() {
	for i, r := range c.reps {
		if c.ticks[i] <= c.now {
			c.ticks[i] += tickInterval
			if r != nil {
				r.Tick(c.now)
			}
		}
	}
}

// act makes a client retry its request, or start a new one while the
// faults last.
func (c *cluster) act(cl *client) {
	if q := cl.req; q != nil {
		if c.now >= q.deadline {
			if !q.pending && !q.refused {
				cl.target = cl.target%uint64(len(c.reps)) + 1 // no answer: try the next replica
			}
			c.request(q)
		}
		return
	}
	if !c.faulty() || c.now < cl.next {
		return
	}
	in := spec.Input{Session: cl.session}
	switch {
	case !cl.opened:
		in.Op, in.TTL = spec.OpOpen, c.cfg.ttl
	case len(cl.held) > 0 && c.rng.IntN(2) == 0:
		in.Op, in.Resource = spec.OpRelease, cl.held[c.rng.IntN(len(cl.held))]
	default:
		in.Op, in.Resource, in.Mode = spec.OpAcquire, resourceNames[c.rng.IntN(len(resourceNames))], spec.EX
		if slices.Contains(cl.held, in.Resource) {
			in.Op = spec.OpRelease
			break
		}
		if c.rng.IntN(3) == 0 {
			in.Mode = spec.PR
		}
		if c.rng.IntN(3) == 0 {
			in.NoQueue = true
		} else {
			in.WaitTimeout = time.Duration(100+c.rng.IntN(300)) * time.Millisecond
		}
	}
	if in.Op.Mutating() {
		cl.requestID++
		in.Request, in.Acked = cl.requestID, cl.acked
	}
	cl.req = &request{c: cl, in: in}
	c.request(cl.req)
}

func (c *cluster) request(q *request) {
	q.deadline, q.refused = c.now+retryAfter, false
	if q.pending {
		q.deadline += spec.Time(q.in.WaitTimeout)
	}
	fmt.Fprintf(c.trace, "%d client %d %v %q #%d to %d\n", c.now, q.c.addr, q.in.Op, q.in.Resource, q.in.Request, q.c.target)
	c.send(&packet{from: uint64(q.c.addr), to: q.c.target, req: q})
}

// receive gives a client a replica's answer to one of its requests.
func (c *cluster) receive(rp *clientReply) {
	cl := rp.req.c
	if cl.req != rp.req {
		return // an answer to an attempt already settled
	}
	switch {
	case rp.refused:
		if rp.leader != 0 {
			cl.target = rp.leader
		} else {
			cl.target = cl.target%uint64(len(c.reps)) + 1
		}
		cl.req.deadline, cl.req.refused = c.now+5*ms, true // go there soon
	case rp.res.Pending:
		if !cl.req.pending {
			cl.req.pending = true
			cl.req.deadline = c.now + retryAfter + spec.Time(cl.req.in.WaitTimeout)
		}
	default:
		c.complete(cl, rp.res)
	}
}

func (c *cluster) complete(cl *client, res spec.Result) {
	q := cl.req
	fmt.Fprintf(c.trace, "%d client %d answered %v %q #%d: %v\n", c.now, cl.addr, q.in.Op, q.in.Resource, q.in.Request, res.Code)
	c.res.answered++
	switch q.in.Op {
	case spec.OpOpen:
		cl.opened = res.Code == spec.OK
	case spec.OpAcquire:
		if res.Code == spec.OK && !slices.Contains(cl.held, q.in.Resource) {
			cl.held = append(cl.held, q.in.Resource)
		}
	case spec.OpRelease:
		cl.held = slices.DeleteFunc(cl.held, func(n string) bool { return n == q.in.Resource })
	}
	if q.in.Op.Mutating() {
		cl.acked = q.in.Request
	}
	cl.req, cl.next = nil, c.now+spec.Time(c.rng.IntN(40))*ms
}

// ready handles one replica's Ready: checks what it applied and answered,
// sends its messages, delivers its replies and events.
func (c *cluster) ready(i int) {
	r := c.reps[i]
	if r == nil || !r.HasReady() {
		return
	}
	prev := r.Applied()
	rd, err := r.Ready()
	if err != nil {
		if c.disk == nil || i != len(c.reps)-1 || !errors.Is(err, engine.ErrStoreFailed) {
			c.fail("harness", "replica %d: ready: %v", r.ID(), err)
		}
		// Stopped: nothing of this Ready goes out. Close it, and reopen it
		// from what its disk holds once the network heals.
		c.res.stopped++
		fmt.Fprintf(c.trace, "%d replica %d stopped: store failed\n", c.now, r.ID())
		_ = r.Close() // reports the failure; Pebble's files stay as a crash leaves them
		c.fs[i] = c.fs[i].CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: c.rng.IntN(101),
			RNG: rand.New(rand.NewPCG(c.rng.Uint64(), 2))})
		c.reps[i], c.upAt[i] = nil, c.cfg.healAt
		return
	}
	if r.Applied() != prev && (len(rd.Applied) == 0 || rd.Applied[0].Index != prev+1) {
		c.res.snapsIn++
		fmt.Fprintf(c.trace, "%d replica %d installed a snapshot at %d\n", c.now, r.ID(), r.Applied())
	}
	c.checkApplied(r, rd.Applied, r.Applied() != prev)
	c.seen[i] = r.Applied()
	for _, rp := range rd.Replies {
		c.checkReply(r, rp)
	}
	for _, m := range rd.Messages {
		c.send(&packet{from: r.ID(), to: m.GetTo(), msg: proto.CloneOf(m)}) // as if serialized
	}
	for _, ev := range rd.Events {
		if cl := c.sessions[ev.Session]; cl != nil && ev.Kind == spec.Completed && cl.req != nil &&
			cl.req.in.Request == ev.Request {
			c.send(&packet{from: r.ID(), to: uint64(cl.addr), reply: &clientReply{req: cl.req, res: ev.Result}})
		}
	}
	for _, id := range rd.Lost {
		for _, q := range c.proposals[id].reqs {
			if q.c.req == q && !q.pending {
				q.deadline = c.now // unknown outcome: retry now
			}
		}
	}
	r.Advance()
}

// checkApplied: every replica applies the same entry at each index, its
// core passes the invariants, and equal applied indexes mean equal states.
// And the failover grace: once a replica has applied a leader's failover
// entry, no session expires at a stamp before the grace (the clients' one
// TTL) has passed since that entry's stamp.
func (c *cluster) checkApplied(r *replica.Replica, applied []replica.Applied, moved bool) {
	for _, a := range applied {
		if prev, ok := c.committed[a.Index]; ok && !reflect.DeepEqual(prev, a) {
			c.fail("agreement", "replica %d applied %+v at index %d where another applied %+v", r.ID(), a, a.Index, prev)
		}
		fo := &c.failovers[r.ID()-1]
		if a.Failover {
			*fo = a.At
		}
		if a.Expired > 0 && *fo >= 0 {
			c.res.graced++
			if a.At < fo.Add(c.cfg.ttl) {
				c.fail("grace", "replica %d: %d sessions expired at %v (index %d), before the grace of %v from the failover at %v",
					r.ID(), a.Expired, a.At, a.Index, c.cfg.ttl, *fo)
			}
		}
		c.committed[a.Index] = a
		c.res.applied = max(c.res.applied, a.Index)
	}
	if !moved {
		return
	}
	st := r.Core().State()
	if err := spec.CheckInvariants(&st, &c.lim); err != nil {
		c.fail("invariants", "replica %d at index %d: %v", r.ID(), r.Applied(), err)
	}
	h := replica.HashState(&st)
	if prev, ok := c.hashAt[r.Applied()]; ok && prev != h {
		c.fail("hash", "replica %d at index %d has state hash %x, another had %x", r.ID(), r.Applied(), h, prev)
	}
	c.hashAt[r.Applied()] = h
	fmt.Fprintf(c.trace, "%d replica %d applied %d hash %x\n", c.now, r.ID(), r.Applied(), h)
}

// checkReply: only the proposer answers, once, an entry that is committed
// and applied, with one result per input it proposed.
func (c *cluster) checkReply(r *replica.Replica, rp replica.Reply) {
	p := c.proposals[rp.Proposal]
	switch {
	case p == nil || p.by != r.ID() || rp.Proposal.Replica != r.ID():
		c.fail("answer", "replica %d answered proposal %+v, which it did not propose", r.ID(), rp.Proposal)
		return
	case c.answered[rp.Proposal]:
		c.fail("answer", "replica %d answered proposal %+v twice", r.ID(), rp.Proposal)
		return
	case len(rp.Results) != len(p.reqs):
		c.fail("answer", "replica %d answered proposal %+v with %d results for %d inputs", r.ID(), rp.Proposal, len(rp.Results), len(p.reqs))
		return
	case rp.Index > r.Applied() || !sameEntry(c.committed[rp.Index], rp):
		c.fail("uncommitted", "replica %d answered proposal %+v at index %d, term %d, not applied there (applied %d: %+v)",
			r.ID(), rp.Proposal, rp.Index, rp.Term, r.Applied(), c.committed[rp.Index])
	}
	c.answered[rp.Proposal] = true
	fmt.Fprintf(c.trace, "%d replica %d answers %d/%d at %d\n", c.now, r.ID(), rp.Proposal.Replica, rp.Proposal.Seq, rp.Index)
	for i, q := range p.reqs {
		c.send(&packet{from: r.ID(), to: uint64(q.c.addr), reply: &clientReply{req: q, res: rp.Results[i]}})
	}
}

// sameEntry reports whether a is the entry that rp answers.
func sameEntry(a replica.Applied, rp replica.Reply) bool {
	return a.Index == rp.Index && a.Term == rp.Term && a.Proposal == rp.Proposal
}

// checkLeaders: at most one leader per term.
func (c *cluster) checkLeaders() {
	for _, r := range c.reps {
		if r == nil || !r.IsLeader() {
			continue
		}
		_, term := r.Leader()
		switch prev, ok := c.leaders[term]; {
		case !ok:
			c.leaders[term] = r.ID()
			c.res.leaders++
			fmt.Fprintf(c.trace, "%d leader %d term %d\n", c.now, r.ID(), term)
		case prev != r.ID():
			c.fail("leader", "replicas %d and %d both lead term %d", prev, r.ID(), term)
		}
	}
}

// checkLive runs at the end of the healed phase: one leader that every
// replica knows, every request answered, every replica caught up.
func (c *cluster) checkLive() {
	for i, r := range c.reps {
		if r == nil {
			c.fail("liveness", "%v after healing, replica %d is down", c.cfg.liveBound, i+1)
			return
		}
	}
	lead, _ := c.reps[0].Leader()
	for _, r := range c.reps {
		if l, _ := r.Leader(); l == 0 || l != lead {
			c.fail("liveness", "%v after healing, replica %d knows leader %d, replica 1 knows %d", c.cfg.liveBound, r.ID(), l, lead)
		}
		if r.Applied() != c.reps[0].Applied() || r.StateHash() != c.reps[0].StateHash() {
			c.fail("liveness", "%v after healing, replica %d applied %d, replica 1 applied %d", c.cfg.liveBound, r.ID(), r.Applied(), c.reps[0].Applied())
		}
	}
	for _, cl := range c.cls {
		if q := cl.req; q != nil {
			c.fail("liveness", "%v after healing, client %d's %v %q #%d is unanswered", c.cfg.liveBound, cl.addr, q.in.Op, q.in.Resource, q.in.Request)
		}
	}
}
