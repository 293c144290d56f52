package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// Options fix one simulation. Everything in them is derived from the seed
// (swarm testing: each seed draws its own workload mix and its own set of
// faults, so that a campaign covers combinations no single setting would);
// a few can be overridden, and the replay command then names them.
type Options struct {
	Seed uint64

	Clients   int
	Resources int
	// Safety is the phase with faults on; Calm is the workload that runs on
	// after every fault is healed; then the clients drain (finish, release,
	// close) and every request must have resolved within LivenessBound.
	Safety        time.Duration
	Calm          time.Duration
	LivenessBound time.Duration

	TTL      time.Duration // every session's lease
	DriftPPM int64         // clients' clock-rate bound (and their lease allowance)
	// LeaseMargin is the clients' safety margin on top of the drift
	// allowance (0: the client's default, TTL/50). A tiny one leaves only
	// the drift arithmetic between a correct client and a violation.
	LeaseMargin time.Duration

	// The workload: lock mode weights, how long clients think and hold, and
	// how often (percent of decisions) they do each thing.
	Modes            [spec.ModeCount]int
	ThinkMax         time.Duration
	HoldMax          time.Duration
	WaitMin, WaitMax time.Duration // wait timeouts of queued requests
	TryPercent       int           // acquires and conversions with NoQueue
	MultiPercent     int           // take another lock while holding some
	ConvertPercent   int           // convert a held lock
	WritePercent     int           // write to the fenced resource under PW/EX
	ValuePercent     int           // write the value block on release
	LockDelayPercent int           // acquires with a lock-delay
	CancelPercent    int           // cancel a queued request
	ClosePercent     int           // close the session instead of releasing
	YieldPercent     int           // release early when told it blocks someone
	// Semaphores: the last this many resources are counting semaphores of
	// SemaphoreLimit permits; clients ask them for 1 to SemaphoreLimit.
	Semaphores     int
	SemaphoreLimit uint32

	// The network between clients and the node.
	DelayMin, DelayMax time.Duration
	SlowPercent        int // messages delayed up to SlowMax instead
	SlowMax            time.Duration
	DropPercent        int
	DupPercent         int
	PartitionEvery     time.Duration // mean gap between partitions of one client (0: none)
	PartitionMax       time.Duration
	ResetEvery         time.Duration // mean gap between connection resets of one client (0: none)

	// Clients pause (stop the world), possibly past their lease; a pause
	// often starts just after a client decided to write to the fenced
	// resource, which it then does on resuming.
	PauseEvery          time.Duration // mean gap between pauses of one client (0: none)
	PauseMax            time.Duration
	PauseOnWritePercent int

	// The node.
	CommitMin, CommitMax time.Duration // how long a turn's commit takes
	CrashEvery           time.Duration // mean gap between crashes (0: none)
	MidCommitPercent     int           // crashes that cut a commit in the middle
	DownMax              time.Duration
	DiskFaultEvery       time.Duration // mean gap between failed WAL writes (0: none)

	// The cluster: Nodes replicas (1: one node, no replication); their
	// clocks start up to SkewMax apart and drift within half of DriftPPM
	// (the clients' within the other half); the raft network's layout
	// changes about every RaftPartitionEvery (0: never), for up to
	// PartitionMax. Raft's messages are delayed, dropped and duplicated as
	// the clients' are.
	Nodes              int
	SkewMax            time.Duration
	RaftPartitionEvery time.Duration
	TransferEvery      time.Duration // mean gap between leadership transfers (0: none)
	MemberEvery        time.Duration // mean gap between membership changes (0: none)
	ReadEvery          time.Duration // mean gap between linearizable reads (0: none)

	// CheckEvery: spec's invariants on the engine's state, the transition
	// from the last check, and equality with the spec model's state are
	// checked every this many turns that wrote (1: all of them); the core's
	// own structures every 8 of those. Replies and events are compared with
	// the model at every turn.
	CheckEvery int
}

