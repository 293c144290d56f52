package sim

import (
	"fmt"
	"io"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/bouncer-dlm/bouncer/linearizability"
	"github.com/bouncer-dlm/bouncer/spec"
)

// Config is how to run a simulation; unlike Options it changes nothing in
// what happens, only what is written and kept.
type Config struct {
	// Trace, if not nil, receives the NDJSON trace.
	Trace io.Writer
	// LinTimeout bounds the linearizability check (default
	// linearizability.DefaultTimeout). Running out is a failure.
	LinTimeout time.Duration
	// States, if not nil, is given the node's state after every turn that
	// wrote something or restarted it (in a raft group: the state of the
	// first replica to apply each new index), in order of true time, so a
	// replay of the run can show its queues (package sim/replay). The
	// state is a fresh copy, the callee's to keep; it is built only when
	// States is set, and reading it changes nothing in the run.
	States func(at spec.Time, st *spec.State)
}

// Checker names, in the order verdicts are reported.
const (
	Linearizability = "linearizability"
	Mutex           = "mutex"
	Fencing         = "fencing"
	Tokens          = "tokens"
	Invariants      = "invariants"
	Model           = "model"
	Liveness        = "liveness"
	// Replication judges a cluster: at most one leader per term, one entry
	// per index on every replica, equal states at equal applied indexes,
	// and answers only from the replica that proposed a committed entry.
	Replication = "replication"
)

// Checkers lists every checker, in the order verdicts are reported: the
// built-in ones, then those registered by registerChecker.
var Checkers = []string{Linearizability, Mutex, Fencing, Tokens, Invariants, Model, Liveness, Replication}

// A judge is a checker that looks at the whole run once it has ended (its
// history, grants, writes, stats): it returns why the run fails ("" if it
// passes) and, for a pass, what it checked.
type judge func(s *Sim) (failure, detail string)

// judges are the registered checkers' judges, by name.
var judges = map[string]judge{}

// registerChecker adds a checker to every run, and so to `bouncer sim`,
// `bouncer zoo` and the zoo test: a new checker is one file in this
// package whose init calls it (see sim/README.md, "Adding a checker").
// A checker that must watch events as they happen also calls s.fail(name,
// why) where they happen.
func registerChecker(name string, j judge) {
	if slices.Contains(Checkers, name) {
		panic("sim: checker " + name + " registered twice")
	}
	Checkers = append(Checkers, name)
	judges[name] = j
}

// Kind is the kind of a failed run.
type Kind uint8

const (
	Passed             Kind = iota
	CorrectnessFailure      // a safety checker failed
	LivenessFailure         // only the liveness checker failed
	CrashFailure            // the engine panicked or could not recover its store
)

var kindNames = [...]string{"passed", "correctness", "liveness", "crash"}

func (k Kind) String() string { return kindNames[k] }

// Verdict is one checker's judgement of a run.
type Verdict struct {
	Checker string
	OK      bool
	Detail  string // why it failed, or what it checked
}

// Stats count what a run did.
type Stats struct {
	SimTime    time.Duration // simulated time
	Events     int           // simulator events
	Turns      int           // node turns
	Inputs     int           // inputs stepped by the node
	Ops        int           // client requests called
	Writes     int           // writes to the fenced resources
	Sessions   int
	Crashes    int
	DiskFaults int
	Partitions int
	Pauses     int
	Resets     int
	// In a cluster: terms that had a leader, failover entries applied,
	// and changes of the raft network's layout.
	Elections      int
	Failovers      int
	RaftPartitions int
	Transfers      int
	MemberChanges  int
	Reads          int // linearizable reads asked (cluster)
	ReadsAnswered  int
}

// Report is the outcome of one simulation.
type Report struct {
	Options  Options
	Verdicts []Verdict
	Kind     Kind
	Crash    string // the panic or recovery error, for Kind Crash
	Stats    Stats
	History  []linearizability.Entry
	lin      *linearizability.Report
	linLimit time.Duration
}

// Slim drops the run's history and its linearizability check, which hold
// most of a report's memory, from a report that will not be written out
// (a campaign keeps passing runs only for their summary).
func (r *Report) Slim() {
	r.History, r.lin = nil, nil
}

// Failed reports whether the run failed.
func (r *Report) Failed() bool { return r.Kind != Passed }

