package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bouncer-dlm/bouncer/sim"
	"github.com/stretchr/testify/require"
)

// runCmd runs the command tree in this process and returns its output and
// error.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestSimPlain: `sim --plain` runs the plain configuration (swarm testing
// off), whatever the seed, and its replay command says so.
func TestSimPlain(t *testing.T) {
	f := simFlags{plain: true}
	require.Equal(t, sim.PlainOptions(5), f.options(5))
	require.Equal(t, "bouncer sim --seed 5 --plain", f.replay(5))
	require.Equal(t, sim.NewOptions(5), (&simFlags{}).options(5), "without --plain, the seed's own")
	require.Equal(t, sim.PlainOptions(6).Clients, sim.PlainOptions(7).Clients, "the same configuration for every seed")
	o := sim.PlainOptions(5)
	require.NoError(t, o.Validate())
	require.Empty(t, missingFaults(o), "every fault kind is on")
}

// missingFaults lists the fault kinds o leaves off, in a group of 3.
func missingFaults(o sim.Options) []string {
	o.Nodes = 3
	on := strings.Join(o.Faults(), " ")
	var missing []string
	for _, f := range []string{"drop=", "dup=", "slow=", "partitions", "resets", "pauses", "drift=", "crashes", "disk-faults",
		"raft-partitions", "skew=", "transfers", "members", "reads"} {
		if !strings.Contains(on, f) {
			missing = append(missing, f)
		}
	}
	return missing
}
