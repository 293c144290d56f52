package replica_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/replica"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
)

var (
	three = config{replicas: 3, clients: 3, healAt: 3000 * ms, liveBound: 3000 * ms, dropPermille: 50}
	five  = config{replicas: 5, clients: 4, healAt: 3000 * ms, liveBound: 3000 * ms, dropPermille: 50}
	// shortLease gives sessions a TTL far below the run, so that leases run
	// out on leaders that did not grant them.
	shortLease = config{replicas: 3, clients: 4, ttl: time.Second, healAt: 3000 * ms,
		liveBound: 3000 * ms, dropPermille: 50}
	// threeCrash and fiveCrash stop and restart random replicas, the
	// leader among them, with a short log between snapshots, so that
	// restarts, compactions and snapshots meet.
	threeCrash = config{replicas: 3, clients: 3, healAt: 3000 * ms, liveBound: 3000 * ms, dropPermille: 50,
		crashes: true, compactAfter: 32}
	fiveCrash = config{replicas: 5, clients: 4, healAt: 3000 * ms, liveBound: 3000 * ms, dropPermille: 50,
		crashes: true, compactAfter: 32}
	// behind keeps the last replica down from 300 ms until the network
	// heals, while the others compact their logs every 16 entries.
	behind = config{replicas: 3, clients: 4, healAt: 3000 * ms, liveBound: 3000 * ms, dropPermille: 20,
		downLong: true, downAt: 300 * ms, compactAfter: 16}
	// diskFail fails the last replica's disk at 1 s; it is reopened from
	// what its disk holds when the network heals.
	diskFail = config{replicas: 3, clients: 3, healAt: 3000 * ms, liveBound: 3000 * ms, dropPermille: 50,
		diskFailAt: 1000 * ms}
)

// TestClusterDeterministic runs many seeds twice each: no checker may
// complain, and the two runs of a seed must give the same trace.
func TestClusterDeterministic(t *testing.T) {
	for _, cfg := range []struct {
		name  string
		cfg   config
		seeds uint64
	}{{"three", three, 60}, {"five", five, 30}, {"three-crash", threeCrash, 30}, {"five-crash", fiveCrash, 15}} {
		t.Run(cfg.name, func(t *testing.T) {
			traces := map[uint64]uint64{}
			leaders, answered, restarts, leadDown, snaps := 0, 0, 0, 0, 0
			for seed := uint64(1); seed <= cfg.seeds; seed++ {
				a, b := run(t, cfg.cfg, seed), run(t, cfg.cfg, seed)
				for _, f := range a.failures {
					t.Errorf("seed %d: %v", seed, f)
				}
				if a.trace != b.trace {
					t.Errorf("seed %d: trace %x, then %x: the run is not deterministic", seed, a.trace, b.trace)
				}
				if other, ok := traces[a.trace]; ok {
					t.Errorf("seeds %d and %d gave the same trace: the seed does not reach the run", other, seed)
				}
				traces[a.trace] = seed
				leaders += a.leaders
				answered += a.answered
				restarts += a.restarts
				leadDown += a.leadDown
				snaps += a.snapsIn
				t.Logf("seed %d: trace %x, %d leaderships, %d answers, %d entries, %d restarts, %d snapshots installed",
					seed, a.trace, a.leaders, a.answered, a.applied, a.restarts, a.snapsIn)
			}
			if cfg.cfg.crashes && (restarts < 2*int(cfg.seeds) || leadDown < int(cfg.seeds)/2) {
				t.Errorf("%d restarts, %d of leaders, over %d seeds: too few to test them", restarts, leadDown, cfg.seeds)
			}
			t.Logf("%d restarts (%d of leaders), %d snapshots installed over %d seeds", restarts, leadDown, snaps, cfg.seeds)
			if leaders <= int(cfg.seeds) || answered < 20*int(cfg.seeds) {
				t.Errorf("%d leaderships and %d answers over %d seeds: the faults or the workload are too weak to test anything",
					leaders, answered, cfg.seeds)
			}
		})
	}
}

// TestClusterFailoverGrace runs sessions with short leases through leader
// changes: no checker may complain (the grace checker among them: nothing
// expires on a replica before the grace has passed since the last failover
// entry it applied), and sessions must expire after failovers, or the
// grace was never put to the test.
func TestClusterFailoverGrace(t *testing.T) {
	graced := 0
	for seed := uint64(1); seed <= 20; seed++ {
		res := run(t, shortLease, seed)
		for _, f := range res.failures {
			t.Errorf("seed %d: %v", seed, f)
		}
		graced += res.graced
		t.Logf("seed %d: %d leaderships, %d answers, %d expiries after a failover", seed, res.leaders, res.answered, res.graced)
	}
	if graced < 20 {
		t.Errorf("%d expiries after a failover over 20 seeds: too few to test the grace", graced)
	}
}

