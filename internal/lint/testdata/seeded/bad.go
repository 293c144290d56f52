// Package seeded breaks every rule of the seeded rule set once; TestPlanted
// requires that the lint reports each, and nothing else (a generator it
// seeds, a mutex, a sorted map range are allowed).
package seeded

import (
	crand "crypto/rand"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"time"
)

type sim struct {
	mu   sync.Mutex
	rng  *rand.Rand
	m    map[string]int
	out  []string
	wake chan struct{}
}

func newSim(seed uint64) *sim {
	return &sim{rng: rand.New(rand.NewPCG(seed, 1)), m: map[string]int{}}
}

func (s *sim) step(start time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = os.Getpid()
	_ = crand.Text()
	_ = rand.IntN(10)
	_ = s.rng.IntN(10)
	_ = time.Since(start)
	go s.step(start)
	for k := range s.m {
		s.out = append(s.out, k)
	}
	s.wake <- struct{}{}
}

func (s *sim) allowed() []string {
	var keys []string
	for k := range s.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