// NewOptions derives the options of a seed.
func NewOptions(seed uint64) Options {
	r := rand.New(rand.NewPCG(seed, 0x5357_4152_4d)) // "SWARM": its own stream
	pick := func(xs ...int) int { return xs[r.IntN(len(xs))] }
	dur := func(ds ...time.Duration) time.Duration { return ds[r.IntN(len(ds))] }
	on := func() bool { return r.IntN(2) == 0 }
	o := Options{Seed: seed, CheckEvery: 1}
	o.Clients = pick(2, 3, 4, 6, 8, 12, 16)
	// About 1 to 4 clients per resource: contention enough for long queues,
	// not so much that checking linearizability (NP-hard in the operations
	// in flight on a resource) runs out of time.
	o.Resources = max(1, o.Clients/pick(1, 2, 3, 4))
	o.Safety = dur(8*time.Second, 12*time.Second, 20*time.Second)
	o.Calm = 3 * time.Second
	o.TTL = dur(time.Second, 2*time.Second, 4*time.Second)
	o.DriftPPM = int64(pick(0, 100, 1000, 10_000))
	o.LeaseMargin = dur(0, time.Microsecond)

	// Mode mixes: read/write locks, the full DLM set, exclusive only.
	switch r.IntN(3) {
	case 0:
		o.Modes = [spec.ModeCount]int{spec.PR: 3, spec.EX: 2}
	case 1:
		o.Modes = [spec.ModeCount]int{1, 2, 2, 2, 2, 2}
	default:
		o.Modes = [spec.ModeCount]int{spec.EX: 1}
	}
	o.ThinkMax = dur(20*time.Millisecond, 100*time.Millisecond, 500*time.Millisecond)
	o.HoldMax = dur(20*time.Millisecond, 200*time.Millisecond, time.Second)
	o.WaitMin, o.WaitMax = 10*time.Millisecond, dur(200*time.Millisecond, time.Second, 3*time.Second)
	o.TryPercent = pick(0, 20, 50)
	o.MultiPercent = pick(0, 10, 30)
	o.ConvertPercent = pick(0, 20, 40)
	o.WritePercent = pick(30, 60)
	o.ValuePercent = pick(0, 50)
	o.LockDelayPercent = pick(0, 0, 10)
	o.CancelPercent = pick(0, 10)
	o.ClosePercent = pick(0, 3)
	o.YieldPercent = pick(0, 50)

	o.DelayMin = dur(0, 100*time.Microsecond)
	o.DelayMax = dur(time.Millisecond, 5*time.Millisecond, 20*time.Millisecond)
	o.SlowPercent, o.SlowMax = pick(0, 2, 10), dur(100*time.Millisecond, 500*time.Millisecond)
	if on() {
		o.DropPercent = pick(1, 5, 15)
	}
	if on() {
		o.DupPercent = pick(1, 5)
	}
	if on() {
		o.PartitionEvery, o.PartitionMax = dur(2*time.Second, 8*time.Second), dur(500*time.Millisecond, 3*o.TTL)
	}
	if on() {
		o.ResetEvery = dur(2*time.Second, 8*time.Second)
	}
	if on() {
		o.PauseEvery, o.PauseMax = dur(3*time.Second, 10*time.Second), dur(o.TTL/2, 2*o.TTL)
		o.PauseOnWritePercent = pick(10, 50)
	}
	o.CommitMin, o.CommitMax = 20*time.Microsecond, dur(200*time.Microsecond, 2*time.Millisecond)
	if on() {
		o.CrashEvery, o.DownMax = dur(2*time.Second, 5*time.Second), dur(50*time.Millisecond, o.TTL)
		o.MidCommitPercent = pick(0, 30, 70)
	}
	if r.IntN(3) == 0 {
		o.DiskFaultEvery = dur(3*time.Second, 8*time.Second)
	}
	// The cluster's draws come from a stream of their own, so that adding
	// them changed nothing else a seed draws.
	rc := rand.New(rand.NewPCG(seed, 0x434c5553)) // "CLUS"
	o.Nodes = []int{1, 3, 3, 3, 5, 5}[rc.IntN(6)]
	o.SkewMax = []time.Duration{0, time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond}[rc.IntN(4)]
	if rc.IntN(3) > 0 {
		o.RaftPartitionEvery = []time.Duration{time.Second, 3 * time.Second}[rc.IntN(2)]
		if o.PartitionMax == 0 {
			o.PartitionMax = []time.Duration{500 * time.Millisecond, 3 * o.TTL}[rc.IntN(2)]
		}
	}
	if rc.IntN(2) == 0 {
		o.TransferEvery = []time.Duration{3 * time.Second, 8 * time.Second}[rc.IntN(2)]
	}
	if rc.IntN(2) == 0 {
		o.MemberEvery = []time.Duration{2 * time.Second, 6 * time.Second}[rc.IntN(2)]
	}
	o.ReadEvery = []time.Duration{0, 20 * time.Millisecond, 100 * time.Millisecond}[rc.IntN(3)]
	// The semaphores' draws too have a stream of their own.
	rs := rand.New(rand.NewPCG(seed, 0x53454d41)) // "SEMA"
	o.Semaphores = min(o.Resources, []int{0, 0, 1, 2}[rs.IntN(4)])
	o.SemaphoreLimit = []uint32{2, 3, 5}[rs.IntN(3)]
	o.LivenessBound = o.livenessBound()
	return o
}