// TestClusterSnapshotCatchUp: a replica down while the others compact their
// logs comes back behind their first index: the leader sends it a snapshot,
// it installs it, and ends with the same state at the same index as the
// others (the liveness checker), every checker quiet.
func TestClusterSnapshotCatchUp(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		res := run(t, behind, seed)
		for _, f := range res.failures {
			t.Errorf("seed %d: %v", seed, f)
		}
		t.Logf("seed %d: %d entries, %d snapshots sent, %d installed, %d restarts", seed, res.applied, res.snapSent, res.snapsIn, res.restarts)
		if res.snapSent == 0 || res.snapsIn == 0 || res.restarts != 1 {
			t.Errorf("seed %d: %d snapshots sent, %d installed, %d restarts: the replica did not catch up by snapshot",
				seed, res.snapSent, res.snapsIn, res.restarts)
		}
	}
}

// TestClusterDiskError: the last replica's disk fails writes at 1 s. Its
// Ready returns an error wrapping engine.ErrStoreFailed (the harness calls
// anything else a failure), it stops and is closed; the others go on and
// answer; when the network heals it is reopened from what its disk holds
// and catches up, every checker quiet.
func TestClusterDiskError(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		res := run(t, diskFail, seed)
		for _, f := range res.failures {
			t.Errorf("seed %d: %v", seed, f)
		}
		t.Logf("seed %d: %d answers, %d entries, stopped %d, restarts %d", seed, res.answered, res.applied, res.stopped, res.restarts)
		if res.stopped != 1 || res.restarts != 1 {
			t.Errorf("seed %d: %d replicas stopped by their store, %d restarted; want 1 and 1", seed, res.stopped, res.restarts)
		}
	}
}

// drive ticks and readies a lone replica until it has applied everything
// it has, answering nothing (the test reads its core).
func drive(t *testing.T, r *replica.Replica, now *spec.Time, ticks int) {
	t.Helper()
	for range ticks {
		*now += tickInterval
		r.Tick(*now)
		for r.HasReady() {
			if _, err := r.Ready(); err != nil {
				t.Fatal(err)
			}
			r.Advance()
		}
	}
}

// TestRestartExact: a lone replica with sessions, keepalives, locks, a
// failover and compactions is closed, or cut off by a power cut (a crash
// image of what its file system synced), and reopened: it comes back at
// the same applied index with the same state hash, and goes on. A store
// that holds another replica is refused, and a nil FS is a fresh memory
// file system.
func TestRestartExact(t *testing.T) {
	lim := spec.DefaultLimits()
	mem := vfs.NewCrashableMem()
	cfg := replica.Config{ID: 1, Peers: []uint64{1}, Limits: lim, FS: mem, Dir: "r1", CompactAfter: 8}
	r, err := replica.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var now spec.Time
	drive(t, r, &now, 40)
	if !r.IsLeader() {
		t.Fatal("a lone voter did not elect itself")
	}
	sessions := []spec.SessionID{{1}, {2}, {3}}
	for i, s := range sessions {
		if _, err := r.Propose(now, []spec.Input{{Op: spec.OpOpen, Session: s, TTL: time.Duration(10+i) * time.Second}}); err != nil {
			t.Fatal(err)
		}
		drive(t, r, &now, 3)
	}
	for round := range 12 {
		s := sessions[round%len(sessions)]
		in := []spec.Input{{Op: spec.OpKeepAlive, Session: s},
			{Op: spec.OpAcquire, Session: s, Resource: "x", Mode: spec.PR, Request: spec.RequestID(round + 1), WaitTimeout: time.Second}}
		if _, err := r.Propose(now, in); err != nil {
			t.Fatal(err)
		}
		drive(t, r, &now, 5)
	}
	if st := r.Core().State(); len(st.Sessions) != 3 || len(st.Resources) != 1 {
		t.Fatalf("before the restart: %d sessions, %d resources; want 3 and 1", len(st.Sessions), len(st.Resources))
	}
	check := func(how string, r2 *replica.Replica) {
		t.Helper()
		if r2.Applied() != r.Applied() || r2.StateHash() != r.StateHash() {
			t.Fatalf("%s: reopened at %d with hash %x, was at %d with %x:\n%v\nwas\n%v", how, r2.Applied(), r2.StateHash(),
				r.Applied(), r.StateHash(), r2.Core().State(), r.Core().State())
		}
	}
	image := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2, err := replica.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	check("closed", r2)
	_ = r2.Close()
	cfg.FS = image
	r3, err := replica.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	check("crashed", r3)
	drive(t, r3, &now, 60) // it leads again and goes on
	if !r3.IsLeader() || r3.Applied() <= r.Applied() {
		t.Fatalf("after the restart: leader %v, applied %d (was %d)", r3.IsLeader(), r3.Applied(), r.Applied())
	}
	_ = r3.Close()

	cfg.ID, cfg.Peers = 2, []uint64{2}
	if _, err := replica.New(cfg); err == nil || !strings.Contains(err.Error(), "holds replica 1") {
		t.Fatalf("opening replica 1's store as replica 2: %v", err)
	}
	r4, err := replica.New(replica.Config{ID: 1, Peers: []uint64{1}, Limits: lim})
	if err != nil || r4.Applied() != 1 {
		t.Fatalf("a replica on a nil FS: %v, applied %d", err, r4.Applied())
	}
	_ = r4.Close()
}