// Verdict returns the named checker's verdict.
func (r *Report) Verdict(checker string) Verdict {
	for _, v := range r.Verdicts {
		if v.Checker == checker {
			return v
		}
	}
	return Verdict{Checker: checker}
}

// FailedCheckers lists the checkers that failed.
func (r *Report) FailedCheckers() []string {
	var out []string
	for _, v := range r.Verdicts {
		if !v.OK {
			out = append(out, v.Checker)
		}
	}
	return out
}

// WriteHTML writes Porcupine's visualization of the run's history.
func (r *Report) WriteHTML(w io.Writer) error {
	if r.lin == nil {
		return fmt.Errorf("sim: no history was checked")
	}
	return r.lin.WriteHTML(w, r.linLimit)
}

// Summary is one line: the seed, the outcome and the failing checkers.
func (r *Report) Summary() string {
	s := fmt.Sprintf("seed=%d %s", r.Options.Seed, r.Kind)
	if f := r.FailedCheckers(); len(f) > 0 {
		s += " failed=" + strings.Join(f, ",")
	}
	return s
}

// diskFaultsMax bounds the failed writes of one run (see evDiskFault).
const diskFaultsMax = 2

// sameInstantMax bounds the events at one instant: beyond it the simulator
// itself loops (a programmer error, reported as a crash).
const sameInstantMax = 100_000

type phase uint8

const (
	phaseSafety phase = iota
	phaseCalm
	phaseDrain
	phaseEnd
)

// Sim is one simulation in progress. It owns no goroutine: Run pops events
// from its queue in order of true time until the run ends.
type Sim struct {
	opts  Options
	cfg   Config
	lim   spec.Limits
	rng   *rand.Rand // network, faults: one stream per seed
	now   spec.Time
	q     queue
	tr    *tracer
	phase phase
	done  bool

	node      *nodeSim    // one node (Options.Nodes 1), or
	cluster   *clusterSim // a raft group
	clients   []*simClient
	resources []string
	resIndex  map[string]int
	limits    []uint32 // by resource: a semaphore's permits, 0 for a lock
	owners    map[spec.SessionID]*sessRec
	sessions  []*sessRec
	mutex     [][]segment // belief segments by resource
	fence     []fenceRes
	tokens    []tokenRes
	grants    map[grantKey]uint64 // the order of each grant on its resource
	seen      map[grantKey]bool   // request ids the node stepped (token 0)

	failures map[string]string // checker -> first failure
	crash    string
	stats    Stats
}

// Run simulates one seed's options and judges the run.
func Run(o Options, cfg Config) (rep *Report) {
	if err := o.Validate(); err != nil {
		return &Report{Options: o, Kind: CrashFailure, Crash: err.Error()}
	}
	if o.Nodes > 1 {
		defer seedRaft(o.Seed)()
	}
	s := newSim(o, cfg)
	defer s.closeNode()
	func() {
		defer func() {
			if p := recover(); p != nil {
				s.crashed(fmt.Sprintf("panic: %v\n%s", p, debug.Stack()))
			}
		}()
		s.start()
		same := 0
		for !s.done && s.q.len() > 0 {
			e := s.q.pop()
			if e.at == s.now {
				if same++; same > sameInstantMax {
					panic(fmt.Sprintf("sim: more than %d events at %v: the simulation does not advance", sameInstantMax, s.now))
				}
			} else {
				same = 0
			}
			s.now = e.at
			s.stats.Events++
			s.dispatch(e)
			s.q.release(e)
		}
	}()
	return s.judge()
}

func newSim(o Options, cfg Config) *Sim {
	s := &Sim{opts: o, cfg: cfg, rng: rand.New(rand.NewPCG(o.Seed, 0x4e4554)), tr: newTracer(cfg.Trace),
		owners: map[spec.SessionID]*sessRec{}, grants: map[grantKey]uint64{}, seen: map[grantKey]bool{}, failures: map[string]string{},
		resIndex: map[string]int{}}
	s.lim = simLimits(o)
	for i := 0; i < o.Resources; i++ {
		name := fmt.Sprintf("r%d", i)
		s.resources = append(s.resources, name)
		s.resIndex[name] = i
		var limit uint32
		if i >= o.Resources-o.Semaphores {
			limit = o.SemaphoreLimit
		}
		s.limits = append(s.limits, limit)
	}
	s.mutex = make([][]segment, o.Resources)
	s.fence = make([]fenceRes, o.Resources)
	s.tokens = make([]tokenRes, o.Resources)
	for i := range s.tokens {
		s.tokens[i].owner = map[spec.Token]spec.SessionID{}
	}
	return s
}

