//go:build bugzoo

package protocol

import "fmt"

// bugzooOn is true in the bugzoo build, which plants mistakes on purpose so
// that the simulator's checkers can be seen to catch them. Never ship it.
const bugzooOn = true

// plantedBug is the bug planted in every session of the process ("" none).
var plantedBug string

func planted(name string) bool { return plantedBug == name }

// Bugs returns the names of the client bugs PlantBug knows, and what each
// gets wrong.
func Bugs() map[string]string {
	out := map[string]string{}
	for _, b := range bugs {
		out[b.name] = b.doc
	}
	return out
}

// PlantBug plants the named client bug in every session of the process
// ("" removes it). Only the bugzoo build has it.
func PlantBug(name string) error {
	for _, b := range bugs {
		if b.name == name || name == "" {
			plantedBug = name
			return nil
		}
	}
	return fmt.Errorf("client: no planted bug %q", name)
}
