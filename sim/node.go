package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// nodeSim is the lock node: the real engine.Node (core and Pebble store)
// on a crashable in-memory file system, stepped in virtual time. Beside it
// runs the spec model on the same inputs (trace validation).
type nodeSim struct {
	s *Sim
	disk
	node  *engine.Node
	up    bool
	busy  bool // a turn's commit is in progress: its outputs wait
	gen   uint64
	inbox []*message
	out   turnOut

	model   *spec.Model
	pending []*spec.Model // after a crash: the model states that may have survived
	modelOK bool          // the model checker has not failed: keep comparing
	invOK   bool
	last    *spec.State        // the state at the last check, for CheckTransition
	bufs    [2]engine.StateBuf // check builds in the one last is not in
	turns   int
	changed int // turns that wrote something
}

// turnOut is what a turn produced, held until its commit completes.
type turnOut struct {
	msgs    []*message
	replies []spec.Result
	events  []spec.Event
	// retried[i]: the node stepped msgs[i]'s request id before, so its
	// reply is the recorded outcome, not a new one.
	retried []bool
}

const storeDir = "db"

func newNodeSim(s *Sim) *nodeSim {
	return &nodeSim{s: s, disk: disk{mem: vfs.NewCrashableMem()}, model: spec.NewModel(s.lim), modelOK: true, invOK: true}
}

// injector sits between Pebble and the file system. Armed, it counts the
// write and sync operations on the write-ahead log (the commit path, which
// runs while the simulator waits in Turn, so the count is deterministic)
// and at the chosen one either takes a crash image or fails the operation.
// After a failure every later WAL write fails too: the disk is gone.
type injector struct {
	mu        sync.Mutex // Pebble's goroutines call MaybeError
	mem       *vfs.MemFS
	countdown int
	crash     bool // take an image (else: fail)
	percent   int  // of unsynced data the image keeps: 0 or 100
	rng       *rand.Rand
	image     *vfs.MemFS
	failed    bool
}

func walOp(op errorfs.Op) bool {
	switch op.Kind {
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		return strings.HasSuffix(op.Path, ".log")
	}
	return false
}

func (j *injector) MaybeError(op errorfs.Op) error {
	if !walOp(op) {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.failed {
		return errorfs.ErrInjected
	}
	if j.countdown == 0 {
		return nil
	}
	j.countdown--
	if j.countdown > 0 {
		return nil
	}
	if j.crash {
		j.image = j.mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: j.percent, RNG: j.rng})
		return nil
	}
	j.failed = true
	return errorfs.ErrInjected
}

func (j *injector) String() string { return "sim" }

func (j *injector) arm(crash bool, countdown, percent int, rng *rand.Rand) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.crash, j.countdown, j.percent, j.rng, j.image = crash, countdown, percent, rng, nil
}

// fired returns the crash image if one was taken, and whether a write
// failed; it leaves an unfired arming in place for the next commit.
func (j *injector) fired() (*vfs.MemFS, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.image, j.failed
}

func (j *injector) armed() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.countdown > 0
}

// open opens the store (at the start, and on every restart) and makes the
// first turn, which fires the timers that came due while it was down.
func (n *nodeSim) open() bool {
	s := n.s
	fs := n.disk.open()
	var node *engine.Node
	err := catch(func() error {
		var err error
		node, err = engine.OpenNode(engine.NodeOptions{FS: fs, Dir: storeDir, Limits: s.lim}, s.now)
		return err
	})
	if err != nil {
		s.crashed(fmt.Sprintf("recovery failed at %v: %v", s.now, err))
		return false
	}
	n.node, n.up, n.busy, n.gen = node, true, false, n.gen+1
	return n.turn(nil, true)
}

// catch runs f, turning a panic into an error: a panic in the engine is a
// programmer error the simulator reports as a crash, with the seed.
func catch(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return f()
}

