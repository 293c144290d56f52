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
	code  int
	err   error
	quiet bool // the status speaks for itself (lock passing on its command's)
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		var e *exitError
		if !errors.As(err, &e) || !e.quiet {
			fmt.Fprintln(os.Stderr, "bouncer:", err)
		}
		if e != nil {
			os.Exit(e.code)
		}
		os.Exit(1)
	}
}

// newRootCmd builds the whole command tree: every registered subcommand,
// --version, and cobra's help and completion commands (which cobra would
// otherwise add only when the tree runs, out of sight of a test that walks
// it).
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "bouncer",
		Short: "A distributed lock manager with fencing tokens, DLM lock modes and a deterministic simulator",
		Long: `Bouncer is a lock manager: processes on many machines take turns on shared
resources through a lock node. It offers the DLM's six lock modes with value
blocks, Chubby's lock-delay, fencing tokens and exactly-once requests, and it
is checked by a formal model, a step-by-step reference model and a seeded
simulator.

Shell completion: bouncer completion bash|zsh|fish|powershell --help says how
to load it.`,
		Version:       versionText(buildInfo()),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError("%v", err) })
	for _, c := range commands {
		root.AddCommand(c())
	}
	root.Flags().BoolP("version", "v", false, "print the module version, the commit and the Go version (as bouncer version does)")
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.InitDefaultVersionFlag()
	return root
}

// usageArgs makes an argument check's failure a usage error (exit 64).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError("%v", err)
		}
		return nil
	}
}
