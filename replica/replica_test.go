package replica_test

import (
	"testing"
	"time"
)

var (
	three = config{replicas: 3, clients: 3, healAt: 3000 * ms, liveBound: 3000 * ms, dropPermille: 50}
	five  = config{replicas: 5, clients: 4, healAt: 3000 * ms, liveBound: 3000 * ms, dropPermille: 50}
	// shortLease gives sessions a TTL far below the run, so that leases run
	// out on leaders that did not grant them.
	shortLease = config{replicas: 3, clients: 4, ttl: time.Second, healAt: 3000 * ms,
		liveBound: 3000 * ms, dropPermille: 50}
)

// TestClusterDeterministic runs many seeds twice each: no checker may
// complain, and the two runs of a seed must give the same trace.
func TestClusterDeterministic(t *testing.T) {
	for _, cfg := range []struct {
		name  string
		cfg   config
		seeds uint64
	}{{"three", three, 60}, {"five", five, 30}} {
		t.Run(cfg.name, func(t *testing.T) {
			traces := map[uint64]uint64{}
			leaders, answered := 0, 0
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
				t.Logf("seed %d: trace %x, %d leaderships, %d answers, %d entries", seed, a.trace, a.leaders, a.answered, a.applied)
			}
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
