//go:build !invariants

package engine

// invariantsOn makes the core check every invariant after every step; build
// with -tags invariants to turn it on (tests and the simulator do).
const invariantsOn = false
