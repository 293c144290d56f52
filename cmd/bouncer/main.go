// Command bouncer is the one binary of Bouncer: the lock node, its client
// commands, the simulator, the history checker and the load benchmark.
// Each subcommand lives in its own file and registers itself in init.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// commands are the subcommands, registered by their files' init functions.
var commands []func() *cobra.Command

// exitError carries a specific exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	root := &cobra.Command{
		Use:   "bouncer",
		Short: "A distributed lock manager with fencing tokens, DLM lock modes and a deterministic simulator",
		Long: `Bouncer is a lock manager: processes on many machines take turns on shared
resources through a lock node. It offers the DLM's six lock modes with value
blocks, Chubby's lock-delay, fencing tokens and exactly-once requests, and it
is checked by a formal model, a step-by-step reference model and a seeded
simulator.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, c := range commands {
		root.AddCommand(c())
	}
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "bouncer:", err)
		var e *exitError
		if errors.As(err, &e) {
			os.Exit(e.code)
		}
		os.Exit(1)
	}
}
