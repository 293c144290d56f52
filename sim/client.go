package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/bouncer-dlm/bouncer/client/protocol"
	"github.com/bouncer-dlm/bouncer/linearizability"
	"github.com/bouncer-dlm/bouncer/spec"
)

// simClient is one client process: the real protocol.Session core for each of
// its sessions (the current one, and lost ones it is still closing), driven
// by a workload, with a drifting clock, a connection to the node that can
// be reset or partitioned, and the ability to stop the world.
type simClient struct {
	s      *Sim
	idx    int
	clk    clock
	rng    *rand.Rand // its workload's own stream
	cfg    protocol.Config
	cur    *sessRec
	old    []*sessRec // lost or closing sessions not yet answered
	epoch  uint64     // its connection; messages of older ones are lost
	conn   bool
	cut    bool // partitioned from the node
	cutGen uint64
	// In a cluster: the member its connection goes to, and its view of
	// the members (nil with one node).
	member  int
	members *protocol.Members

	paused   bool
	pauseGen uint64
	held     []*message // what arrived while paused

	wakeAt  spec.Time
	wakeSet bool
	wakeGen uint64

	app appState
}

// appState is the workload's state: one operation at a time, a think or
// hold time between decisions.
type appState struct {
	started  bool
	nextAt   spec.Time // next decision
	op       spec.RequestID
	opOn     *sessRec
	cancelAt spec.Time // cancel the queued op then (0: no)
	yield    bool      // told a lock blocks someone: release it next
	write    *write    // decided, not yet sent (a pause may come between)
	draining bool
	done     bool
}

// lockDelayMax bounds the lock-delays the workload asks for.
const lockDelayMax = 500 * time.Millisecond

func newSimClient(s *Sim, i int) *simClient {
	o := &s.opts
	c := &simClient{s: s, idx: i, rng: rand.New(rand.NewPCG(s.rng.Uint64(), uint64(i))), epoch: 1, conn: true}
	c.clk = clock{offset: spec.Time(s.rng.Int64N(int64(1000 * time.Second)))}
	if o.DriftPPM > 0 {
		c.clk.ppm = s.rng.Int64N(2*o.DriftPPM+1) - o.DriftPPM
	}
	c.cfg = protocol.Config{TTL: o.TTL, DriftPPM: o.DriftPPM, Margin: o.LeaseMargin, Limits: s.lim}
	if o.DriftPPM == 0 {
		c.cfg.DriftPPM = -1
	}
	if o.Nodes > 1 {
		// Each client's clock drifts within half the bound, each replica's
		// within the other half: the client allows for DriftPPM between them.
		c.clk.ppm /= 2
		names := make([]string, o.Nodes)
		for i := range names {
			names[i] = memberName(i)
		}
		var err error
		if c.members, err = protocol.NewMembers(names, memberSilence(o)); err != nil {
			panic(fmt.Sprintf("sim: members: %v", err))
		}
		// Clients start on different members.
		for range c.rng.IntN(o.Nodes) {
			c.members.NotLeader("")
		}
		c.member = memberIndex(c.members.Current())
	}
	return c
}

// memberSilence is how long a client waits for any answer before it tries
// another member: a few retries.
func memberSilence(o *Options) time.Duration {
	return 3 * min(o.TTL/8, 500*time.Millisecond)
}

// up reports whether the node, or the client's member, is up.
func (c *simClient) up() bool {
	if cl := c.s.cluster; cl != nil {
		return cl.memberUp(c.member)
	}
	return c.s.node.up
}

// moveTo moves the client's connection to another member: what is in
// flight on the old one is lost, and the sessions resend on the new one.
func (c *simClient) moveTo(name string) {
	s := c.s
	c.member = memberIndex(name)
	c.epoch++
	s.tr.ev(s.now, "move").int("c", int64(c.idx)).int("to", int64(c.member+1)).end()
	switch {
	case c.paused: // it learns when it resumes
		c.held = append(c.held, &message{client: c.idx, epoch: c.epoch, conn: -1})
	case c.conn:
		c.setConn(false)
	}
	s.schedule(event{at: s.at(between(s.rng, time.Millisecond, 10*time.Millisecond)), kind: evConnect, c: c.idx})
}

