package sim

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRegisteredCheckerJudgesEveryRun: a checker registered by
// registerChecker (a new checker's one file) judges every run: its verdict
// is reported after the built-in ones, its failure fails the run, its
// detail is shown on a pass.
func TestRegisteredCheckerJudgesEveryRun(t *testing.T) {
	saved := slices.Clone(Checkers)
	defer func() { Checkers = saved; delete(judges, "no-writes"); delete(judges, "writes-seen") }()
	registerChecker("writes-seen", func(s *Sim) (string, string) {
		return "", fmt.Sprintf("%d writes", s.stats.Writes)
	})
	registerChecker("no-writes", func(s *Sim) (string, string) {
		if s.stats.Writes > 0 {
			return fmt.Sprintf("%d writes", s.stats.Writes), ""
		}
		return "", "no writes"
	})
	require.Panics(t, func() { registerChecker(Mutex, nil) }, "a name registered twice")

	rep := Run(shortOptions(3), Config{})
	names := make([]string, 0, len(rep.Verdicts))
	for _, v := range rep.Verdicts {
		names = append(names, v.Checker)
	}
	require.Equal(t, append(slices.Clone(saved), "writes-seen", "no-writes"), names)
	require.Positive(t, rep.Stats.Writes)
	require.Equal(t, Verdict{Checker: "writes-seen", OK: true, Detail: fmt.Sprintf("%d writes", rep.Stats.Writes)}, rep.Verdict("writes-seen"))
	require.Equal(t, Verdict{Checker: "no-writes", Detail: fmt.Sprintf("%d writes", rep.Stats.Writes)}, rep.Verdict("no-writes"))
	require.Equal(t, []string{"no-writes"}, rep.FailedCheckers())
	require.Equal(t, CorrectnessFailure, rep.Kind)
}
