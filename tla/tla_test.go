package tla

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTLC runs TLC on MCBouncer: the clean model must pass every property,
// and each planted bug must make TLC report the property it breaks. It
// needs Java 11 or later and TLA2TOOLS_JAR naming a tla2tools.jar:
//
//	TLA2TOOLS_JAR=/path/to/tla2tools.jar go test ./tla -v -timeout 3h
//
// TLA_RUNS narrows it to a comma-separated list of run names (safety,
// safety-two-resources, liveness, failover, semaphore, semaphore-and-lock,
// pause, pause-semaphore, or a bug name), for example
// TLA_RUNS=safety,Overtake. TLA_WORKERS sets TLC's -workers (default
// auto); on a machine shared with other work, TLA_WORKERS=1.
func TestTLC(t *testing.T) {
	jar := os.Getenv("TLA2TOOLS_JAR")
	if jar == "" {
		t.Skip("TLA2TOOLS_JAR is not set: skipping the TLC runs (see tla/README.md)")
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("no java on PATH: skipping the TLC runs")
	}
	only := map[string]bool{}
	for _, name := range strings.Split(os.Getenv("TLA_RUNS"), ",") {
		if name != "" {
			only[name] = true
		}
	}
	workers := os.Getenv("TLA_WORKERS")
	if workers == "" {
		workers = "auto"
	}
	for _, r := range tlcRuns() {
		if len(only) > 0 && !only[r.name] {
			continue
		}
		t.Run(r.name, func(t *testing.T) { r.check(t, jar, workers) })
	}
}

// A tlcRun is one TLC run: a configuration derived from a .cfg file in this
// directory by replacing lines, and what TLC must say.
type tlcRun struct {
	name    string
	cfg     string            // the .cfg file to start from
	replace map[string]string // whole lines of it to replace (trimmed)
	want    string            // "" for a clean pass, else the broken property's message
}

// withBug returns replace with the line that plants bug added.
func withBug(replace map[string]string, bug string) map[string]string {
	out := map[string]string{`Bug = "none"`: `Bug = "` + bug + `"`}
	for k, v := range replace {
		out[k] = v
	}
	return out
}

// bugRun plants bug in cfg; TLC must then report want.
func bugRun(bug, cfg, want string) tlcRun {
	return tlcRun{name: bug, cfg: cfg,
		replace: map[string]string{`Bug = "none"`: `Bug = "` + bug + `"`}, want: want}
}