func (c *simClient) local() spec.Time { return c.clk.local(c.s.now) }

func (c *simClient) startAt(t spec.Time) {
	c.app.nextAt = t
	c.scheduleWake(t)
}

func (c *simClient) cutOff() bool { return c.cut }

// sessions returns the current session and those being closed.
// The slice is fresh: handling an update may change c.cur and c.old.
func (c *simClient) sessions() []*sessRec {
	out := make([]*sessRec, 0, 1+len(c.old))
	if c.cur != nil {
		out = append(out, c.cur)
	}
	return append(out, c.old...)
}

// ---- inputs ----

func (c *simClient) arrive(m *message) {
	s := c.s
	if m.epoch != c.epoch || c.cut {
		if s.tr != nil {
			s.tr.ev(s.now, "lost").int("c", int64(c.idx)).int("call", int64(m.call)).str("at", "client").end()
		}
		return
	}
	if c.paused {
		c.held = append(c.held, m)
		return
	}
	c.deliver(m)
	c.process()
}

func (c *simClient) deliver(m *message) {
	if m.conn != 0 {
		c.setConn(m.conn > 0)
		return
	}
	if c.members != nil && m.event == nil {
		if m.notLeader {
			leader := ""
			if m.leader > 0 {
				leader = memberName(m.leader - 1)
			}
			c.moveTo(c.members.NotLeader(leader))
			return
		}
		c.members.Heard()
	}
	rec := c.s.owners[m.session]
	if rec == nil || rec.client != c.idx || rec.closed {
		return
	}
	local := c.local()
	if m.event != nil {
		rec.observeEvent(c.s.now, m.event)
		rec.proto.Event(local, *m.event)
		return
	}
	rec.observeReply(c.s.now, m.call, &m.reply)
	rec.proto.Reply(local, m.call, m.reply)
}

func (c *simClient) setConn(up bool) {
	if c.conn == up {
		return
	}
	c.conn = up
	for _, rec := range c.sessions() {
		if up {
			rec.proto.Connected(c.local())
		} else {
			rec.proto.Disconnected(c.local())
		}
	}
}

// notice hands the client a local notice about its connection, held if it
// is paused.
func (c *simClient) notice(up bool) {
	m := &message{client: c.idx, epoch: c.epoch}
	if up {
		m.conn = 1
	} else {
		m.conn = -1
	}
	if c.paused {
		c.held = append(c.held, m)
		return
	}
	c.deliver(m)
	c.process()
}

func (c *simClient) wake(gen uint64) {
	if gen != c.wakeGen {
		return
	}
	c.wakeSet = false
	c.process()
}

// process runs the client: its sessions learn that time passed, it reacts
// to what they tell, the workload decides, and what the sessions have to
// send goes out. Then the beliefs are sampled and the next wake is set.
func (c *simClient) process() {
	if c.paused {
		return
	}
	s := c.s
	local := c.local()
	if w := c.app.write; w != nil && s.now >= w.at {
		c.app.write = nil
		s.sendWrite(w)
	}
	if c.members != nil {
		if name, due := c.members.Due(local); due {
			c.moveTo(name)
		}
	}
	for round := 0; round < 8; round++ {
		for _, rec := range c.sessions() {
			rec.proto.Tick(local)
		}
		if !c.handleUpdates() && round > 0 {
			break
		}
		c.step()
		c.flush()
	}
	c.sampleBeliefs()
	c.scheduleNext()
}

// flush hands every session's sends to the network.
func (c *simClient) flush() {
	s := c.s
	local := c.local()
	for _, rec := range c.sessions() {
		for _, send := range rec.proto.Sends(local) {
			rec.sent(s.now, send)
			if s.tr != nil {
				s.tr.ev(s.now, "send").int("c", int64(c.idx)).str("s", short(rec.id)).int("call", int64(send.Call)).
					str("in", describeInput(&send.Input)).end()
			}
			s.sendToNode(&message{client: c.idx, epoch: c.epoch, member: c.member, session: rec.id, call: send.Call, input: send.Input})
			if c.members != nil {
				c.members.Sent(local)
			}
		}
	}
}

