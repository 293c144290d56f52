package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newVersionCmd) }

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the module version, the commit it was built from and the Go version (as --version does)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), versionText(buildInfo()))
			return err
		},
	}
}

// build is what a binary knows of how it was built, from the Go toolchain's
// stamp (runtime/debug.ReadBuildInfo), so that a report of a problem can
// name the exact build.
type build struct {
	version  string // the module's version: v1.2.3, or (devel) for a build from a work tree
	commit   string // the VCS revision, or unknown when the build was not stamped
	modified bool   // the work tree had changes the commit does not hold
	goVer    string // the Go release that built it
}

// buildInfo reads this binary's stamp.
func buildInfo() build {
	info, _ := debug.ReadBuildInfo()
	return buildOf(info)
}

// buildOf reads a build's stamp (nil: none). A binary built without module
// support or VCS information (go build -buildvcs=false, or in a git
// worktree, which the toolchain does not stamp) says "(devel)" and
// "unknown" rather than nothing.
func buildOf(info *debug.BuildInfo) build {
	b := build{version: "(devel)", commit: "unknown", goVer: runtime.Version()}
	if info == nil {
		return b
	}
	if v := info.Main.Version; v != "" {
		b.version = v
	}
	if info.GoVersion != "" {
		b.goVer = info.GoVersion
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.commit = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	return b
}

// versionText is what `bouncer version` and `bouncer --version` print.
func versionText(b build) string {
	commit := b.commit
	if b.modified {
		commit += " (with uncommitted changes)"
	}
	return fmt.Sprintf("bouncer %s\ncommit %s\ngo %s %s/%s\n", b.version, commit, b.goVer, runtime.GOOS, runtime.GOARCH)
}
