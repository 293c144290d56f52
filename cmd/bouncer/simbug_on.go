//go:build bugzoo

package main

import "github.com/bouncer-dlm/bouncer/sim"

// plant plants --bug in the whole process before the simulation runs.
func (f *simFlags) plant() error {
	if err := sim.PlantBug(f.bug); err != nil {
		return usageError("%v", err)
	}
	return nil
}
