package replica_test

import (
	"testing"
)

var (
	three = config{replicas: 3, clients: 3, healAt: 3000 * ms, liveBound: 3000 * ms, dropPermille: 50}
	five  = config{replicas: 5, clients: 4, healAt: 3000 * ms, liveBound: 3000 * ms, dropPermille: 50}
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
