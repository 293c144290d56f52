package engine_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// turnInputsMax is how many core steps the benchmarks take between Advance
// calls, as the loop would between turns.
const turnInputsMax = 1024

func benchCore(b *testing.B) *engine.Core {
	lim := spec.DefaultLimits()
	c, err := engine.New(lim)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func mustOK(b *testing.B, r spec.Result) {
	if r.Code != spec.OK {
		b.Fatalf("unexpected %s", r.String())
	}
}

// BenchmarkCoreUncontended: one acquire and one release of an uncontended
// lock per op, on the core alone (no store), with the client acknowledging
// each outcome so the exactly-once table stays small.
func BenchmarkCoreUncontended(b *testing.B) {
	c := benchCore(b)
	s := spec.NamedSession("bench")
	mustOK(b, c.Step(0, &spec.Input{Op: spec.OpOpen, Session: s, TTL: time.Hour}))
	acq := spec.Input{Op: spec.OpAcquire, Session: s, Resource: "resource", Mode: spec.EX, NoQueue: true}
	rel := spec.Input{Op: spec.OpRelease, Session: s, Resource: "resource"}
	var req spec.RequestID
	step := func() {
		req++
		acq.Request, acq.Acked = req, req-1
		mustOK(b, c.Step(0, &acq))
		req++
		rel.Request, rel.Acked = req, req-1
		mustOK(b, c.Step(0, &rel))
		if req%turnInputsMax == 0 {
			c.Ready()
			c.Advance()
		}
	}
	for range 2 * turnInputsMax { // warm the pools and buffers
		step()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		step()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}

// BenchmarkCoreContendedHandoff: sessions queue for EX on one resource;
// each op is one release that hands the lock to the next in line (FIFO),
// who then queues again behind the others.
func BenchmarkCoreContendedHandoff(b *testing.B) {
	for _, waiters := range []int{2, 64} {
		b.Run(fmt.Sprintf("waiters=%d", waiters), func(b *testing.B) {
			c := benchCore(b)
			sessions := make([]spec.SessionID, waiters)
			reqs := make([]spec.RequestID, waiters)
			for i := range sessions {
				sessions[i] = spec.NamedSession("s" + strconv.Itoa(i))
				mustOK(b, c.Step(0, &spec.Input{Op: spec.OpOpen, Session: sessions[i], TTL: time.Hour}))
			}
			in := spec.Input{Resource: "hot", Mode: spec.EX, WaitTimeout: time.Hour}
			send := func(i int, op spec.Op) spec.Result {
				reqs[i]++
				in.Op, in.Session, in.Request = op, sessions[i], reqs[i]
				in.Acked = reqs[i] - 1
				return c.Step(0, &in)
			}
			for i := range sessions {
				send(i, spec.OpAcquire)
			}
			holder := 0
			ops := 0
			step := func() {
				mustOK(b, send(holder, spec.OpRelease))
				if r := send(holder, spec.OpAcquire); !r.Pending {
					b.Fatalf("re-acquire should queue, got %s", r.String())
				}
				holder = (holder + 1) % waiters
				if ops++; ops%turnInputsMax == 0 {
					c.Ready()
					c.Advance()
				}
			}
			for range 2 * turnInputsMax {
				step()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				step()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handoffs/s")
		})
	}
}

// BenchmarkNodeGroupCommit: the core and its Pebble store on this machine's
// disk, fsync on. Each op is one turn that steps `waiting` inputs and
// commits them with one fsync. Clients lock and unlock their own resources:
// with clients=waiting each sends one request per turn (an acquire in one
// turn, its release in the next); with clients=waiting/2 each sends its
// acquire and its release in the same turn, as pipelining clients do.
func BenchmarkNodeGroupCommit(b *testing.B) {
	for _, waiting := range []int{1, 64, 1024} {
		for _, perTurn := range []int{1, 2} {
			if waiting < perTurn {
				continue
			}
			name := fmt.Sprintf("waiting=%d/requests-per-client=%d", waiting, perTurn)
			b.Run(name, func(b *testing.B) { benchGroupCommit(b, waiting, perTurn) })
		}
	}
}

func benchGroupCommit(b *testing.B, waiting, perTurn int) {
	lim := spec.DefaultLimits()
	lim.InputsPerBatchMax = waiting
	node, err := engine.OpenNode(engine.NodeOptions{FS: vfs.Default, Dir: b.TempDir(), Limits: lim}, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = node.Close() }()
	clients := waiting / perTurn
	opens := make([]spec.Input, clients)
	names := make([]string, clients)
	for i := range opens {
		opens[i] = spec.Input{Op: spec.OpOpen, Session: spec.NamedSession("c" + strconv.Itoa(i)), TTL: time.Hour}
		names[i] = "r" + strconv.Itoa(i)
	}
	if _, err := node.Turn(0, opens); err != nil {
		b.Fatal(err)
	}
	reqs := make([]spec.RequestID, clients) // client i's last request id
	inputs := make([]spec.Input, 0, waiting)
	var grants, fsyncs int
	turn := func() {
		inputs = inputs[:0]
		for i := range clients {
			for range perTurn {
				op := spec.OpAcquire
				if reqs[i]%2 == 1 { // odd requests acquire, even ones release
					op = spec.OpRelease
				}
				reqs[i]++
				inputs = append(inputs, spec.Input{Op: op, Session: opens[i].Session, Request: reqs[i],
					Acked: reqs[i] - 1, Resource: names[i], Mode: spec.EX, NoQueue: true})
			}
		}
		res, err := node.Turn(0, inputs)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res.Replies {
			if r.Code != spec.OK {
				b.Fatalf("unexpected %s", r.String())
			}
			if r.Token != 0 {
				grants++
			}
		}
		if res.Writes > 0 {
			fsyncs++
		}
	}
	b.ResetTimer()
	for b.Loop() {
		turn()
	}
	b.ReportMetric(float64(grants)/b.Elapsed().Seconds(), "grants/s")
	b.ReportMetric(float64(grants)/float64(max(fsyncs, 1)), "grants/fsync")
	b.ReportMetric(float64(b.N*waiting)/b.Elapsed().Seconds(), "inputs/s")
}