func tlcRuns() []tlcRun {
	const one, two, sem = "MCBouncer.cfg", "MCBouncerTwoResources.cfg", "MCBouncerSemaphore.cfg"
	// A semaphore beside a lock resource, for deadlocks through a semaphore.
	semAndLock := map[string]string{"Session = {a, b, c}": "Session = {a, b}", "Resource = {r1}": "Resource = {r1, r2}"}
	return []tlcRun{
		{name: "safety", cfg: "MCBouncer.cfg"},
		{name: "safety-two-resources", cfg: "MCBouncerTwoResources.cfg"},
		{name: "liveness", cfg: "MCBouncerLive.cfg"},
		{name: "failover", cfg: "MCBouncerFailover.cfg"},
		{name: "semaphore", cfg: sem},
		{name: "semaphore-and-lock", cfg: sem, replace: semAndLock},
		// A client suspended with its clock stopped outlives its lease in
		// its own eyes: beliefs conflict (the Kleppmann scenario). This is
		// why fencing tokens exist, not a bug of the lock service.
		{name: "pause", cfg: "MCBouncer.cfg", replace: map[string]string{"MaxPauses = 0": "MaxPauses = 1"},
			want: "Invariant ClientViewExclusion is violated"},
		// The same on a semaphore: more permits believed held than it has.
		{name: "pause-semaphore", cfg: sem, replace: map[string]string{"MaxPauses = 0": "MaxPauses = 1"},
			want: "Invariant ClientViewLimit is violated"},
		bugRun("NewIgnoreConversions", one, "Action property QueueDiscipline is violated"),
		bugRun("Overtake", one, "Action property QueueDiscipline is violated"),
		bugRun("ExpiryKeepsValue", one, "Invariant ValueValidity is violated"),
		bugRun("UpConvertKeepsToken", one, "Action property TokensIncrease is violated"),
		bugRun("ConvertIgnoresHolders", one, "Invariant CompatibleGrants is violated"),
		bugRun("NoDeadlockCheck", two, "Invariant WaitForAcyclic is violated"),
		bugRun("TokenMaxFromLocks", one, "Action property TokensIncrease is violated"),
		bugRun("AckBeforeSync", one, "Invariant NoAckLost is violated"),
		bugRun("NoDriftMargin", one, "Invariant ClientViewExclusion is violated"),
		bugRun("ExpiryKeepsWaiters", "MCBouncerLive.cfg", "Temporal properties were violated"),
		bugRun("FailoverNoGrace", "MCBouncerFailover.cfg", "Invariant ClientViewExclusion is violated"),
		bugRun("SemaphoreOverLimit", sem, "Invariant SemaphoreLimit is violated"),
		// Without the cycle check, a cycle through a semaphore's edge (two
		// requests whose permits add up past the limit) is let through.
		{name: "NoDeadlockCheck-semaphore", cfg: sem, want: "Invariant WaitForAcyclic is violated",
			replace: withBug(semAndLock, "NoDeadlockCheck")},
		// The old wait-for rule refuses compatible waiters as a deadlock: it
		// takes three clients on two resources (a reader queued behind a
		// reader that waits elsewhere), and only the oracle sees it.
		{name: "DeadlockAheadEdges", cfg: two, want: "Invariant DeadlockRefusalsJustified is violated",
			replace: map[string]string{`Bug = "none"`: `Bug = "DeadlockAheadEdges"`,
				"Session = {a, b}": "Session = {a, b, c}", `Modes = {"CR", "PR", "EX"}`: `Modes = {"PR", "EX"}`,
				"MaxRequests = 4": "MaxRequests = 5", "MaxCrashes = 1": "MaxCrashes = 0"}},
		// Conversions overtaking one another need an NL holder converting
		// behind another (any other mode would block the head itself).
		{name: "ConversionOvertakes", cfg: one, want: "Action property QueueDiscipline is violated",
			replace: map[string]string{`Bug = "none"`: `Bug = "ConversionOvertakes"`,
				`Modes = {"CR", "PR", "EX"}`: `Modes = {"NL", "PR", "EX"}`,
				"MaxRequests = 4":            "MaxRequests = 6", "MaxCrashes = 1": "MaxCrashes = 0"}},
	}
}

var tlcStats = regexp.MustCompile(`(?m)^.*states generated.*distinct states found.*$|^The depth of the complete state graph search is \d+\.$|^Finished in .*$`)

func (r tlcRun) check(t *testing.T, jar, workers string) {
	dir := t.TempDir()
	for _, f := range []string{"Bouncer.tla", "MCBouncer.tla"} {
		copyFile(t, f, filepath.Join(dir, f))
	}
	cfg := r.config(t)
	if err := os.WriteFile(filepath.Join(dir, "run.cfg"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-10*time.Second))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "java", "-XX:+UseParallelGC", "-cp", jar, "tlc2.TLC",
		"-workers", workers, "-nowarning", "-cleanup", "-metadir", filepath.Join(dir, "states"),
		"-config", "run.cfg", "MCBouncer.tla")
	cmd.Dir = dir
	out, _ := cmd.CombinedOutput() // TLC exits non-zero on a violation; judged by its output
	for _, line := range tlcStats.FindAllString(string(out), -1) {
		t.Log(line)
	}
	switch {
	case r.want == "" && !bytes.Contains(out, []byte("Model checking completed. No error has been found.")):
		t.Fatalf("TLC did not pass:\n%s", out)
	case r.want != "" && !bytes.Contains(out, []byte("Error: "+r.want)):
		t.Fatalf("TLC did not report %q:\n%s", r.want, out)
	case r.want != "":
		t.Logf("TLC reported, as it must: %s", r.want)
	}
}

// config returns r.cfg with r.replace applied; every line to replace must
// be there, so that a renamed constant cannot turn a bug run into a clean one.
func (r tlcRun) config(t *testing.T) []byte {
	b, err := os.ReadFile(r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for old, repl := range r.replace {
		found := false
		for i, l := range lines {
			if strings.TrimSpace(l) == old {
				lines[i], found = "    "+repl, true
			}
		}
		if !found {
			t.Fatalf("%s has no line %q", r.cfg, old)
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

func copyFile(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