// handleUpdates records and reacts to what the sessions learned; it reports
// whether there was anything.
func (c *simClient) handleUpdates() bool {
	any := false
	for _, rec := range c.sessions() {
		for _, u := range rec.proto.Updates() {
			any = true
			c.update(rec, u)
		}
	}
	return any
}

func (c *simClient) update(rec *sessRec, u protocol.Update) {
	s := c.s
	if s.tr != nil {
		t := s.tr.ev(s.now, "update").int("c", int64(c.idx)).str("s", short(rec.id)).str("kind", u.Kind.String())
		if u.Request != 0 {
			t.int("req", int64(u.Request))
		}
		if u.Kind == protocol.Done || u.Kind == protocol.SessionLost || u.Kind == protocol.SessionClosed {
			t.str("res", u.Result.String()).bool("unknown", u.Unknown)
		}
		t.end()
	}
	switch u.Kind {
	case protocol.Queued:
		rec.queued(s.now, u.Request)
		if u.Request == c.app.op && percent(c.rng, s.opts.CancelPercent) {
			c.app.cancelAt = s.now.Add(between(c.rng, 0, s.opts.WaitMax))
		}
	case protocol.Done:
		rec.finished(s.now, u)
		if u.Request == c.app.op && rec == c.app.opOn {
			c.app.op, c.app.opOn, c.app.cancelAt = 0, nil, 0
		}
	case protocol.Blocking:
		if percent(c.rng, s.opts.YieldPercent) {
			c.app.yield = true
			c.app.nextAt = min(c.app.nextAt, s.now)
		}
	case protocol.SessionLost:
		rec.lost(s.now, u.ByNode)
		if rec == c.cur {
			c.cur = nil
			c.old = append(c.old, rec)
			c.app.nextAt = s.now.Add(between(c.rng, 0, s.opts.ThinkMax))
		}
		if !rec.proto.Closing() {
			_ = rec.proto.Close(c.local())
			rec.closeCalled(s.now)
		}
	case protocol.SessionClosed:
		rec.closeAnswered(s.now, u.Result)
		if rec == c.cur {
			c.cur = nil
		}
		c.old = slices.DeleteFunc(c.old, func(r *sessRec) bool { return r == rec })
		if c.app.draining && c.cur == nil && len(c.old) == 0 && !c.app.done {
			c.app.done = true
			s.tr.ev(s.now, "client-done").int("c", int64(c.idx)).end()
			s.clientDone()
		}
	}
}

// scheduleNext sets the client's next wake: the earliest of its sessions'
// deadlines (in true time) and its workload's timers.
func (c *simClient) scheduleNext() {
	var at spec.Time
	ok := false
	take := func(t spec.Time) {
		if !ok || t < at {
			at, ok = t, true
		}
	}
	for _, rec := range c.sessions() {
		if d, has := rec.proto.NextDeadline(); has {
			take(c.clk.trueAt(d))
		}
	}
	if c.members != nil && c.conn {
		if d, has := c.members.NextDeadline(); has {
			take(c.clk.trueAt(d))
		}
	}
	// Workload timers already due wait for an update (an open, an answer).
	future := func(t spec.Time) {
		if t > c.s.now {
			take(t)
		}
	}
	if !c.app.done {
		if c.app.op == 0 {
			future(c.app.nextAt)
		}
		if c.app.cancelAt != 0 {
			future(c.app.cancelAt)
		}
	}
	if c.app.write != nil {
		future(c.app.write.at)
	}
	if ok {
		c.scheduleWake(max(at, c.s.now))
	}
}

func (c *simClient) scheduleWake(at spec.Time) {
	if c.wakeSet && c.wakeAt <= at {
		return
	}
	c.wakeGen++
	c.wakeAt, c.wakeSet = at, true
	c.s.schedule(event{at: at, kind: evClientWake, c: c.idx, gen: c.wakeGen})
}

// ---- the workload ----