// simLimits are the node's limits: the defaults, with small bounds where
// a simulation should reach them.
func simLimits(o Options) spec.Limits {
	lim := spec.DefaultLimits()
	lim.WaitersPerResourceMax = max(3, o.Clients/o.Resources+1)
	lim.TombstonesMax = 32
	lim.RepliesPerSessionMax = 64
	lim.InputsPerBatchMax = 64
	return lim
}

func (s *Sim) at(d time.Duration) spec.Time { return s.now.Add(d) }

func (s *Sim) schedule(e event) { s.q.push(e) }

// between draws a duration uniformly from [lo, hi].
func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
}

func percent(r *rand.Rand, p int) bool { return p > 0 && r.IntN(100) < p }

// gap draws the time to the next of a fault that comes about every mean.
func gap(r *rand.Rand, mean time.Duration) time.Duration {
	return between(r, mean/10, 2*mean)
}

func (s *Sim) start() {
	o := &s.opts
	if s.tr != nil {
		s.traceOptions()
	}
	if o.Nodes > 1 {
		s.cluster = newClusterSim(s)
	} else {
		s.node = newNodeSim(s)
		s.node.open()
	}
	for i := 0; i < o.Clients; i++ {
		s.clients = append(s.clients, newSimClient(s, i))
	}
	if s.cluster != nil {
		s.cluster.start()
	}
	for _, c := range s.clients {
		c.startAt(spec.Time(between(c.rng, 0, 100*time.Millisecond)))
		if o.PartitionEvery > 0 {
			s.schedule(event{at: s.at(gap(s.rng, o.PartitionEvery)), kind: evPartition, c: c.idx})
		}
		if o.ResetEvery > 0 {
			s.schedule(event{at: s.at(gap(s.rng, o.ResetEvery)), kind: evReset, c: c.idx})
		}
		if o.PauseEvery > 0 {
			s.schedule(event{at: s.at(gap(s.rng, o.PauseEvery)), kind: evPause, c: c.idx})
		}
	}
	if o.CrashEvery > 0 {
		s.schedule(event{at: s.at(gap(s.rng, o.CrashEvery)), kind: evCrash})
	}
	if o.DiskFaultEvery > 0 && !bugForbidsDiskFaults() {
		s.schedule(event{at: s.at(gap(s.rng, o.DiskFaultEvery)), kind: evDiskFault})
	}
	s.schedule(event{at: spec.Time(o.Safety), kind: evHeal})
	s.schedule(event{at: spec.Time(o.Safety + o.Calm), kind: evDrain})
}

func (s *Sim) faulty() bool { return s.phase == phaseSafety }

