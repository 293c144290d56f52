package spec_test

import (
	"strings"
	"testing"

	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

// The DLM's compatibility matrix, as text, checked against Compatible.
const designMatrix = `
   NL CR CW PR PW EX
NL  y  y  y  y  y  y
CR  y  y  y  y  y  n
CW  y  y  y  n  n  n
PR  y  y  n  y  n  n
PW  y  y  n  n  n  n
EX  y  n  n  n  n  n`

func TestCompatibleMatchesDesign(t *testing.T) {
	rows := strings.Split(strings.TrimSpace(designMatrix), "\n")[1:]
	require.Len(t, rows, spec.ModeCount)
	for a, row := range rows {
		cells := strings.Fields(row)
		require.Equal(t, spec.Mode(a).String(), cells[0])
		for b, cell := range cells[1:] {
			require.Equal(t, cell == "y", spec.Compatible(spec.Mode(a), spec.Mode(b)), "%v vs %v", spec.Mode(a), spec.Mode(b))
			require.Equal(t, spec.Compatible(spec.Mode(a), spec.Mode(b)), spec.Compatible(spec.Mode(b), spec.Mode(a)), "symmetric")
		}
	}
}

func TestWeaker(t *testing.T) {
	for a := spec.Mode(0); a < spec.ModeCount; a++ {
		require.True(t, spec.Weaker(a, a))
		require.True(t, spec.Weaker(spec.NL, a), "NL is weaker than everything")
		require.True(t, spec.Weaker(a, spec.EX), "everything is weaker than EX")
	}
	require.False(t, spec.Weaker(spec.CW, spec.PR), "PR->CW is not a down-conversion")
	require.False(t, spec.Weaker(spec.PR, spec.CW), "nor is CW->PR")
	require.True(t, spec.Weaker(spec.PR, spec.PW))
	require.True(t, spec.Weaker(spec.CW, spec.PW))
	require.False(t, spec.Weaker(spec.EX, spec.PW))
}

func TestParseMode(t *testing.T) {
	for s, want := range map[string]spec.Mode{"NL": spec.NL, "cr": spec.CR, " Cw ": spec.CW, "pr": spec.PR,
		"PW": spec.PW, "ex": spec.EX, "shared": spec.PR, "EXCLUSIVE": spec.EX} {
		got, err := spec.ParseMode(s)
		require.NoError(t, err, s)
		require.Equal(t, want, got, s)
	}
	for _, bad := range []string{"", "X", "read", "EXX"} {
		_, err := spec.ParseMode(bad)
		require.Error(t, err, bad)
	}
	require.Equal(t, "Mode(9)", spec.Mode(9).String())
}

func TestCodesAreStable(t *testing.T) {
	// The numbers travel on the wire and in exit statuses: never renumber.
	names := []string{"OK", "WouldBlock", "Timeout", "Deadlock", "Cancelled", "NotHeld", "AlreadyHeld",
		"SessionExpired", "UnknownSession", "InvalidArgument", "LimitExceeded", "Unavailable", "PermissionDenied"}
	for i, name := range names {
		require.Equal(t, name, spec.Code(i).String())
		c, ok := spec.ParseCode(name)
		require.True(t, ok)
		require.Equal(t, spec.Code(i), c)
	}
	require.False(t, spec.Code(len(names)).Valid())
}
