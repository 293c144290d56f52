package client_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

// TestOversizedRequestFailsAlone: a request over a limit fails at once
// with LimitExceeded naming the bound, and the other sessions of the same
// client (which share its Pipe stream) keep working.
func TestOversizedRequestFailsAlone(t *testing.T) {
	ctx := testCtx(t)
	c := connect(t, servertest.Start(t, server.Options{}), client.Config{TTL: 2 * time.Second})
	a, err := c.NewSession(ctx)
	require.NoError(t, err)
	b, err := c.NewSession(ctx)
	require.NoError(t, err)
	lb, err := b.Lock(ctx, "other", spec.EX)
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = a.Lock(short, strings.Repeat("n", 8000), spec.EX)
	require.ErrorIs(t, err, client.ErrLimitExceeded)
	require.Contains(t, err.Error(), "NameBytesMax")
	l, err := a.TryLock(short, "small", spec.EX)
	require.NoError(t, err, "the session goes on")
	require.ErrorIs(t, l.UnlockWithValue(short, make([]byte, 5000)), client.ErrLimitExceeded)
	require.NoError(t, l.Unlock(short))

	require.NoError(t, lb.Unlock(short), "the other session was never held up")
	lb, err = b.Lock(short, "other", spec.EX)
	require.NoError(t, err)
	require.NoError(t, lb.Unlock(short))
}
