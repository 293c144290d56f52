//go:build bugzoo

package sim

import (
	"fmt"
	"time"

	"github.com/bouncer-dlm/bouncer/client/protocol"
	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/replica"
	"github.com/bouncer-dlm/bouncer/spec"
)

// Bug is a planted bug and the checker that must catch it.
type Bug struct {
	Name    string
	Checker string // the checker the zoo test requires to fail
	Doc     string
	// Tune, if set, turns on in every seed the faults the bug needs to
	// show (the seed still decides everything else).
	Tune func(*Options)
	// Nodes is the group size the bug lives in (0: one node).
	Nodes int
}

// Zoo is the planted-bug zoo: each a real mistake of lock services, each
// with the checker that must catch it. Every checker appears at least once.
var Zoo = []Bug{
	{Name: "grant-incompatible", Checker: Linearizability, Doc: "grant that skips the compatibility check"},
	{Name: "fifo-overtake", Checker: Model, Doc: "a new request overtakes the requests waiting ahead of it"},
	{Name: "reply-before-sync", Checker: Fencing, Doc: "replies go out before the batch is synced", Tune: crashy},
	{Name: "token-not-persisted", Checker: Tokens, Doc: "the token counter is rebuilt from held locks on recovery", Tune: crashy},
	{Name: "expiry-keeps-locks", Checker: Invariants, Doc: "a session's expiry forgets to release its locks"},
	{Name: "retry-applied-twice", Checker: Linearizability, Doc: "a retried request id is applied again"},
	{Name: "no-grace-period", Checker: Mutex, Doc: "recovery does not grant sessions a grace period", Tune: crashy},
	{Name: "convert-keeps-token", Checker: Linearizability, Doc: "an up-conversion keeps its old fencing token"},
	{Name: "deadlock-ahead-edges", Checker: Model, Doc: "compatible waiters seem to wait for each other: false Deadlock refusals", Tune: readers},
	{Name: "client-lease-from-receive", Checker: Mutex, Doc: "the client counts its lease from when the keepalive's answer arrived", Tune: contended},
	{Name: "semaphore-over-limit", Checker: Mutex, Doc: "a semaphore grants one permit more than its limit", Tune: semaphores},
	{Name: "client-no-poll", Checker: Liveness, Doc: "the client never asks again about a queued request whose event was lost", Tune: lossy},

	// In a raft group of 3 replicas (package replica).
	{Name: "reply-on-append", Checker: Replication, Nodes: 3, Doc: "the leader answers a proposal once it is in its own log, before commit"},
	{Name: "follower-answers", Checker: Replication, Nodes: 3, Doc: "every replica answers the entries it applies, not only their proposer"},
	{Name: "apply-own-clock", Checker: Replication, Nodes: 3, Doc: "a replica applies entries at its own clock, not the entry's stamp: expiry from a local clock", Tune: skewed},
	{Name: "failover-no-grace", Checker: Mutex, Nodes: 3, Doc: "a new leader gives the sessions no grace: leases expire on the old leader's deadlines by the new leader's clock", Tune: failovers},
	{Name: "restart-with-grace", Checker: Replication, Nodes: 3, Doc: "a restarted replica restores like a lone node, a fresh TTL for every session, and drifts apart from the others", Tune: crashy},
	{Name: "lone-voter", Checker: Replication, Nodes: 3, Doc: "one replica is bootstrapped as the group's only voter: two leaders of one term"},
	{Name: "token-not-replicated", Checker: Replication, Nodes: 3, Doc: "a replica installing a snapshot keeps its own token counter: its state differs from the group's at the same index"},
	{Name: "reply-table-not-replicated", Checker: Replication, Nodes: 3, Doc: "followers apply turns without recording their outcomes: their reply tables, part of the state, differ from the proposer's"},
	{Name: "read-without-index", Checker: Replication, Nodes: 3, Doc: "the leader answers reads from its own state without ReadIndex: a deposed leader that does not know it yet answers stale reads", Tune: reads},
	{Name: "apply-uncommitted", Checker: Replication, Nodes: 3, Doc: "a replica applies entries once they are in its log, before commit: an entry a new leader replaced was applied, another entry at its index elsewhere"},
}

