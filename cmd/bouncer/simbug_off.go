//go:build !bugzoo

package main

// plant refuses --bug: only a binary built with -tags bugzoo has the zoo.
func (f *simFlags) plant() error {
	if f.bug != "" {
		return usageError("--bug %s: this binary has no planted bugs; build it with -tags bugzoo", f.bug)
	}
	return nil
}
