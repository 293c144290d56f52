//go:build invariants

package engine

// invariantsOn makes the core check every invariant after every step.
const invariantsOn = true
