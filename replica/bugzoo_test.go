//go:build bugzoo

package replica_test

import (
	"strings"
	"testing"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/replica"
)

// TestBugZoo plants one mistake at a time and shows that the checker named
// for it fails on one of the first seeds: each checker can fail.
func TestBugZoo(t *testing.T) {
	for _, c := range []struct {
		bug, engineBug, checker string
		cfg                     *config // three if nil
	}{
		{bug: "apply-own-clock", checker: "hash"},
		{bug: "follower-answers", checker: "answer"},
		{bug: "reply-on-append", checker: "uncommitted"},
		{bug: "hint-self", checker: "liveness"},
		{bug: "lone-voter", checker: "leader"},
		{bug: "failover-no-grace", checker: "grace", cfg: &shortLease},
		{bug: "restart-with-grace", checker: "restart", cfg: &threeCrash},
		{bug: "applied-with-writes-only", checker: "restart", cfg: &threeCrash},
		{bug: "token-not-replicated", checker: "hash", cfg: &behind},
		{bug: "reply-table-not-replicated", checker: "hash"},
		{engineBug: "grant-incompatible", checker: "invariants"},
	} {
		t.Run(c.bug+c.engineBug, func(t *testing.T) {
			if err := replica.PlantBug(c.bug); err != nil {
				t.Fatal(err)
			}
			if err := engine.PlantBug(c.engineBug); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = replica.PlantBug(""); _ = engine.PlantBug("") })
			for seed := uint64(1); seed <= 10; seed++ {
				cfg := three
				if c.cfg != nil {
					cfg = *c.cfg
				}
				res := run(t, cfg, seed)
				var kinds []string
				for _, f := range res.failures {
					kinds = append(kinds, f.kind)
					if f.kind == c.checker {
						t.Logf("seed %d: caught: %v", seed, f)
						return
					}
				}
				t.Logf("seed %d: not caught by %s (checkers that fired: %s)", seed, c.checker, strings.Join(kinds, " "))
			}
			t.Errorf("the %s checker never failed on the planted bug in seeds 1 to 10", c.checker)
		})
	}
}

// TestBugZooClean: with nothing planted, the bugzoo build passes the same
// seeds (the hooks change nothing when off).
func TestBugZooClean(t *testing.T) {
	for _, cfg := range []config{three, shortLease, threeCrash} {
		for seed := uint64(1); seed <= 5; seed++ {
			for _, f := range run(t, cfg, seed).failures {
				t.Errorf("seed %d: %v", seed, f)
			}
		}
	}
}
