//go:build bugzoo

package engine

import "fmt"

// The bugzoo build plants real mistakes of lock services in the engine, one
// at a time, so that the simulator's checkers can be seen to catch them
// (sim/bugzoo_test.go). Each hook is one `if bugzooOn && planted(name)` next
// to the rule it breaks. Never ship this build.
const bugzooOn = true

// bugs are the engine bugs, with what each breaks.
var bugs = []struct{ name, doc string }{
	{"grant-incompatible", "an uncontended acquire is granted without the compatibility check (grant.go)"},
	{"fifo-overtake", "a new request is granted at once although others wait ahead of it (grant.go)"},
	{"reply-before-sync", "a turn is committed without sync, so replies go out before the batch is durable (store.go)"},
	{"token-not-persisted", "recovery rebuilds the token counter from the tokens of held locks (restore.go)"},
	{"expiry-keeps-locks", "a session's expiry forgets to release the locks it held (session.go)"},
	{"retry-applied-twice", "a retried request id is applied again instead of answered from its record (core.go)"},
	{"no-grace-period", "recovery gives the sessions no grace period: their leases count as run out (restore.go)"},
	{"convert-keeps-token", "an up-conversion granted in place keeps its old fencing token (grant.go)"},
	{"deadlock-ahead-edges", "the old wait-for rule: a queued request waits for every request ahead of it, compatible or not (deadlock.go)"},
}

// plantedBug is the bug planted in every core of the process ("" none).
var plantedBug string

func planted(name string) bool { return plantedBug == name }

// Bugs returns the names of the engine bugs PlantBug knows, and what each
// breaks.
func Bugs() map[string]string {
	out := map[string]string{}
	for _, b := range bugs {
		out[b.name] = b.doc
	}
	return out
}

// PlantBug plants the named bug in every core of the process ("" removes
// it). Only the bugzoo build has it.
func PlantBug(name string) error {
	for _, b := range bugs {
		if b.name == name || name == "" {
			plantedBug = name
			return nil
		}
	}
	return fmt.Errorf("engine: no planted bug %q", name)
}
