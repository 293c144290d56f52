// Package core breaks every rule of the core rule set once; TestPlanted
// requires that the lint reports each, and nothing else (the sorted and
// the commented map ranges are allowed).
package core

import (
	"math/rand"
	"os"
	"sort"
	"sync"
	"time"
)

type state struct {
	mu   sync.Mutex
	m    map[string]int
	out  []string
	wake chan struct{}
}

func (c *state) step() {
	_ = os.Getpid()
	_ = rand.Int()
	_ = time.Now()
	go c.step()
	for k := range c.m {
		c.out = append(c.out, k)
	}
	<-c.wake
}

func (c *state) allowed() int {
	var keys []string
	for k := range c.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := 0
	for _, v := range c.m {
		n += v // map order: a sum does not depend on it
	}
	return n + len(keys)
}
