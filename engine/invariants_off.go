//go:build !invariants && !race

package engine

// invariantsOn makes the core check every invariant after every step; build
// with -tags invariants (tests and the simulator do) or -race to turn it on.
const invariantsOn = false
