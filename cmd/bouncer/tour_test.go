package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The tour (docs/TOUR.md) pastes the output of its commands. The blocks it
// marks with tourMarker on the line before their fence are deterministic
// (simulator seeds), and TestTour runs them, so that a change to the
// simulator that makes a seed stop showing what the text explains fails
// here instead of leaving the tour wrong.

const (
	tourPath   = "../../docs/TOUR.md"
	tourMarker = "<!-- tour: run -->"
	// tourBlocksMin guards the marker: a block that lost it is not run.
	tourBlocksMin = 3
	// tourCommandTimeout bounds each command (a seed runs in well under a
	// second; a slow shared machine gets room).
	tourCommandTimeout = 2 * time.Minute
)

// tourZoo is set in a build with -tags bugzoo (tour_zoo_test.go): only then
// are the blocks that run bouncer-zoo run.
var tourZoo bool

// tourStep is one `$ command` of a block and the output the tour shows.
type tourStep struct {
	line    int // in TOUR.md, for messages
	command string
	want    []string
}

// tourBlocks returns the steps of each marked block of the file at path.
func tourBlocks(t *testing.T, path string) [][]tourStep {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var blocks [][]tourStep
	var block []tourStep
	marked, in := false, false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t")
		switch {
		case !in && line == tourMarker:
			marked = true
		case !in && strings.HasPrefix(line, "```"):
			in, block = true, nil
		case in && line == "```":
			if marked {
				require.NotEmpty(t, block, "%s:%d: a marked block with no command", path, n)
				blocks = append(blocks, block)
			}
			in, marked = false, false
		case in && marked && strings.HasPrefix(line, "$ "):
			block = append(block, tourStep{line: n, command: line[2:]})
		case in && marked:
			require.NotEmpty(t, block, "%s:%d: output before the block's first command", path, n)
			block[len(block)-1].want = append(block[len(block)-1].want, line)
		case !in && line != "":
			marked = false // the marker applies to the fence right after it
		}
	}
	require.NoError(t, sc.Err())
	require.False(t, in, "%s: a block is not closed", path)
	return blocks
}

// TestTour runs every marked block of docs/TOUR.md with the built binary
// (and, in a bugzoo build, one built with the planted bugs) in a scratch
// directory, and requires each command's output to be exactly the one
// the tour shows. Nothing here opens a socket: the blocks run the
// simulator.
func TestTour(t *testing.T) {
	blocks := tourBlocks(t, tourPath)
	require.GreaterOrEqual(t, len(blocks), tourBlocksMin, "runnable blocks in %s", tourPath)

	dir := t.TempDir()
	require.NoError(t, os.Symlink(bin, filepath.Join(dir, "bouncer")))
	if tourZoo {
		zoo := filepath.Join(dir, "bouncer-zoo")
		out, err := exec.Command("go", "build", "-tags", "bugzoo", "-o", zoo, ".").CombinedOutput()
		require.NoError(t, err, "build with -tags bugzoo: %s", out)
	}
	env := append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), "TMPDIR="+dir)

	ran := 0
	for _, block := range blocks {
		if !tourZoo && strings.Contains(block[0].command, "bouncer-zoo") {
			t.Logf("%s:%d: needs bouncer-zoo: run with -tags bugzoo", tourPath, block[0].line)
			continue
		}
		for _, step := range block {
			ctx, cancel := context.WithTimeout(context.Background(), tourCommandTimeout)
			cmd := exec.CommandContext(ctx, "sh", "-c", step.command)
			cmd.Dir, cmd.Env = dir, env
			out, err := cmd.Output() // an exit status is the pipeline's: its last command's
			cancel()
			require.NoError(t, err, "%s:%d: %s", tourPath, step.line, step.command)
			got := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			for i := range got {
				got[i] = strings.TrimRight(got[i], " \t")
			}
			require.Equal(t, strings.Join(step.want, "\n"), strings.Join(got, "\n"),
				"%s:%d: the output of `%s` is no longer the one the tour shows", tourPath, step.line, step.command)
			ran++
		}
	}
	require.Positive(t, ran)
}

// TestTourBlocks: the parser takes only marked blocks, splits commands
// from their output, and refuses output with no command before it.
func TestTourBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tour.md")
	doc := "text\n\n" + tourMarker + "\n```\n$ echo a\na\n$ true\n```\n\n```\n$ not marked\n```\n" +
		tourMarker + "\n\nafter a paragraph the marker is spent\n```\n$ not run\n```\n"
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o644))
	blocks := tourBlocks(t, path)
	require.Equal(t, [][]tourStep{{{line: 5, command: "echo a", want: []string{"a"}}, {line: 7, command: "true"}}}, blocks)
}