func (n *nodeSim) arrive(m *message) {
	s := n.s
	c := s.clients[m.client]
	if !n.up || m.epoch != c.epoch || c.cutOff() {
		s.tr.ev(s.now, "lost").int("c", int64(m.client)).int("call", int64(m.call)).str("at", "node").end()
		return
	}
	n.inbox = append(n.inbox, m)
	n.kick()
}

// kick starts a turn if the node is idle and has work: inputs, or a timer
// that came due.
func (n *nodeSim) kick() {
	if !n.up || n.busy {
		return
	}
	if len(n.inbox) == 0 {
		if d, ok := n.node.NextDeadline(); !ok || d > n.s.now {
			n.armTimer()
			return
		}
	}
	k := min(len(n.inbox), n.s.lim.InputsPerBatchMax)
	msgs := n.inbox[:k:k]
	n.inbox = n.inbox[k:]
	n.turn(msgs, false)
}

func (n *nodeSim) armTimer() {
	if d, ok := n.node.NextDeadline(); ok {
		n.s.schedule(event{at: max(d, n.s.now), kind: evNodeTimer, gen: n.gen})
	}
}

func (n *nodeSim) timer(gen uint64) {
	if gen == n.gen {
		n.kick()
	}
}

// turn steps the inputs of msgs (none: time alone) through the engine and
// the model, compares them, and holds the outputs until the commit is done.
func (n *nodeSim) turn(msgs []*message, first bool) bool {
	s := n.s
	inputs := make([]spec.Input, len(msgs))
	for i, m := range msgs {
		inputs[i] = m.input
	}
	n.armFaults(s.rng)
	var before *spec.Model
	if n.inj.armed() && n.modelOK {
		before = n.model.Clone()
	}
	var res *engine.TurnResult
	err := catch(func() error {
		var err error
		res, err = n.node.Turn(s.now, inputs)
		return err
	})
	if err != nil && !errors.Is(err, engine.ErrStoreFailed) {
		s.crashed(fmt.Sprintf("turn at %v: %v", s.now, err))
		return false
	}
	s.stats.Turns++
	s.stats.Inputs += len(inputs)
	n.turns++
	image, failed := n.inj.fired()
	var expect turnOut
	if !first {
		expect = n.stepModel(inputs, res, err == nil)
	}
	retried := s.stepped(inputs)
	switch {
	case failed && expect.replies != nil:
		// What the failed turn would have answered may be durable: a retry
		// can return it.
		expect.msgs = msgs
		s.registerGrants(&expect)
		fallthrough
	case failed:
		s.stats.DiskFaults++
		s.tr.ev(s.now, "disk-fault").int("inputs", int64(len(inputs))).end()
		n.down(n.crashImage(s.rng), before, true)
		return false
	case image != nil:
		s.registerGrants(&turnOut{msgs: msgs, replies: res.Replies, events: res.Events})
		s.stats.Crashes++
		s.tr.ev(s.now, "crash").bool("mid_commit", true).int("inputs", int64(len(inputs))).end()
		n.down(image, before, false)
		return false
	}
	if s.tr != nil {
		s.traceTurn(msgs, res)
	}
	if first {
		if !n.recovered(res) {
			return false
		}
	} else if res.Writes > 0 {
		// A turn that wrote nothing changed only session deadlines (a
		// keepalive), which the model's events check when they fire.
		if n.changed++; n.changed%s.opts.CheckEvery == 0 {
			n.check(n.changed%(8*s.opts.CheckEvery) == 0)
		}
	}
	if s.cfg.States != nil && (first || res.Writes > 0) {
		st := n.node.Core().State()
		s.cfg.States(s.now, &st)
	}
	n.out = turnOut{msgs: msgs, replies: append([]spec.Result(nil), res.Replies...),
		events: append([]spec.Event(nil), res.Events...), retried: retried}
	s.registerGrants(&n.out)
	n.busy = true
	latency := s.opts.CommitMin / 4
	if res.Writes > 0 {
		latency = between(s.rng, s.opts.CommitMin, s.opts.CommitMax)
	}
	s.schedule(event{at: s.at(latency), kind: evTurnDone, gen: n.gen})
	return true
}

