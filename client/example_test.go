package client_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/bouncer-dlm/bouncer/bench"
	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/spec"
)

// fencedStore stands for any resource that can check fencing tokens: a
// database row with a token column, an object store with conditional
// writes. It rejects a write whose token is lower than the highest it has
// seen, so a client that still believes it holds the lock after losing it
// (a long GC pause, a partition) cannot overwrite a newer holder's work.
type fencedStore struct {
	mu      sync.Mutex
	highest spec.Token
	value   string
}

func (s *fencedStore) write(token spec.Token, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token < s.highest {
		return fmt.Errorf("stale token %d (seen %d): write refused", token, s.highest)
	}
	s.highest, s.value = token, value
	return nil
}

// Take a lock, write under its fencing token, release it; a holder that
// comes back late with an old token is refused by the store.
func Example() {
	stop, addr, err := bench.StartNode() // a node on loopback; normally: bouncer serve
	if err != nil {
		panic(err)
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := client.Connect(client.Config{Addr: addr, TTL: 5 * time.Second})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	s, err := c.NewSession(ctx)
	if err != nil {
		panic(err)
	}
	defer s.Close(ctx)

	store := &fencedStore{}
	first, err := s.Lock(ctx, "report", spec.Exclusive)
	if err != nil {
		panic(err)
	}
	staleToken := first.Token()
	fmt.Println("write 1:", store.write(staleToken, "draft"))
	if err := first.Unlock(ctx); err != nil {
		panic(err)
	}

	second, err := s.Lock(ctx, "report", spec.Exclusive)
	if err != nil {
		panic(err)
	}
	fmt.Println("write 2:", store.write(second.Token(), "final"))
	// The first holder wakes up from a pause and writes with its old token.
	fmt.Println("late write:", store.write(staleToken, "draft again"))
	fmt.Println("store holds:", store.value)
	if err := second.Unlock(ctx); err != nil {
		panic(err)
	}
	// Output:
	// write 1: <nil>
	// write 2: <nil>
	// late write: stale token 1 (seen 2): write refused
	// store holds: final
}