func (s *Sim) dispatch(e *event) {
	o := &s.opts
	switch e.kind {
	case evNodeArrive:
		if s.cluster != nil {
			s.cluster.arrive(e.msg)
			break
		}
		s.node.arrive(e.msg)
	case evReplicaTick:
		s.cluster.reps[e.n].tick(e.gen)
	case evReplicaOut:
		s.cluster.reps[e.n].sent(e.gen, e.out)
	case evRaftArrive:
		s.cluster.raftArrive(e)
	case evLayout:
		s.cluster.layout()
	case evLayoutEnd:
		s.cluster.layoutEnd(e.gen)
	case evLeaderCheck:
		s.cluster.leaderCheck()
	case evTransfer:
		if s.faulty() {
			s.cluster.transfer()
			s.schedule(event{at: s.at(gap(s.rng, o.TransferEvery)), kind: evTransfer})
		}
	case evMembers:
		if s.faulty() {
			s.cluster.members()
			s.schedule(event{at: s.at(gap(s.rng, o.MemberEvery)), kind: evMembers})
		}
	case evRemoved:
		s.cluster.reps[e.n].removed()
	case evRead:
		if s.faulty() {
			s.cluster.read()
			s.schedule(event{at: s.at(gap(s.rng, o.ReadEvery)), kind: evRead})
		}
	case evReadArrive:
		s.cluster.readArrive(e)
	case evClientArrive:
		s.clients[e.c].arrive(e.msg)
	case evTurnDone:
		s.node.turnDone(e.gen)
	case evNodeTimer:
		s.node.timer(e.gen)
	case evCrash:
		if s.faulty() && s.cluster != nil {
			s.cluster.crash()
			s.schedule(event{at: s.at(gap(s.rng, o.CrashEvery)), kind: evCrash})
		} else if s.faulty() {
			s.node.crashSoon()
			s.schedule(event{at: s.at(gap(s.rng, o.CrashEvery)), kind: evCrash})
		}
	case evRestart:
		if s.cluster != nil {
			s.cluster.reps[e.n].restart(e.gen)
			break
		}
		s.node.restart(e.gen)
	case evDiskFault:
		// A node stopped by a failed write leaves its Pebble instance
		// behind (engine.Store.Close does not close it: its state is
		// unknown), with its goroutines and memtables: a few per run.
		if s.faulty() && s.stats.DiskFaults < diskFaultsMax {
			if s.cluster != nil {
				s.cluster.failSoon()
				s.schedule(event{at: s.at(gap(s.rng, o.DiskFaultEvery)), kind: evDiskFault})
				break
			}
			s.node.failSoon()
			s.schedule(event{at: s.at(gap(s.rng, o.DiskFaultEvery)), kind: evDiskFault})
		}
	case evClientWake:
		s.clients[e.c].wake(e.gen)
	case evPause:
		if s.faulty() {
			s.clients[e.c].pause(between(s.rng, o.PauseMax/10, o.PauseMax))
			s.schedule(event{at: s.at(gap(s.rng, o.PauseEvery)), kind: evPause, c: e.c})
		}
	case evResume:
		s.clients[e.c].resume(e.gen)
	case evPartition:
		if s.faulty() {
			s.clients[e.c].partition(between(s.rng, o.PartitionMax/10, o.PartitionMax))
			s.schedule(event{at: s.at(gap(s.rng, o.PartitionEvery)), kind: evPartition, c: e.c})
		}
	case evPartitionEnd:
		s.clients[e.c].partitionEnd(e.gen)
	case evReset:
		if s.faulty() {
			s.clients[e.c].reset()
			s.schedule(event{at: s.at(gap(s.rng, o.ResetEvery)), kind: evReset, c: e.c})
		}
	case evConnect:
		s.clients[e.c].connect()
	case evFence:
		s.fenceWrite(e.w)
	case evHeal:
		s.heal()
	case evDrain:
		s.drain()
	case evDeadline:
		s.deadline(e.gen == 1)
	}
}

// heal ends the safety phase: every fault heals at once.
func (s *Sim) heal() {
	s.phase = phaseCalm
	s.tr.ev(s.now, "heal").end()
	if s.cluster != nil {
		s.cluster.heal()
	} else {
		s.node.heal()
	}
	for _, c := range s.clients {
		c.heal()
	}
}

// drain ends the calm phase: clients finish what they do, release, close.
func (s *Sim) drain() {
	s.phase = phaseDrain
	s.tr.ev(s.now, "drain").int("bound", int64(s.opts.LivenessBound)).end()
	s.schedule(event{at: s.at(s.opts.LivenessBound), kind: evDeadline})
	for _, c := range s.clients {
		c.drain()
	}
}

// clientDone is called when a client has closed every session in the
// drain: once all have, the run ends after the node had time to forget
// every session and lock-delay.
func (s *Sim) clientDone() {
	for _, c := range s.clients {
		if !c.app.done {
			return
		}
	}
	s.schedule(event{at: s.at(s.opts.TTL + lockDelayMax + time.Second), kind: evDeadline, gen: 1})
	s.phase = phaseEnd
}

// deadline: either the liveness bound passed (gen 0), or every client is
// done and the node has had time to forget them (gen 1). The run ends here.
func (s *Sim) deadline(final bool) {
	if s.done || s.phase == phaseEnd && !final {
		return
	}
	s.done = true
	var stuck []string
	for _, c := range s.clients {
		if !c.app.done {
			stuck = append(stuck, c.describe())
		}
	}
	if len(stuck) > 0 {
		s.fail(Liveness, fmt.Sprintf("%d of %d clients not done %v after the drain began: %s",
			len(stuck), len(s.clients), s.opts.LivenessBound, strings.Join(stuck, "; ")))
		return
	}
	if s.cluster != nil {
		s.cluster.checkEmpty()
		return
	}
	s.node.checkEmpty()
}

