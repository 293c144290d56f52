package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/sequencer"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

// fixture is a real lock node and the fenced store, both on loopback, and
// a client of the node.
type fixture struct {
	ctx   context.Context
	c     *client.Client
	store *httptest.Server
}

func newFixture(t *testing.T) *fixture {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	addr := servertest.Start(t, server.Options{})
	c, err := client.Connect(client.Config{Addr: addr, TTL: 2 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	keys, err := c.PublicKeys(ctx) // normally: bouncer serve --print-public-key
	require.NoError(t, err)
	store := httptest.NewServer(newStore(keys, storeBounds{}).handler()) // 127.0.0.1
	t.Cleanup(store.Close)
	return &fixture{ctx: ctx, c: c, store: store}
}

// hold takes resource in mode in a new session and returns the lock and
// its sequencer.
func (f *fixture) hold(t *testing.T, resource string, mode spec.Mode) (*client.Lock, string) {
	s, err := f.c.NewSession(f.ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	l, err := s.Lock(f.ctx, resource, mode)
	require.NoError(t, err)
	seq, err := l.Sequencer(f.ctx)
	require.NoError(t, err)
	return l, seq
}

func (f *fixture) put(t *testing.T, key, seq, value string) (int, string) {
	req, err := http.NewRequestWithContext(f.ctx, http.MethodPut, f.store.URL+"/kv/"+key, strings.NewReader(value))
	require.NoError(t, err)
	if seq != "" {
		req.Header.Set(Header, seq)
	}
	resp, err := f.store.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (f *fixture) get(t *testing.T, key string) (int, string) {
	resp, err := f.store.Client().Get(f.store.URL + "/kv/" + key)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestStaleWriterRefused: the first holder writes; it loses the lock and
// the next holder writes; the first comes back with its old sequencer
// and is refused (409), the value staying the newer holder's. The newer
// holder may write again with the same sequencer.
func TestStaleWriterRefused(t *testing.T) {
	f := newFixture(t)
	first, old := f.hold(t, "greeting", spec.EX)
	code, body := f.put(t, "greeting", old, "hello")
	require.Equal(t, http.StatusNoContent, code, body)

	require.NoError(t, first.Unlock(f.ctx)) // as if its lease ran out
	_, newer := f.hold(t, "greeting", spec.PW)
	code, body = f.put(t, "greeting", newer, "bonjour")
	require.Equal(t, http.StatusNoContent, code, body)

	code, body = f.put(t, "greeting", old, "stale")
	require.Equal(t, http.StatusConflict, code, body)
	require.Contains(t, body, "stale token")
	code, body = f.get(t, "greeting")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "bonjour", body)

	code, body = f.put(t, "greeting", newer, "hallo")
	require.Equal(t, http.StatusNoContent, code, "the same holder writes again: %s", body)
}

// TestWritesNeedAGoodSequencer: no sequencer, a forged one, one for
// another key and one in a reader's mode are each refused, and write
// nothing.
func TestWritesNeedAGoodSequencer(t *testing.T) {
	f := newFixture(t)
	code, body := f.put(t, "k", "", "v")
	require.Equal(t, http.StatusUnauthorized, code, body)

	_, forger, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	b, err := sequencer.Sign(sequencer.Sequencer{Resource: "k", Mode: spec.EX, Token: 1 << 60, SessionTag: []byte("forged!!")}, forger)
	require.NoError(t, err)
	code, body = f.put(t, "k", sequencer.Text(b), "v")
	require.Equal(t, http.StatusUnauthorized, code, body)

	_, other := f.hold(t, "other", spec.EX)
	code, body = f.put(t, "k", other, "v")
	require.Equal(t, http.StatusForbidden, code, body)

	_, reader := f.hold(t, "k", spec.PR)
	code, body = f.put(t, "k", reader, "v")
	require.Equal(t, http.StatusForbidden, code, body)

	code, _ = f.get(t, "k")
	require.Equal(t, http.StatusNotFound, code, "nothing was written")
}
