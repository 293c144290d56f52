//go:build bugzoo

package engine

import (
	"github.com/bouncer-dlm/bouncer/internal/bugzoo"
	"github.com/bouncer-dlm/bouncer/spec"
)

// The bugzoo build plants real mistakes of lock services in the engine, one
// at a time, so that the simulator's checkers can be seen to catch them
// (sim/bugzoo_test.go). Each hook is one `if bugzooOn && planted(name)` next
// to the rule it breaks. Never ship this build.
const bugzooOn = true

// zoo holds the engine bugs, with what each breaks.
var zoo = bugzoo.New("engine",
	bugzoo.Bug{Name: "grant-incompatible", Doc: "an uncontended acquire is granted without the compatibility check (grant.go)"},
	bugzoo.Bug{Name: "fifo-overtake", Doc: "a new request is granted at once although others wait ahead of it (grant.go)"},
	bugzoo.Bug{Name: "reply-before-sync", Doc: "a turn is committed without sync, so replies go out before the batch is durable (store.go)"},
	bugzoo.Bug{Name: "token-not-persisted", Doc: "recovery rebuilds the token counter from the tokens of held locks (restore.go)"},
	bugzoo.Bug{Name: "expiry-keeps-locks", Doc: "a session's expiry forgets to release the locks it held (session.go)"},
	bugzoo.Bug{Name: "retry-applied-twice", Doc: "a retried request id is applied again instead of answered from its record (core.go)"},
	bugzoo.Bug{Name: "no-grace-period", Doc: "recovery gives the sessions no grace period: their leases count as run out (restore.go)"},
	bugzoo.Bug{Name: "convert-keeps-token", Doc: "an up-conversion granted in place keeps its old fencing token (grant.go)"},
	bugzoo.Bug{Name: "semaphore-over-limit", Doc: "a semaphore's request fits when its permits fit in the limit plus one (grant.go)"},
	bugzoo.Bug{Name: "deadlock-ahead-edges", Doc: "the old wait-for rule: a queued request waits for every request ahead of it, compatible or not (deadlock.go)"},
)

func planted(name string) bool { return zoo.Planted(name) }

// Bugs returns the names of the engine bugs PlantBug knows, and what each
// breaks.
func Bugs() map[string]string { return zoo.Bugs() }

// PlantBug plants the named bug in every core of the process ("" removes
// it). Only the bugzoo build has it.
func PlantBug(name string) error { return zoo.Plant(name) }

// SetTokenMax sets the token counter: the next grant gets t+1. It is the
// way in of a replica bug (package replica's token-not-replicated), which
// carries a core's counter over to another; only the bugzoo build has it.
func (c *Core) SetTokenMax(t spec.Token) { c.tokenMax = t }

// RecordReplies turns the recording of outcomes for retries on (the
// default) or off: the way in of a replica bug (package replica's
// reply-table-not-replicated), which keeps outcomes only on the replica
// that proposed a turn; only the bugzoo build has it.
func (c *Core) RecordReplies(on bool) { c.noReplies = !on }