// step is the workload's decision, if one is due.
func (c *simClient) step() {
	s := c.s
	if c.app.done {
		return
	}
	if c.cur == nil {
		if c.app.draining {
			return
		}
		if s.now >= c.app.nextAt {
			c.openSession()
		}
		return
	}
	rec := c.cur
	local := c.local()
	if rec.proto.Status(local) != protocol.StatusOpen {
		return
	}
	if c.app.op != 0 {
		if c.app.cancelAt != 0 && s.now >= c.app.cancelAt {
			c.app.cancelAt = 0
			if id, err := rec.proto.Cancel(local, rec.requestResource(c.app.op)); err == nil {
				rec.called(s.now, id, spec.Input{Op: spec.OpCancel, Resource: rec.requestResource(c.app.op)})
			}
		}
		return
	}
	if s.now < c.app.nextAt {
		return
	}
	held := c.believed(rec, local)
	c.app.nextAt = s.now.Add(between(c.rng, 0, s.opts.ThinkMax))
	switch {
	case c.app.draining:
		if len(held) == 0 {
			c.closeSession(rec)
			return
		}
		c.release(rec, held[0])
	case c.app.yield && len(held) > 0:
		c.app.yield = false
		c.release(rec, held[c.rng.IntN(len(held))])
	case len(held) == 0 || len(held) < 3 && percent(c.rng, s.opts.MultiPercent):
		c.app.yield = false
		c.acquire(rec)
	default:
		c.onHeld(rec, held[c.rng.IntN(len(held))])
	}
}

func (c *simClient) believed(rec *sessRec, local spec.Time) []protocol.LockInfo {
	var held []protocol.LockInfo
	for _, l := range rec.proto.Locks(local) {
		if l.State.Believed() && !l.Busy {
			held = append(held, l)
		}
	}
	return held
}

func (c *simClient) openSession() {
	s := c.s
	var id spec.SessionID
	for id.IsZero() {
		for i := range id {
			id[i] = byte(c.rng.Uint32())
		}
	}
	proto, err := protocol.NewSession(id, c.cfg, c.local())
	if err != nil {
		panic(fmt.Sprintf("sim: client config: %v", err))
	}
	if !c.conn {
		proto.Disconnected(c.local())
	}
	rec := &sessRec{id: id, client: c.idx, proto: proto, ttl: c.s.opts.TTL, reqs: map[spec.RequestID]*linearizability.Entry{}}
	c.cur = rec
	s.owners[id] = rec
	s.sessions = append(s.sessions, rec)
	s.stats.Sessions++
	s.tr.ev(s.now, "session").int("c", int64(c.idx)).str("s", short(id)).end()
}

func (c *simClient) closeSession(rec *sessRec) {
	if err := rec.proto.Close(c.local()); err == nil {
		rec.closeCalled(c.s.now)
		c.old = append(c.old, rec)
		c.cur = nil
	}
}

func (c *simClient) pickMode() spec.Mode {
	total := 0
	for _, w := range c.s.opts.Modes {
		total += w
	}
	n := c.rng.IntN(total)
	for m, w := range c.s.opts.Modes {
		if n < w {
			return spec.Mode(m)
		}
		n -= w
	}
	return spec.EX
}

func (c *simClient) acquire(rec *sessRec) {
	s := c.s
	o := &s.opts
	var free []string
	for _, r := range s.resources {
		if rec.proto.Lock(c.local(), r).State == protocol.None {
			free = append(free, r)
		}
	}
	if len(free) == 0 {
		return
	}
	in := spec.Input{Op: spec.OpAcquire, Resource: free[c.rng.IntN(len(free))], Mode: c.pickMode()}
	opt := protocol.AcquireOptions{NoQueue: percent(c.rng, o.TryPercent)}
	if limit := s.limits[s.resIndex[in.Resource]]; limit != 0 {
		// Mostly one permit, sometimes many: a large request at the head
		// of the queue holds the small ones back.
		in.Mode, opt.Limit, opt.Permits = spec.PR, limit, 1
		if c.rng.IntN(3) == 0 {
			opt.Permits = 1 + uint32(c.rng.IntN(int(limit)))
		}
		in.Permits, in.Limit = opt.Permits, opt.Limit
	}
	if !opt.NoQueue {
		opt.WaitTimeout = between(c.rng, o.WaitMin, o.WaitMax)
	}
	if percent(c.rng, o.LockDelayPercent) {
		opt.LockDelay = between(c.rng, 10*time.Millisecond, lockDelayMax)
	}
	in.NoQueue, in.WaitTimeout, in.LockDelay = opt.NoQueue, opt.WaitTimeout, opt.LockDelay
	id, err := rec.proto.Acquire(c.local(), in.Resource, in.Mode, opt)
	c.did(rec, id, err, in)
}