// livenessBound is how long after the drain starts every client must be
// done: its last request answered (a queued one waits up to WaitMax), its
// locks released, its sessions closed (a lost one the node forgets within a
// TTL), with room for retries.
func (o *Options) livenessBound() time.Duration {
	return o.WaitMax + 3*o.TTL + 2*time.Second
}

// Validate reports the first option that cannot work.
func (o *Options) Validate() error {
	switch {
	case o.Clients < 1 || o.Clients > 1000:
		return fmt.Errorf("sim: clients %d: want 1 to 1000", o.Clients)
	case o.Resources < 1 || o.Resources > 1000:
		return fmt.Errorf("sim: resources %d: want 1 to 1000", o.Resources)
	case o.Semaphores < 0 || o.Semaphores > o.Resources || o.Semaphores > 0 && (o.SemaphoreLimit < 1 || o.SemaphoreLimit > spec.PermitsMax):
		return fmt.Errorf("sim: %d semaphores of %d permits among %d resources: want at most the resources, 1 to %d permits",
			o.Semaphores, o.SemaphoreLimit, o.Resources, spec.PermitsMax)
	case o.Safety <= 0 || o.Calm < 0:
		return fmt.Errorf("sim: the safety phase must be positive")
	case o.TTL < time.Second:
		return fmt.Errorf("sim: TTL %v is below the node's TTLMin", o.TTL)
	case o.Nodes < 0 || o.Nodes > 7:
		return fmt.Errorf("sim: nodes %d: want 1 to 7 (0: 1)", o.Nodes)
	case o.SkewMax < 0 || o.SkewMax > time.Second:
		return fmt.Errorf("sim: clock skew %v: want 0 to 1s", o.SkewMax)
	case o.CheckEvery < 1:
		return fmt.Errorf("sim: CheckEvery must be at least 1")
	case o.DelayMax < o.DelayMin || o.CommitMax < o.CommitMin || o.WaitMax < o.WaitMin:
		return fmt.Errorf("sim: a maximum is below its minimum")
	}
	total := 0
	for _, w := range o.Modes {
		total += w
	}
	if total == 0 {
		return fmt.Errorf("sim: no lock mode has weight")
	}
	return nil
}

