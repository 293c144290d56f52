//go:build bugzoo

package protocol

import "github.com/bouncer-dlm/bouncer/internal/bugzoo"

// bugzooOn is true in the bugzoo build, which plants mistakes on purpose so
// that the simulator's checkers can be seen to catch them. Never ship it.
const bugzooOn = true

// zoo holds the client bugs: each a real mistake of lock clients, with
// what it gets wrong. Each hook is one `if bugzooOn && planted(name)`, a
// constant-false test outside this build.
var zoo = bugzoo.New("client",
	bugzoo.Bug{Name: "client-lease-from-receive", Doc: "the lease is counted from when a keepalive's answer arrived, not from when it was sent: the client believes in its lease a round trip too long (io.go)"},
	bugzoo.Bug{Name: "client-no-poll", Doc: "a queued request is never asked about again, so a lost Completed event leaves it waiting forever (io.go)"},
)

func planted(name string) bool { return zoo.Planted(name) }

// Bugs returns the names of the client bugs PlantBug knows, and what each
// gets wrong.
func Bugs() map[string]string { return zoo.Bugs() }

// PlantBug plants the named client bug in every session of the process
// ("" removes it). Only the bugzoo build has it.
func PlantBug(name string) error { return zoo.Plant(name) }
