//go:build invariants || race

package engine

// invariantsOn makes the core check every invariant after every step. The
// race detector's builds turn it on too: they are already slow, and they
// are the builds that run the concurrent tests.
const invariantsOn = true