// disk is the crashable disk of a node or a replica, and the fault armed
// for its next commit.
type disk struct {
	mem       *vfs.MemFS // the file system under the store
	inj       *injector
	crashNext bool // cut the power in the middle of the next commit
	failNext  bool // fail a WAL write of the next commit
}

// open returns the file system to open the store on, with a fresh injector
// and no fault armed.
func (d *disk) open() vfs.FS {
	d.inj = &injector{mem: d.mem}
	d.crashNext, d.failNext = false, false
	return errorfs.Wrap(d.mem, d.inj)
}

// armFaults arms the injector for a crash or a write failure in the middle
// of the next commit, if one is due.
func (d *disk) armFaults(r *rand.Rand) {
	if d.inj.armed() || !d.crashNext && !d.failNext {
		return
	}
	// A commit writes the log, then syncs it: cut before or after the write.
	d.inj.arm(d.crashNext, 1+r.IntN(2), keepPercent(r), rand.New(rand.NewPCG(r.Uint64(), 1)))
	d.crashNext, d.failNext = false, false
}

// calm disarms every fault: the safety phase is over.
func (d *disk) calm() {
	d.crashNext, d.failNext = false, false
	if d.inj != nil {
		d.inj.arm(false, 0, 0, nil)
	}
}

// crashImage is what a power cut now leaves of the disk.
func (d *disk) crashImage(r *rand.Rand) *vfs.MemFS {
	pct := keepPercent(r)
	return d.mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(r.Uint64(), 2))})
}

// keepPercent draws how much unsynced data a crash image keeps: none or
// all. (CrashClone draws per file in map order, so any other percentage
// would make the image depend on Go's map iteration, not the seed.)
func keepPercent(r *rand.Rand) int { return 100 * r.IntN(2) }

// stepModel steps the spec model on the same inputs and compares its
// replies and events with the engine's (when the turn succeeded). It
// returns the model's outputs (none once the model checker has failed).
func (n *nodeSim) stepModel(inputs []spec.Input, res *engine.TurnResult, ok bool) turnOut {
	if !n.modelOK {
		return turnOut{}
	}
	s := n.s
	var out turnOut
	if len(inputs) == 0 {
		out.events = n.model.Tick(s.now)
	}
	for i := range inputs {
		if ok && res.Replies[i].Code == spec.Deadlock {
			n.checkDeadlock(&inputs[i], res.Replies[i].Detail)
		}
		r, ev := n.model.Step(s.now, inputs[i])
		if ok && !r.Equal(&res.Replies[i]) {
			n.modelFail(fmt.Sprintf("at %v, %s: the engine replied %s, the model %s",
				s.now, describeInput(&inputs[i]), res.Replies[i].String(), r.String()))
			return turnOut{}
		}
		out.replies = append(out.replies, r)
		out.events = append(out.events, ev...)
	}
	if ok && !spec.EventsEqual(out.events, res.Events) {
		n.modelFail(fmt.Sprintf("at %v: the engine's events %s differ from the model's %s",
			s.now, eventsString(res.Events), eventsString(out.events)))
		return turnOut{}
	}
	if out.replies == nil {
		out.replies = []spec.Result{}
	}
	return out
}

// checkDeadlock judges a Deadlock refusal by the oracle (spec/stuck.go),
// which does not use the wait-for graph that decided it: in the state the
// input met (the model's, with due timers fired), letting the request
// through must have left a request stuck. A retry's refusal comes from the
// record, and was judged when it was first given. Refusals are rare, so the clone
// costs little.
func (n *nodeSim) checkDeadlock(in *spec.Input, detail string) {
	m := n.model.Clone()
	m.Tick(n.s.now)
	st := m.State()
	for _, ss := range st.Sessions {
		if ss.ID == in.Session && slices.ContainsFunc(ss.Replies, func(r spec.Reply) bool { return r.Request == in.Request }) {
			return // a retry, answered from the record of a refusal judged when it was made
		}
	}
	if err := spec.CheckDeadlockRefusal(&st, *in, detail); err != nil {
		n.invOK = false
		n.s.fail(Invariants, fmt.Sprintf("at %v: deadlock oracle: %v", n.s.now, err))
	}
}

