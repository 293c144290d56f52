package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/bouncer-dlm/bouncer/sequencer"
	"github.com/bouncer-dlm/bouncer/spec"
)

// Header carries a writer's sequencer, in its text form.
const Header = "Bouncer-Sequencer"

// storeBounds bound what the store keeps; zero fields take the defaults.
type storeBounds struct {
	keys, valueBytes int
}

func (b storeBounds) withDefaults() storeBounds {
	if b.keys <= 0 {
		b.keys = 10_000
	}
	if b.valueBytes <= 0 {
		b.valueBytes = 64 << 10
	}
	return b
}

// store is the fenced key-value store.
type store struct {
	trusted []ed25519.PublicKey
	bounds  storeBounds

	// mu makes admitting a write and applying it one step: were they two,
	// a stale writer admitted just before its successor could apply its
	// write just after the successor's, and win.
	mu     sync.Mutex
	fence  *sequencer.Fence // under mu
	values map[string]entry // under mu
}

type entry struct {
	value []byte
	token spec.Token // the writer's fencing token
}

func newStore(trusted []ed25519.PublicKey, b storeBounds) *store {
	b = b.withDefaults()
	return &store{trusted: trusted, bounds: b, fence: sequencer.NewFence(b.keys), values: map[string]entry{}}
}

func (s *store) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /kv/{key}", s.put)
	mux.HandleFunc("GET /kv/{key}", s.get)
	return mux
}

// put writes the body to the key, if the writer's sequencer admits it:
// 401 without a sequencer the store can verify, 403 for one of another
// key or too weak a mode, 409 for a stale one.
func (s *store) put(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	text := r.Header.Get(Header)
	if text == "" {
		http.Error(w, "no "+Header+" header: write while holding the lock, with its sequencer", http.StatusUnauthorized)
		return
	}
	seq, err := sequencer.Verify(text, s.trusted)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.bounds.valueBytes)))
	if err != nil {
		http.Error(w, fmt.Sprintf("value: %v (at most %d bytes)", err, s.bounds.valueBytes), http.StatusRequestEntityTooLarge)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.values[key]; !ok && len(s.values) >= s.bounds.keys {
		http.Error(w, fmt.Sprintf("the store holds %d keys, its bound", s.bounds.keys), http.StatusInsufficientStorage)
		return
	}
	if err := s.fence.Admit(seq, key, spec.PW); err != nil {
		code := http.StatusForbidden
		if errors.Is(err, sequencer.ErrStale) {
			code = http.StatusConflict
		}
		http.Error(w, err.Error(), code)
		return
	}
	s.values[key] = entry{value: value, token: seq.Token}
	w.WriteHeader(http.StatusNoContent)
}

// get returns the key's value, with the token of its writer.
func (s *store) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	e, ok := s.values[r.PathValue("key")]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Bouncer-Token", strconv.FormatUint(uint64(e.token), 10))
	_, _ = w.Write(e.value)
}
