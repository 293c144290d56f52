package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

// hostile is a resource name that, printed raw, clears the screen and
// fakes a row of the status table.
const hostile = "a\x1b[2J\nfake-row  ffffffff:EX#1  -  -  \"\""

// requireSafe fails if out holds a control byte other than newline, or
// more lines than want.
func requireSafe(t *testing.T, out string, lines int) {
	t.Helper()
	for _, c := range []byte(out) {
		require.False(t, c < 0x20 && c != '\n' || c == 0x7f, "control byte %#x in %q", c, out)
	}
	require.Equal(t, lines, strings.Count(out, "\n"), "%q", out)
}

func TestStatusQuotesNames(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, printResources(&out, []*pb.Resource{{Name: []byte(hostile), ValueValid: true}}))
	requireSafe(t, out.String(), 2)
	require.Contains(t, out.String(), spec.QuoteName(hostile))

	// A label is the client's to choose: it is quoted as a name is, in
	// the table and in lock's waiting message.
	tag := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	r := &pb.Resource{Name: []byte("x"), ValueValid: true,
		Holders: []*pb.Lock{{SessionTag: []byte{9, 9, 9, 9, 9, 9, 9, 9}, Mode: pb.Mode_MODE_EX, Token: 1, Label: hostile}},
		Waiting: []*pb.Lock{{SessionTag: tag, Mode: pb.Mode_MODE_EX, Label: hostile}}}
	out.Reset()
	require.NoError(t, printResources(&out, []*pb.Resource{r}))
	requireSafe(t, out.String(), 2)
	require.Contains(t, out.String(), spec.QuoteName(hostile))
	msg, _ := waitMessage(r, tag)
	requireSafe(t, msg, 2)
	require.Contains(t, msg, spec.QuoteName(hostile))
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cancelOnWrite cancels a context at the first write.
type cancelOnWrite struct {
	syncBuffer
	cancel context.CancelFunc
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	defer c.cancel()
	return c.syncBuffer.Write(p)
}

func TestWatchAndLockQuoteNames(t *testing.T) {
	addr := servertest.Start(t, server.Options{})
	flags := clientFlags{addr: addr, timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	wctx, wcancel := context.WithCancel(ctx)
	out := &cancelOnWrite{cancel: wcancel}
	require.NoError(t, watch(wctx, watchFlags{clientFlags: flags}, hostile, out))
	requireSafe(t, out.String(), 1)

	c, err := client.Connect(client.Config{Addr: addr})
	require.NoError(t, err)
	defer c.Close()
	s, err := c.NewSession(ctx)
	require.NoError(t, err)
	l, err := s.Lock(ctx, hostile, spec.EX)
	require.NoError(t, err)
	defer func() { _ = l.Unlock(ctx) }()
	err = runLocked(ctx, lockFlags{clientFlags: flags, mode: "EX", ttl: 2 * time.Second, noWait: true}, hostile, []string{"true"})
	require.Error(t, err)
	requireSafe(t, err.Error()+"\n", 1)
	require.Contains(t, err.Error(), spec.QuoteName(hostile))
	err = runLocked(ctx, lockFlags{clientFlags: flags, mode: "EX", ttl: 2 * time.Second, wait: 50 * time.Millisecond}, hostile, []string{"true"})
	require.Error(t, err)
	requireSafe(t, err.Error()+"\n", 1)
}
