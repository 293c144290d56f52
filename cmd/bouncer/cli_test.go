package main

import (
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// The CLI's surface: every flag shown in --help and named in the README's
// command reference, the version, shell completion.

// readmeReference returns the README's "Command reference" section, split
// into its subsections by their headings.
func readmeReference(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(b)
	start := strings.Index(readme, "\n## Command reference\n")
	require.GreaterOrEqual(t, start, 0, "README.md has no Command reference section")
	ref := readme[start+1:]
	if end := strings.Index(ref[3:], "\n## "); end >= 0 {
		ref = ref[:end+3]
	}
	sections := map[string]string{}
	for _, part := range strings.Split(ref, "\n### ")[1:] {
		heading, body, _ := strings.Cut(part, "\n")
		sections[heading] = body
	}
	return sections
}

// sectionFor is the reference's text about the command at path: the
// subsection whose heading names it (`bouncer cluster`), or its nearest
// ancestor but the root; the root's own flag, --version, is told with
// `bouncer version`.
func sectionFor(sections map[string]string, path string) (string, bool) {
	if path == "bouncer" {
		path = "bouncer version"
	}
	for p := path; strings.Contains(p, " "); p = p[:strings.LastIndex(p, " ")] {
		for heading, body := range sections {
			if strings.Contains(heading, "`"+p+"`") {
				return body, true
			}
		}
	}
	return "", false
}

// mentions reports whether text names the flag --name (not a longer one
// such as --name-x or --names).
func mentions(text, name string) bool {
	return regexp.MustCompile(`--` + regexp.QuoteMeta(name) + `([^a-z0-9-]|$)`).MatchString(text)
}

var envRE = regexp.MustCompile(`env ([A-Z][A-Z0-9_]+)`)

// TestReadmeNamesEveryFlag walks the command tree: every command has its
// place in the README's command reference, and every flag of every command
// has help text, is shown by --help and is named in its command's section
// (the client flags in "Client flags"), with the environment variable its
// help names; so a new flag cannot be left out of the README.
func TestReadmeNamesEveryFlag(t *testing.T) {
	sections := readmeReference(t)
	clientSection, ok := sections["Client flags"]
	require.True(t, ok, "the reference has no Client flags section")
	client := pflag.NewFlagSet("client", pflag.ContinueOnError)
	(&clientFlags{}).register(client)
	isClientFlag := func(f *pflag.Flag) bool {
		cf := client.Lookup(f.Name)
		return cf != nil && cf.Usage == f.Usage
	}
	var walk func(c *cobra.Command)
	commands := 0
	walk = func(c *cobra.Command) {
		commands++
		path := c.CommandPath()
		section, ok := sectionFor(sections, path)
		if !ok {
			t.Errorf("README.md's command reference has no section for %q (a heading naming `%s`)", path, path)
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			if f.Hidden || f.Usage == "" {
				t.Errorf("%s --%s: hidden, or without help text", path, f.Name)
			}
			where, text := "the section of `"+path+"`", section
			if isClientFlag(f) {
				where, text = "Client flags", clientSection
			}
			if !mentions(text, f.Name) {
				t.Errorf("README.md: %s does not name %s's flag --%s", where, path, f.Name)
			}
			for _, m := range envRE.FindAllStringSubmatch(f.Usage, -1) {
				if !strings.Contains(text, m[1]) {
					t.Errorf("README.md: %s does not name %s, the environment variable of %s --%s", where, m[1], path, f.Name)
				}
			}
		})
		for _, sub := range c.Commands() {
			if !sub.Hidden {
				walk(sub)
			}
		}
	}
	walk(newRootCmd())
	require.Greater(t, commands, 15, "the walk saw the whole tree")
}

// TestHelpListsEveryCommand: bouncer --help lists every command,
// completion and version among them, and --version.
func TestHelpListsEveryCommand(t *testing.T) {
	code, out := run(t, "--help")
	require.Equal(t, 0, code, out)
	root := newRootCmd()
	names := []string{}
	for _, c := range root.Commands() {
		if !c.Hidden {
			names = append(names, c.Name())
			require.Regexp(t, `(?m)^  `+regexp.QuoteMeta(c.Name())+` `, out, "bouncer --help does not list %s", c.Name())
		}
	}
	require.Contains(t, names, "completion")
	require.Contains(t, names, "version")
	require.Contains(t, out, "--version")
	code, out = run(t, "completion", "bash")
	require.Equal(t, 0, code, out)
	require.True(t, strings.HasPrefix(out, "# bash completion V2 for bouncer"), "not a bash completion script: %.200s", out)
}

// TestVersion: bouncer version and bouncer --version print the same three
// lines: the module version, the commit (the checkout's, when the build
// was stamped) and the Go version.
func TestVersion(t *testing.T) {
	code, out := run(t, "version")
	require.Equal(t, 0, code, out)
	code, flagOut := run(t, "--version")
	require.Equal(t, 0, code, flagOut)
	require.Equal(t, out, flagOut)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 3, out)
	require.Regexp(t, `^bouncer (\(devel\)|v\d+\.\d+\.\d+\S*)$`, lines[0])
	require.Regexp(t, `^commit ([0-9a-f]{40}( \(with uncommitted changes\))?|unknown)$`, lines[1])
	require.Regexp(t, `^go go1\.\d+\S* `+runtime.GOOS+`/`+runtime.GOARCH+`$`, lines[2])
	if commit := strings.Fields(lines[1])[1]; commit != "unknown" {
		head, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err == nil {
			require.Equal(t, strings.TrimSpace(string(head)), commit, "the stamped commit is the checkout's")
		}
	}
}

// TestBuildOf: what a build's stamp says, and what a build without one
// says instead.
func TestBuildOf(t *testing.T) {
	none := buildOf(nil)
	require.Equal(t, build{version: "(devel)", commit: "unknown", goVer: runtime.Version()}, none)
	require.Contains(t, versionText(none), "bouncer (devel)\ncommit unknown\ngo "+runtime.Version())

	stamped := buildOf(&debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.modified", Value: "true"}}})
	require.Equal(t, "bouncer v1.2.3\ncommit 0123456789abcdef0123456789abcdef01234567 (with uncommitted changes)\ngo go1.99.1 "+
		runtime.GOOS+"/"+runtime.GOARCH+"\n", versionText(stamped))
	unstamped := buildOf(&debug.BuildInfo{Main: debug.Module{Version: ""}})
	require.Equal(t, "(devel)", unstamped.version)
	require.Equal(t, "unknown", unstamped.commit)
}
