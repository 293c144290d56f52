//go:build bugzoo

package core

import "fmt"

// bugzooOn is true in the bugzoo build, which plants mistakes on purpose so
// that the simulator's checkers can be seen to catch them. Never ship it.
const bugzooOn = true

// plantedBug is the bug planted in every session of the process.
var plantedBug bug

func planted(b bug) bool { return plantedBug == b }

// Bugs lists the client bugs that PlantBug knows, by name.
func Bugs() []string {
	var names []string
	for b := bug(1); b < bugsEnd; b++ {
		names = append(names, bugNames[b])
	}
	return names
}

// PlantBug plants the named client bug in every session of the process
// ("" removes it). Only the bugzoo build has it.
func PlantBug(name string) error {
	if name == "" {
		plantedBug = 0
		return nil
	}
	for b := bug(1); b < bugsEnd; b++ {
		if bugNames[b] == name {
			plantedBug = b
			return nil
		}
	}
	return fmt.Errorf("client: no planted bug %q", name)
}