func (n *nodeSim) modelFail(detail string) {
	n.modelOK = false
	n.s.fail(Model, detail)
}

// check compares the whole state with the model's and checks spec's
// invariants on it and the transition from the last check; with internals,
// also the core's own structures (lists, counts, maps, timer heap).
func (n *nodeSim) check(internals bool) {
	s := n.s
	core := n.node.Core()
	b := &n.bufs[0]
	if n.last == &b.State {
		b = &n.bufs[1]
	}
	st := core.StateIn(b)
	if n.invOK {
		var err error
		switch {
		case internals:
			err = core.CheckInvariantsOf(st) // spec.CheckInvariants, then the core's structures
		default:
			err = spec.CheckInvariants(st, &s.lim)
		}
		if err == nil && n.last != nil {
			err = spec.CheckTransition(n.last, st)
		}
		if err != nil {
			n.invOK = false
			s.fail(Invariants, fmt.Sprintf("at %v: %v", s.now, err))
		}
	}
	n.last = st
	if n.modelOK {
		if !n.model.Matches(st) { // m.State().Equal(&st), without building the model's state
			ms := n.model.State()
			n.modelFail(fmt.Sprintf("at %v the states differ\nmodel:\n%s\nengine:\n%s", s.now, ms.String(), st.String()))
		}
	}
}

// turnDone: the commit is durable; the outputs go out.
func (n *nodeSim) turnDone(gen uint64) {
	if gen != n.gen {
		return // the node crashed before the commit finished: nothing goes out
	}
	s := n.s
	out := n.out
	n.out, n.busy = turnOut{}, false
	s.observeGrants(&out)
	for i, m := range out.msgs {
		s.sendToClient(&message{client: m.client, epoch: m.epoch, session: m.session, call: m.call, reply: out.replies[i]})
	}
	s.sendEvents(out.events)
	n.kick()
}

// crashSoon cuts the power now, or, for a share of crashes, in the middle
// of the next commit.
func (n *nodeSim) crashSoon() {
	if !n.up {
		return
	}
	if percent(n.s.rng, n.s.opts.MidCommitPercent) {
		n.crashNext = true
		return
	}
	s := n.s
	s.stats.Crashes++
	s.tr.ev(s.now, "crash").bool("mid_commit", false).bool("in_commit", n.busy).end()
	// Every turn stepped so far returned from its synced commit: the model
	// as it is now is what must survive.
	n.down(n.crashImage(s.rng), nil, false)
}

func (n *nodeSim) failSoon() {
	if n.up {
		n.failNext = true
	}
}

// down stops the node: image is what its disk holds now; before, if not
// nil, is the model before the turn whose commit was cut, which may or may
// not have survived.
func (n *nodeSim) down(image *vfs.MemFS, before *spec.Model, failed bool) {
	s := n.s
	n.shutdown()
	n.mem = image
	n.pending = nil
	if before != nil {
		n.pending = []*spec.Model{before}
	}
	n.pending = append(n.pending, n.model)
	for _, c := range s.clients {
		c.nodeDown()
	}
	if s.faulty() {
		s.schedule(event{at: s.at(between(s.rng, time.Millisecond, s.opts.DownMax+time.Millisecond)), kind: evRestart, gen: n.gen})
	} else {
		s.schedule(event{at: s.now, kind: evRestart, gen: n.gen})
	}
}