// onHeld decides what to do with a held lock: write under it, convert it,
// close the whole session, or release it.
func (c *simClient) onHeld(rec *sessRec, l protocol.LockInfo) {
	o := &c.s.opts
	switch {
	case l.Mode.WritesValue() && percent(c.rng, o.WritePercent):
		c.decideWrite(rec, l)
	case l.Permits == 0 && percent(c.rng, o.ConvertPercent): // permits are never converted
		c.convert(rec, l)
	case percent(c.rng, o.ClosePercent):
		c.closeSession(rec)
	default:
		c.release(rec, l)
	}
	c.app.nextAt = c.s.now.Add(between(c.rng, 0, o.HoldMax))
}

func (c *simClient) convert(rec *sessRec, l protocol.LockInfo) {
	o := &c.s.opts
	mode := c.pickMode()
	if mode == l.Mode {
		mode = spec.Mode(c.rng.IntN(spec.ModeCount))
	}
	opt := protocol.ConvertOptions{NoQueue: percent(c.rng, o.TryPercent)}
	if !opt.NoQueue {
		opt.WaitTimeout = between(c.rng, o.WaitMin, o.WaitMax)
	}
	if l.Mode.WritesValue() && spec.Weaker(mode, l.Mode) && percent(c.rng, o.ValuePercent) {
		opt.WriteValue, opt.Value = true, c.value()
	}
	in := spec.Input{Op: spec.OpConvert, Resource: l.Resource, Mode: mode, NoQueue: opt.NoQueue,
		WaitTimeout: opt.WaitTimeout, WriteValue: opt.WriteValue, Value: opt.Value}
	id, err := rec.proto.Convert(c.local(), l.Resource, mode, opt)
	c.did(rec, id, err, in)
}

func (c *simClient) release(rec *sessRec, l protocol.LockInfo) {
	var opt protocol.ReleaseOptions
	if l.Mode.WritesValue() && percent(c.rng, c.s.opts.ValuePercent) {
		opt.WriteValue, opt.Value = true, c.value()
	}
	in := spec.Input{Op: spec.OpRelease, Resource: l.Resource, WriteValue: opt.WriteValue, Value: opt.Value}
	id, err := rec.proto.Release(c.local(), l.Resource, opt)
	c.did(rec, id, err, in)
}

func (c *simClient) value() []byte { return []byte(fmt.Sprintf("c%d-%d", c.idx, c.rng.IntN(1000))) }

// did records a request the workload made.
func (c *simClient) did(rec *sessRec, id spec.RequestID, err error, in spec.Input) {
	if err != nil {
		return // the session cannot take it now (for example, its lease just ran out)
	}
	c.s.stats.Ops++
	rec.called(c.s.now, id, in)
	c.app.op, c.app.opOn = id, rec
}

// decideWrite: the client checked it holds a PW or EX lock and will write
// under its token. Between the check and the send a pause may come: on
// resuming it writes anyway, as a process that did not look again would.
func (c *simClient) decideWrite(rec *sessRec, l protocol.LockInfo) {
	s := c.s
	w := &write{client: c.idx, session: rec.id, resource: l.Resource, token: l.Token, grant: l.Grant,
		at: s.now.Add(between(c.rng, 0, time.Millisecond))}
	c.app.write = w
	if s.faulty() && s.opts.PauseEvery > 0 && percent(c.rng, s.opts.PauseOnWritePercent) {
		c.pause(between(s.rng, s.opts.PauseMax/10, s.opts.PauseMax))
	}
}

