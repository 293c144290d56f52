package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// TestAssertions plants, on a real core, each mistake an always-on
// assertion exists to catch, and requires the core to panic at once
// (rather than go on with a corrupted count, list or reply table).
func TestAssertions(t *testing.T) {
	for name, plant := range map[string]func(c *Core, held, queued *lock){
		"grant a granted lock":             func(c *Core, held, _ *lock) { c.grantNew(held) },
		"ungrant a waiting lock":           func(c *Core, _, queued *lock) { c.ungrant(queued) },
		"change the mode of a waiter":      func(c *Core, _, queued *lock) { c.setMode(queued, spec.PR) },
		"dequeue a lock with no request":   func(c *Core, held, _ *lock) { c.dequeue(held) },
		"queue a request with no id":       func(c *Core, held, _ *lock) { c.enqueue(held, &held.res.ext.converting, spec.EX, 0, c.now+1) },
		"free a granted lock":              func(c *Core, held, _ *lock) { c.freeLockQuietly(held) },
		"drop a resource with locks":       func(c *Core, held, _ *lock) { c.dropResource(held.res) },
		"join the granted list twice":      func(c *Core, held, _ *lock) { held.res.granted.pushBack(grantedList, held) },
		"leave a queue one is not on":      func(c *Core, held, _ *lock) { held.res.ext.waiting.remove(queueList, held) },
		"record a final outcome twice":     func(c *Core, held, _ *lock) { c.record(held.sess, 1, 0, spec.Result{Code: spec.OK}) },
		"count a negative number of locks": func(c *Core, _, queued *lock) { queued.res.ext.waiting.n = 0; c.dequeue(queued) },
	} {
		t.Run(name, func(t *testing.T) {
			c, held, queued := assertionCore(t)
			defer func() {
				p, _ := recover().(string)
				if !strings.HasPrefix(p, "engine: assertion failed") {
					t.Fatalf("the core did not assert (recovered %q)", p)
				}
			}()
			plant(c, held, queued)
		})
	}
}

// assertionCore returns a core where session a holds r in EX (its acquire
// was request 1) and b waits for it.
func assertionCore(t *testing.T) (*Core, *lock, *lock) {
	c, err := New(spec.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	a, b := spec.NamedSession("a"), spec.NamedSession("b")
	for _, in := range []spec.Input{
		{Op: spec.OpOpen, Session: a, TTL: time.Minute},
		{Op: spec.OpOpen, Session: b, TTL: time.Minute},
		{Op: spec.OpAcquire, Session: a, Request: 1, Resource: "r", Mode: spec.EX, NoQueue: true},
		{Op: spec.OpAcquire, Session: b, Request: 1, Resource: "r", Mode: spec.EX, WaitTimeout: time.Second},
	} {
		if res := c.Step(1, &in); res.Code != spec.OK {
			t.Fatalf("%v: %v", in.Op, res)
		}
	}
	held, queued := c.lockOf(c.sessions[a], "r"), c.lockOf(c.sessions[b], "r")
	if held == nil || !held.granted || queued == nil || queued.request == 0 {
		t.Fatal("the setup did not grant a and queue b")
	}
	return c, held, queued
}
