//go:build !bugzoo

package core

// bugzooOn is false outside the bugzoo build: every planted-bug hook is a
// constant-false test that the compiler removes.
const bugzooOn = false

func planted(bug) bool { return false }
