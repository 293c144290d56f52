//go:build !bugzoo

package main

import (
	"io"

	"github.com/bouncer-dlm/bouncer/sim"
)

// plant refuses --bug: only a binary built with -tags bugzoo has the zoo.
func (f *simFlags) plant() error {
	if f.bug != "" {
		return usageError("--bug %s: this binary has no planted bugs; build it with -tags bugzoo", f.bug)
	}
	return nil
}

// applyBug: no bug is planted here (plant refused --bug).
func (f *simFlags) applyBug(*sim.Options) {}

// runZoo refuses: only a binary built with -tags bugzoo has the zoo.
func runZoo(zooFlags, io.Writer) error {
	return usageError("this binary has no planted bugs: build it with -tags bugzoo (go run -tags bugzoo ./cmd/bouncer zoo)")
}
