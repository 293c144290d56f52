//go:build bugzoo

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bouncer-dlm/bouncer/sim"
	"github.com/stretchr/testify/require"
)

// zooRows runs `bouncer zoo --json` with args and decodes its rows.
func zooRows(t *testing.T, args ...string) []zooRow {
	t.Helper()
	out, err := runCmd(t, append([]string{"zoo", "--json"}, args...)...)
	require.NoError(t, err, out)
	var rows []zooRow
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r zooRow
		require.NoError(t, json.Unmarshal([]byte(line), &r), line)
		require.NotNil(t, r.Failed, "a list is never null: %s", line)
		require.Contains(t, line, `"failed":[`)
		rows = append(rows, r)
	}
	return rows
}

// TestZooTable: the table of a subset of the zoo, swarm testing on and off:
// each bug's checker, the first seed that caught it, every checker that
// failed there, and "not caught" where the seeds ran out; the JSON rows say
// the same.
func TestZooTable(t *testing.T) {
	out, err := runCmd(t, "zoo", "--bug", "fifo-overtake,client-no-poll", "--seeds", "1", "--jobs", "2")
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 6, out) // the header, 2 bugs x 2 settings, the summary
	require.Regexp(t, `^bug +checker +swarm +caught at +simulated +wall +crashed +failing checkers$`, lines[0])
	require.Regexp(t, `^fifo-overtake +model +on +seed 1 +\S+ +\S+ +0 +linearizability,invariants,model$`, lines[1])
	require.Regexp(t, `^fifo-overtake +model +off +seed 1 +\S+ +\S+ +0 +linearizability,invariants,model$`, lines[2])
	require.Regexp(t, `^client-no-poll +liveness +on +not caught in 1 seed +\S+ +\S+ +0 +$`, lines[3])
	require.Regexp(t, `^client-no-poll +liveness +off +not caught in 1 seed `, lines[4])
	require.Equal(t, "rows=4 caught=2 not_caught=2 seeds_per_row=1 ", lines[5][:len("rows=4 caught=2 not_caught=2 seeds_per_row=1 ")])

	rows := zooRows(t, "--bug", "client-no-poll", "--seeds", "3", "--swarm", "on")
	require.Len(t, rows, 1)
	r := rows[0]
	require.Equal(t, zooRow{Bug: "client-no-poll", Nodes: 1, Checker: sim.Liveness, Swarm: true, Caught: true, Seed: 2, Seeds: 2,
		SimMs: r.SimMs, WallMs: r.WallMs, Failed: []string{sim.Liveness}, Replay: "bouncer sim --bug client-no-poll --seed 2"}, r)
	require.Positive(t, r.SimMs)

	for _, bad := range [][]string{{"zoo", "--bug", "nope"}, {"zoo", "--seeds", "0"}, {"zoo", "--swarm", "sometimes"}, {"zoo", "--jobs", "0"}} {
		_, err := runCmd(t, bad...)
		var e *exitError
		require.True(t, errors.As(err, &e), "%v: %v", bad, err)
		require.Equal(t, exitUsage, e.code, "%v", bad)
	}
}

// TestZooSeedsReplay: the catching seed of each row, replayed with the
// command the row names (`bouncer sim --bug NAME --seed S`, with --plain
// for swarm off), gives the same verdicts as the zoo's run: the zoo's faults
// (the bug's Tune) and group size are applied by sim --bug too. The bugs
// chosen all have a Tune, one of them lives in a group.
func TestZooSeedsReplay(t *testing.T) {
	defer func() { _ = sim.PlantBug("") }()
	rows := zooRows(t, "--bug", "client-no-poll,no-grace-period,failover-no-grace", "--seeds", "20")
	for _, r := range rows {
		require.True(t, r.Caught, "%+v", r)
		args := append(strings.Fields(strings.TrimPrefix(r.Replay, "bouncer ")), "--out", t.TempDir())
		out, err := runCmd(t, args...)
		var e *exitError
		require.True(t, errors.As(err, &e), "%s: %v\n%s", r.Replay, err, out)
		require.Contains(t, out, fmt.Sprintf("failed=%s\n", strings.Join(r.Failed, ",")), r.Replay)
		require.Contains(t, out, fmt.Sprintf("  %-16s %d\n", "nodes", r.Nodes), r.Replay)
		for _, c := range r.Failed {
			require.Regexp(t, `(?m)^  `+c+` +FAIL`, out, r.Replay)
		}
	}
}