// fail records the first failure of a checker.
func (s *Sim) fail(checker, detail string) {
	if _, ok := s.failures[checker]; ok {
		return
	}
	s.failures[checker] = detail
	s.tr.ev(s.now, "failure").str("checker", checker).str("detail", detail).end()
}

// crashed records a crash of the engine (a panic, or a store it cannot
// recover) and ends the run.
func (s *Sim) crashed(why string) {
	if s.crash == "" {
		s.crash = why
		s.tr.ev(s.now, "crash-failure").str("detail", firstLine(why)).end()
	}
	s.done = true
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func (s *Sim) closeNode() {
	if s.node != nil {
		s.node.shutdown()
	}
	if s.cluster != nil {
		s.cluster.shutdown()
	}
}

// judge runs the checkers that look at the whole run and builds the report.
func (s *Sim) judge() *Report {
	s.stats.SimTime = time.Duration(s.now)
	rep := &Report{Options: s.opts, Stats: s.stats, Crash: s.crash, linLimit: s.cfg.LinTimeout}
	rep.History = s.history()
	lin := linearizability.Check(rep.History, s.cfg.LinTimeout)
	rep.lin = &lin
	if !lin.OK() {
		s.fail(Linearizability, lin.String())
	}
	s.checkMutex()
	details := map[string]string{
		Linearizability: lin.String(),
		Mutex:           fmt.Sprintf("%d belief intervals", s.segmentCount()),
		Fencing:         fmt.Sprintf("%d writes", s.stats.Writes),
		Tokens:          fmt.Sprintf("%d grants", len(s.grants)),
		Invariants:      fmt.Sprintf("%d turns", s.stats.Turns),
		Model:           fmt.Sprintf("%d inputs", s.stats.Inputs),
		Liveness:        "every request resolved and every session closed within the bound",
		Replication:     "one node: nothing replicated",
	}
	if s.cluster != nil {
		details[Replication] = fmt.Sprintf("%d entries, %d leaders, %d failovers", s.cluster.modelIndex, s.stats.Elections, s.stats.Failovers)
	}
	for _, name := range Checkers {
		if j := judges[name]; j != nil {
			failure, detail := j(s)
			details[name] = detail
			if failure != "" {
				s.fail(name, failure)
			}
		}
	}
	for _, name := range Checkers {
		v := Verdict{Checker: name, OK: true, Detail: details[name]}
		if d, failed := s.failures[name]; failed {
			v.OK, v.Detail = false, d
		}
		if name == Liveness && s.crash != "" && v.OK {
			v.Detail = "not judged: the run crashed"
		}
		rep.Verdicts = append(rep.Verdicts, v)
	}
	switch {
	case s.crash != "":
		rep.Kind = CrashFailure
	case len(s.failures) > 1:
		rep.Kind = CorrectnessFailure
	case len(s.failures) == 1:
		rep.Kind = CorrectnessFailure
		if _, ok := s.failures[Liveness]; ok {
			rep.Kind = LivenessFailure
		}
	}
	if s.tr != nil {
		for _, v := range rep.Verdicts {
			s.tr.ev(s.now, "verdict").str("checker", v.Checker).bool("ok", v.OK).str("detail", v.Detail).end()
		}
		s.tr.ev(s.now, "end").str("kind", rep.Kind.String()).int("events", int64(s.stats.Events)).
			int("turns", int64(s.stats.Turns)).int("ops", int64(s.stats.Ops)).end()
		_ = s.tr.flush()
	}
	return rep
}

func (s *Sim) traceOptions() {
	o := &s.opts
	t := s.tr.ev(0, "options").int("seed", int64(o.Seed)).int("clients", int64(o.Clients)).
		int("resources", int64(o.Resources)).int("safety", int64(o.Safety)).int("calm", int64(o.Calm)).
		int("liveness_bound", int64(o.LivenessBound)).int("ttl", int64(o.TTL)).int("drift_ppm", o.DriftPPM)
	t.str("faults", strings.Join(o.Faults(), " ")).str("bug", plantedBugName())
	t.end()
}