// Faults lists the fault kinds that are on.
func (o *Options) Faults() []string {
	var f []string
	add := func(on bool, name string) {
		if on {
			f = append(f, name)
		}
	}
	add(o.DropPercent > 0, fmt.Sprintf("drop=%d%%", o.DropPercent))
	add(o.DupPercent > 0, fmt.Sprintf("dup=%d%%", o.DupPercent))
	add(o.SlowPercent > 0, fmt.Sprintf("slow=%d%%", o.SlowPercent))
	add(o.PartitionEvery > 0, "partitions")
	add(o.ResetEvery > 0, "resets")
	add(o.PauseEvery > 0, "pauses")
	add(o.DriftPPM > 0, fmt.Sprintf("drift=%dppm", o.DriftPPM))
	add(o.CrashEvery > 0, "crashes")
	add(o.DiskFaultEvery > 0, "disk-faults")
	add(o.Nodes > 1 && o.RaftPartitionEvery > 0, "raft-partitions")
	add(o.Nodes > 1 && o.SkewMax > 0, fmt.Sprintf("skew=%v", o.SkewMax))
	add(o.Nodes > 1 && o.TransferEvery > 0, "transfers")
	add(o.Nodes > 1 && o.MemberEvery > 0, "members")
	add(o.Nodes > 1 && o.ReadEvery > 0, "reads")
	return f
}

// String prints the options, one "name value" per line, as `bouncer sim
// --seed` shows them.
func (o *Options) String() string {
	var b strings.Builder
	row := func(name string, v any) { fmt.Fprintf(&b, "  %-16s %v\n", name, v) }
	row("seed", o.Seed)
	row("nodes", o.Nodes)
	row("clients", o.Clients)
	row("resources", o.Resources)
	if o.Semaphores > 0 {
		row("semaphores", fmt.Sprintf("%d of %d permits", o.Semaphores, o.SemaphoreLimit))
	}
	row("phases", fmt.Sprintf("safety %v, calm %v, liveness bound %v", o.Safety, o.Calm, o.LivenessBound))
	row("ttl", o.TTL)
	margin := "TTL/50"
	if o.LeaseMargin > 0 {
		margin = o.LeaseMargin.String()
	}
	row("drift", fmt.Sprintf("%d ppm, lease margin %s", o.DriftPPM, margin))
	var modes []string
	for m, w := range o.Modes {
		if w > 0 {
			modes = append(modes, fmt.Sprintf("%v:%d", spec.Mode(m), w))
		}
	}
	row("modes", strings.Join(modes, " "))
	row("think/hold", fmt.Sprintf("up to %v / %v", o.ThinkMax, o.HoldMax))
	row("wait timeouts", fmt.Sprintf("%v to %v", o.WaitMin, o.WaitMax))
	row("workload %", fmt.Sprintf("try=%d multi=%d convert=%d write=%d value=%d lock-delay=%d cancel=%d close=%d yield=%d",
		o.TryPercent, o.MultiPercent, o.ConvertPercent, o.WritePercent, o.ValuePercent, o.LockDelayPercent,
		o.CancelPercent, o.ClosePercent, o.YieldPercent))
	row("network", fmt.Sprintf("delay %v to %v, %d%% slow up to %v, drop %d%%, dup %d%%",
		o.DelayMin, o.DelayMax, o.SlowPercent, o.SlowMax, o.DropPercent, o.DupPercent))
	row("partitions", every(o.PartitionEvery, o.PartitionMax))
	row("resets", every(o.ResetEvery, 0))
	row("pauses", every(o.PauseEvery, o.PauseMax)+fmt.Sprintf(", %d%% right after deciding to write", o.PauseOnWritePercent))
	row("commit", fmt.Sprintf("%v to %v", o.CommitMin, o.CommitMax))
	row("crashes", every(o.CrashEvery, o.DownMax)+fmt.Sprintf(", %d%% in the middle of a commit", o.MidCommitPercent))
	row("disk faults", every(o.DiskFaultEvery, 0))
	if o.Nodes > 1 {
		row("cluster", fmt.Sprintf("%d replicas, clocks up to %v apart, raft layouts %s, leadership transfers %s, membership changes %s, reads %s",
			o.Nodes, o.SkewMax, every(o.RaftPartitionEvery, o.PartitionMax), every(o.TransferEvery, 0), every(o.MemberEvery, 0),
			every(o.ReadEvery, 0)))
	}
	row("faults on", strings.Join(o.Faults(), " "))
	return b.String()
}

func every(gap, max time.Duration) string {
	if gap == 0 {
		return "off"
	}
	if max == 0 {
		return fmt.Sprintf("about every %v", gap)
	}
	return fmt.Sprintf("about every %v, up to %v", gap, max)
}
