//go:build !bugzoo

package main

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestZooNeedsTheBugzooBuild: without the planted bugs, `bouncer zoo` says
// how to build them in, and exits 64.
func TestZooNeedsTheBugzooBuild(t *testing.T) {
	out, err := runCmd(t, "zoo", "--seeds", "1")
	var e *exitError
	require.True(t, errors.As(err, &e), "%v\n%s", err, out)
	require.Equal(t, exitUsage, e.code)
	require.Contains(t, err.Error(), "go run -tags bugzoo ./cmd/bouncer zoo")
}