// ---- faults ----

func (c *simClient) pause(d time.Duration) {
	s := c.s
	if c.paused {
		return
	}
	s.stats.Pauses++
	c.paused = true
	c.pauseGen++
	s.tr.ev(s.now, "pause").int("c", int64(c.idx)).int("for", int64(d)).end()
	s.schedule(event{at: s.at(d), kind: evResume, c: c.idx, gen: c.pauseGen})
}

func (c *simClient) resume(gen uint64) {
	if !c.paused || gen != c.pauseGen {
		return
	}
	s := c.s
	c.paused = false
	s.tr.ev(s.now, "resume").int("c", int64(c.idx)).end()
	// The interrupted write goes out first, without looking again.
	if w := c.app.write; w != nil {
		c.app.write = nil
		s.sendWrite(w)
	}
	held := c.held
	c.held = nil
	for _, m := range held {
		c.deliver(m)
	}
	c.process()
}

func (c *simClient) partition(d time.Duration) {
	s := c.s
	if c.cut {
		return
	}
	s.stats.Partitions++
	c.cut = true
	c.cutGen++
	s.tr.ev(s.now, "partition").int("c", int64(c.idx)).int("for", int64(d)).end()
	s.schedule(event{at: s.at(d), kind: evPartitionEnd, c: c.idx, gen: c.cutGen})
}

func (c *simClient) partitionEnd(gen uint64) {
	if c.cut && gen == c.cutGen {
		c.cut = false
		c.s.tr.ev(c.s.now, "partition-end").int("c", int64(c.idx)).end()
	}
}

// reset breaks the client's connection: what is in flight on it is lost;
// the client notices and connects again a little later.
func (c *simClient) reset() {
	s := c.s
	if !c.conn || !c.up() {
		return
	}
	s.stats.Resets++
	c.epoch++
	s.tr.ev(s.now, "reset").int("c", int64(c.idx)).end()
	c.notice(false)
	s.schedule(event{at: s.at(between(s.rng, time.Millisecond, 100*time.Millisecond)), kind: evConnect, c: c.idx})
}

func (c *simClient) connect() {
	if c.paused {
		// A notice that the connection went down may be held until it
		// resumes: connect after that.
		c.s.schedule(event{at: c.s.at(10 * time.Millisecond), kind: evConnect, c: c.idx})
		return
	}
	if c.conn {
		return
	}
	if !c.up() {
		if c.members != nil { // that member is down: try the next
			c.moveTo(c.members.NotLeader(""))
		}
		return
	}
	c.notice(true)
}

// nodeDown: the node's process died with every connection.
func (c *simClient) nodeDown() {
	c.epoch++
	c.notice(false)
}

// nodeUp: the node is back; clients reconnect after a moment.
func (c *simClient) nodeUp() {
	s := c.s
	s.schedule(event{at: s.at(between(s.rng, time.Millisecond, 50*time.Millisecond)), kind: evConnect, c: c.idx})
}

func (c *simClient) heal() {
	c.cut = false
	c.cutGen++
	if c.paused {
		c.resume(c.pauseGen)
	}
	if !c.conn && c.up() {
		c.notice(true)
	}
}

func (c *simClient) drain() {
	c.app.draining = true
	c.app.nextAt = c.s.now
	if c.cur == nil && len(c.old) == 0 && !c.app.done {
		c.app.done = true
		c.s.clientDone()
		return
	}
	c.process()
}

// describe says what a client that is not done is still waiting for.
func (c *simClient) describe() string {
	var parts []string
	for _, rec := range c.sessions() {
		local := c.local()
		st := rec.proto.Status(local)
		desc := fmt.Sprintf("session %s %v", short(rec.id), st)
		if rec.proto.Closing() {
			desc += " closing"
		}
		if u := rec.proto.Unresolved(); len(u) > 0 {
			desc += fmt.Sprintf(" unresolved requests %v", u)
		}
		parts = append(parts, desc)
	}
	return fmt.Sprintf("client %d (%s)", c.idx, strings.Join(parts, ", "))
}

func short(id spec.SessionID) string { return id.String()[:8] }
