package spec

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestFindCycleOnRandomGraphs: FindCycle finds a cycle exactly when some
// session lies on one (OnCycle), and what it returns is a cycle of g.
func TestFindCycleOnRandomGraphs(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 8).Draw(t, "sessions")
		g := map[SessionID][]SessionID{}
		for _, e := range rapid.SliceOf(rapid.SliceOfN(rapid.IntRange(0, n-1), 2, 2)).Draw(t, "edges") {
			from, to := sessionName(e[0]), sessionName(e[1])
			g[from] = append(g[from], to)
		}
		cyclic := false
		for s := range g {
			cyclic = cyclic || OnCycle(g, s)
		}
		c := FindCycle(g)
		if (c != nil) != cyclic {
			t.Fatalf("FindCycle %v, but some session on a cycle: %v (graph %v)", shortIDs(c), cyclic, g)
		}
		for i, s := range c {
			if next := c[(i+1)%len(c)]; !slices.Contains(g[s], next) {
				t.Fatalf("FindCycle %v: no edge %s -> %s", shortIDs(c), ShortID(s), ShortID(next))
			}
		}
	})
}
