//go:build !bugzoo

package protocol

// bugzooOn is false outside the bugzoo build: every planted-bug hook
// (`if bugzooOn && planted("...")`) is constant false and compiled away.
const bugzooOn = false

func planted(string) bool { return false }