// shutdown closes the node's store. After a failed write the store is left
// as it is (engine.Store.Close): its background work writes to a file
// system nobody reads again.
func (n *nodeSim) shutdown() {
	if n.node != nil {
		_ = catch(func() error { return n.node.Close() })
		n.node = nil
	}
	n.up, n.busy, n.out, n.inbox = false, false, turnOut{}, nil
	n.gen++
}

func (n *nodeSim) restart(gen uint64) {
	if gen != n.gen || n.up {
		return
	}
	s := n.s
	s.tr.ev(s.now, "restart").end()
	if !n.open() {
		return
	}
	for _, c := range s.clients {
		c.nodeUp()
	}
}

// heal: the node comes back at once if it is down, and faults stop.
func (n *nodeSim) heal() {
	n.calm()
	if !n.up {
		n.s.schedule(event{at: n.s.now, kind: evRestart, gen: n.gen})
	}
}

// recovered checks the first turn after a restart: the recovered state must
// be one the model reaches from a durable state by Recover and Tick.
func (n *nodeSim) recovered(res *engine.TurnResult) bool {
	s := n.s
	core := n.node.Core()
	got := core.State()
	if n.invOK {
		if err := core.CheckInvariantsOf(&got); err != nil {
			n.invOK = false
			s.fail(Invariants, fmt.Sprintf("after the restart at %v: %v", s.now, err))
		}
	}
	n.last = &got
	candidates := n.pending
	n.pending = nil
	if candidates == nil { // the first start
		n.model.Tick(s.now)
		return true
	}
	if !n.modelOK {
		return true
	}
	var diffs []string
	for _, c := range candidates {
		m := c.Clone()
		m.Recover(s.now)
		ev := m.Tick(s.now)
		want := m.State()
		if want.Equal(&got) && spec.EventsEqual(ev, res.Events) {
			n.model = m
			return true
		}
		diffs = append(diffs, want.String())
	}
	n.modelFail(fmt.Sprintf("the state recovered at %v is no durable state of the model\nengine:\n%s\nmodel candidates:\n%s",
		s.now, got.String(), strings.Join(diffs, "--\n")))
	return true
}

// checkEmpty: at the very end, with every client gone, the node must hold
// no session and no resource.
func (n *nodeSim) checkEmpty() {
	s := n.s
	if !n.up {
		s.fail(Liveness, "the node is down at the end")
		return
	}
	if !n.busy {
		n.turn(nil, false)
	}
	st := n.node.Core().State()
	if len(st.Sessions) > 0 || len(st.Resources) > 0 {
		s.fail(Liveness, fmt.Sprintf("after every client closed, the node still holds %d sessions and %d resources:\n%s",
			len(st.Sessions), len(st.Resources), st.String()))
	}
	if n.invOK && n.modelOK {
		n.check(true)
	}
}

func eventsString(evs []spec.Event) string {
	var parts []string
	for _, e := range evs {
		parts = append(parts, e.String())
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func describeInput(in *spec.Input) string {
	s := fmt.Sprintf("%v %s", in.Op, spec.ShortID(in.Session))
	if in.Op.Mutating() {
		s += fmt.Sprintf(" #%d %q", in.Request, in.Resource)
	}
	if in.Op == spec.OpAcquire || in.Op == spec.OpConvert {
		s += " " + in.Mode.String()
	}
	if in.Permits != 0 || in.Limit != 0 {
		s += fmt.Sprintf(" %d/%d permits", in.Permits, in.Limit)
	}
	return s
}

func (s *Sim) traceTurn(msgs []*message, res *engine.TurnResult) {
	s.tr.ev(s.now, "turn").int("inputs", int64(len(msgs))).int("writes", int64(res.Writes)).end()
	for i, m := range msgs {
		s.tr.ev(s.now, "reply").int("c", int64(m.client)).int("call", int64(m.call)).
			str("in", describeInput(&m.input)).str("res", res.Replies[i].String()).end()
	}
	for i := range res.Events {
		s.tr.ev(s.now, "event").str("e", res.Events[i].String()).end()
	}
}
