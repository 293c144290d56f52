//go:build race

package engine

import "testing"

// TestRaceChecksInvariants: a -race build checks every invariant after
// every step, as an invariants build does.
func TestRaceChecksInvariants(t *testing.T) {
	if !invariantsOn {
		t.Fatal("a -race build does not check the core's invariants")
	}
}
