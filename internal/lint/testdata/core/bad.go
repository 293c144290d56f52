// Package badcore breaks every rule of the core lint once; TestLint
// requires that the lint reports each.
package badcore

import (
	"math/rand"
	"os"
	"time"
)

type core struct {
	m    map[string]int
	out  []string
	wake chan struct{}
}

func (c *core) step() {
	_ = os.Getpid()
	_ = rand.Int()
	_ = time.Now()
	go c.step()
	for k := range c.m {
		c.out = append(c.out, k)
	}
	<-c.wake
}