// semaphores: every resource is a semaphore of 2 permits, and holders
// keep them a while.
func semaphores(o *Options) {
	o.Semaphores, o.SemaphoreLimit = o.Resources, 2
	o.HoldMax = max(o.HoldMax, 200*time.Millisecond)
}

// skewed: the replicas' clocks are far apart.
func skewed(o *Options) { o.SkewMax = time.Second }

// failovers: clients contend for exclusive locks while the leader changes
// often and the replicas' clocks are far apart.
func failovers(o *Options) {
	contended(o)
	o.SkewMax = time.Second
	o.RaftPartitionEvery, o.PartitionMax = time.Second, time.Second
}

// reads: readers ask often while the raft network's layout changes often
// (the leader cut off from its followers among them).
func reads(o *Options) {
	o.ReadEvery = 20 * time.Millisecond
	o.RaftPartitionEvery, o.PartitionMax = time.Second, time.Second
}

// crashy: the node crashes often, and the clients write under their locks.
func crashy(o *Options) {
	o.CrashEvery, o.DownMax = 2*time.Second, o.TTL/2
	o.WritePercent = max(o.WritePercent, 50)
}

// contended: clients queue for exclusive locks held by clients that are
// cut off from the node long enough to expire (and whose last keepalive was
// answered: no pauses, no lost messages), with no margin beyond the drift
// allowance and no drift.
func contended(o *Options) {
	o.Resources, o.Semaphores = max(1, o.Clients/4), 0
	o.Modes = [spec.ModeCount]int{spec.EX: 1}
	o.WaitMax = 4 * o.TTL
	o.HoldMax, o.ThinkMax = 3*o.TTL, 20*time.Millisecond
	o.PartitionEvery, o.PartitionMax = time.Second, 3*o.TTL
	o.PauseEvery, o.ResetEvery, o.CrashEvery, o.DiskFaultEvery = 0, 0, 0, 0
	o.DropPercent, o.DupPercent, o.SlowPercent = 0, 0, 0
	o.DelayMin, o.DelayMax = 0, 20*time.Millisecond
	o.DriftPPM, o.LeaseMargin = 0, time.Microsecond
	o.LivenessBound = o.livenessBound()
}

// readers: clients take PR and EX locks on a few resources, waiting long,
// so compatible requests queue behind a writer on several resources at once.
func readers(o *Options) {
	o.Resources, o.Semaphores = max(2, o.Clients/4), 0
	o.Modes = [spec.ModeCount]int{spec.PR: 3, spec.EX: 1}
	o.WaitMax = 4 * o.TTL
}

// lossy: messages are dropped.
func lossy(o *Options) { o.DropPercent = max(o.DropPercent, 5) }

var planted string

// PlantBug plants the named bug (engine or client) in the whole process;
// "" removes it.
func PlantBug(name string) error {
	_ = engine.PlantBug("")
	_ = protocol.PlantBug("")
	_ = replica.PlantBug("")
	planted = ""
	if name == "" {
		return nil
	}
	if err := replica.PlantBug(name); err == nil {
		planted = name
		return nil
	}
	if err := engine.PlantBug(name); err == nil {
		planted = name
		return nil
	}
	if err := protocol.PlantBug(name); err == nil {
		planted = name
		return nil
	}
	return fmt.Errorf("sim: no planted bug %q", name)
}

func plantedBugName() string { return planted }

// bugForbidsDiskFaults: with commits unsynced, Pebble's log writer fails in
// its own goroutine, where a failure cannot be caught.
func bugForbidsDiskFaults() bool { return planted == "reply-before-sync" }
