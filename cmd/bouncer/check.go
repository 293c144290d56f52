package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bouncer-dlm/bouncer/linearizability"
	"github.com/bouncer-dlm/bouncer/sim/replay"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newCheckCmd) }

// exitBadHistory: the history file could not be read or parsed (sysexits
// EX_DATAERR).
const exitBadHistory = 65

func newCheckCmd() *cobra.Command {
	var html string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "check [flags] FILE",
		Short: "Check a recorded client history for linearizability",
		Long: `Check a client history (JSON lines, one request, close or expiry per line;
the format is in sim/README.md and linearizability/doc.go) against the
per-resource Porcupine model of Bouncer's semantics, and write a replay page
(each session's requests and the queues as the clients observed them) with
Porcupine's visualization beside it when it fails (or always, with --html).

Exit status: 0 linearizable; 2 not linearizable; 3 the checker ran out of
time (a failure, never a pass); 65 the history could not be read.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return check(args[0], html, timeout, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&html, "html", "", "write the history's replay page here, and Porcupine's visualization beside it as .porcupine.html (default: FILE.html, on failure)")
	cmd.Flags().DurationVar(&timeout, "timeout", linearizability.DefaultTimeout, "bound on the check")
	return cmd
}

func check(path, html string, timeout time.Duration, out io.Writer) error {
	if timeout <= 0 {
		return usageError("--timeout must be positive")
	}
	f, err := os.Open(path)
	if err != nil {
		return &exitError{code: exitBadHistory, err: err}
	}
	h, err := linearizability.ReadHistory(f)
	f.Close()
	if err != nil {
		return &exitError{code: exitBadHistory, err: fmt.Errorf("%s: %w", path, err)}
	}
	v := linearizability.Check(h, timeout)
	fmt.Fprintf(out, "%s: %d entries: %s\n", path, len(h), v.String())
	if html == "" && !v.OK() {
		html = strings.TrimSuffix(path, ".jsonl") + ".html"
	}
	if html != "" {
		lin := porcupinePath(html)
		if err := writeFile(lin, func(w io.Writer) error { return v.WriteHTML(w, timeout) }); err != nil {
			return err
		}
		page, err := replay.FromHistory("Bouncer: history "+filepath.Base(path), h, &v, filepath.Base(lin), "bouncer check "+path+" --html "+html)
		if err == nil {
			err = writeFile(html, page.Write)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s, %s\n", html, lin)
	}
	switch {
	case v.Verdict == linearizability.Unknown:
		return &exitError{code: exitLiveness, err: fmt.Errorf("the check ran out of time after %v", timeout), quiet: true}
	case !v.OK():
		return &exitError{code: exitCorrectness, err: fmt.Errorf("not linearizable"), quiet: true}
	}
	return nil
}
