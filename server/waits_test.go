package server

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/spec/spectest"
	"github.com/bouncer-dlm/bouncer/wire"
	"pgregory.net/rapid"
)

// TestWaitGraphIsSpecs: on every state a random workload reaches in the
// model, the edges of buildWaitGraph, stripped of resource and reason,
// are exactly spec.WaitsFor's; every queued request is a waiter; every
// HOLDER edge names a listed holder whose granted mode is the edge's
// blocking mode; and an AHEAD edge's blocker is a waiter on the same
// resource.
func TestWaitGraphIsSpecs(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lim := spectest.SmallLimits()
		lim.WaitersPerResourceMax, lim.SessionsMax = 4, 6 // longer queues: more edges to requests ahead
		m := spec.NewModel(lim)
		g := spectest.NewGen()
		for range rapid.IntRange(20, 120).Draw(t, "steps") {
			now := g.Advance(t)
			in := g.Input(t)
			r, events := m.Step(now, in)
			g.Observe(in, r, events)
			st := m.State()
			checkWaitGraph(t, &st)
		}
	})
}

func checkWaitGraph(t *rapid.T, st *spec.State) {
	queued := 0
	for _, r := range st.Resources {
		queued += len(r.Converting) + len(r.Waiting)
	}
	g := buildWaitGraph(st.Resources, st.Now, 1000)
	if g.truncated || len(g.waiters) != queued {
		t.Fatalf("%d waiters listed (truncated %v), %d queued\n%s", len(g.waiters), g.truncated, queued, st)
	}
	got := map[spec.SessionID][]spec.SessionID{}
	for _, e := range g.edges {
		if !slices.Contains(got[e.waiter], e.blocker) {
			got[e.waiter] = append(got[e.waiter], e.blocker)
		}
		switch e.reason {
		case pb.WaitReason_WAIT_REASON_HOLDER:
			h := grantedOf(st, e.resource, e.blocker)
			want := holding{session: e.blocker, resource: e.resource, mode: h.Mode, permits: h.Permits, token: h.Token}
			if h.Mode != e.blocking || h.Permits != e.permits || !slices.Contains(g.holders, want) {
				t.Fatalf("edge %v names a holder not listed as such: %v\n%s", e, g.holders, st)
			}
		case pb.WaitReason_WAIT_REASON_AHEAD:
			if !slices.ContainsFunc(g.waiters, func(w waiter) bool { return w.session == e.blocker && w.resource == e.resource }) {
				t.Fatalf("AHEAD edge %v: the blocker does not wait on %q\n%s", e, e.resource, st)
			}
		default:
			t.Fatalf("edge %v without a reason", e)
		}
	}
	want := spec.WaitsFor(st)
	for s := range got {
		slices.SortFunc(got[s], func(a, b spec.SessionID) int { return slices.Compare(a[:], b[:]) })
	}
	if len(got) != len(want) {
		t.Fatalf("edges from %d sessions, spec has %d: got %v want %v\n%s", len(got), len(want), got, want, st)
	}
	for s, to := range want {
		if !slices.Equal(got[s], to) {
			t.Fatalf("edges from %s: got %v want %v\n%s", spec.ShortID(s), got[s], to, st)
		}
	}
}

// grantedOf is s's granted lock on resource.
func grantedOf(st *spec.State, resource string, s spec.SessionID) spec.LockState {
	for _, r := range st.Resources {
		if r.Name == resource {
			for _, l := range r.Granted {
				if l.Session == s {
					return l
				}
			}
		}
	}
	return spec.LockState{}
}

// TestWaitGraphSemaphoresAreSpecs: on random semaphores (holders within
// the limit, waiters of any size), the edges are spec.WaitsFor's: a lock
// conflicts with a request when their permits add up past the limit.
func TestWaitGraphSemaphoresAreSpecs(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		limit := rapid.Uint32Range(1, 6).Draw(t, "limit")
		r := spec.ResourceState{Name: "pool", Limit: limit}
		used := uint32(0)
		for i := range rapid.IntRange(1, 10).Draw(t, "locks") {
			id := spec.NamedSession(fmt.Sprint("s", i))
			permits := rapid.Uint32Range(1, limit).Draw(t, "permits")
			if rapid.Bool().Draw(t, "granted") && used+permits <= limit {
				used += permits
				r.Granted = append(r.Granted, spec.LockState{Session: id, Mode: spec.PR, Want: spec.PR,
					Permits: permits, Token: spec.Token(i + 1)})
			} else {
				r.Waiting = append(r.Waiting, spec.LockState{Session: id, Mode: spec.PR, Want: spec.PR,
					Permits: permits, Request: 1})
			}
		}
		checkWaitGraph(t, &spec.State{Resources: []spec.ResourceState{r}})
	})
}

// TestWaitGraphBounds: a queue of exclusive requests, each waiting for
// every one ahead, is cut at the limit of waiters or of edges, whole
// waiters at a time, and says so.
func TestWaitGraphBounds(t *testing.T) {
	r := spec.ResourceState{Name: "x", Granted: []spec.LockState{{Session: spec.NamedSession("h"), Mode: spec.EX, Want: spec.EX, Token: 1}}}
	for i := range 30 {
		s := spec.NamedSession(string(rune('a' + i)))
		r.Waiting = append(r.Waiting, spec.LockState{Session: s, Mode: spec.EX, Want: spec.EX, Request: 1})
	}
	g := buildWaitGraph([]spec.ResourceState{r}, 0, 3)
	if !g.truncated || len(g.waiters) != 3 || len(g.edges) != 1+2+3 {
		t.Fatalf("limit 3: %d waiters, %d edges, truncated %v", len(g.waiters), len(g.edges), g.truncated)
	}
	// limit 10: up to 100 edges; waiter i has i+1 (the holder and i ahead)
	g = buildWaitGraph([]spec.ResourceState{r}, 0, 10)
	if !g.truncated || len(g.edges) > 100 || len(g.waiters) != 10 {
		t.Fatalf("limit 10: %d waiters, %d edges, truncated %v", len(g.waiters), len(g.edges), g.truncated)
	}
	g = buildWaitGraph([]spec.ResourceState{r}, 0, 30)
	if !g.truncated || len(g.edges) > 300 || len(g.waiters) != 24 { // 24*25/2 = 300 edges; a 25th would make 325
		t.Fatalf("limit 30: %d waiters, %d edges, truncated %v", len(g.waiters), len(g.edges), g.truncated)
	}
	g = buildWaitGraph([]spec.ResourceState{r}, 0, 1000)
	if g.truncated || len(g.waiters) != 30 || len(g.holders) != 1 {
		t.Fatalf("limit 1000: %d waiters, %d holders, truncated %v", len(g.waiters), len(g.holders), g.truncated)
	}
}

// TestWaitGraphReasons: one resource with a conversion and a wait queue;
// each edge with its reason and modes, as spec/graph.go's rules say.
// h1 holds PR and converts to EX; h2 holds PR; then w1 EX, w2 PR, w3 PR wait.
func TestWaitGraphReasons(t *testing.T) {
	h1, h2 := spec.NamedSession("h1"), spec.NamedSession("h2")
	w1, w2, w3 := spec.NamedSession("w1"), spec.NamedSession("w2"), spec.NamedSession("w3")
	r := spec.ResourceState{Name: "x",
		Granted: []spec.LockState{
			{Session: h1, Mode: spec.PR, Want: spec.EX, Token: 1, Request: 2},
			{Session: h2, Mode: spec.PR, Want: spec.PR, Token: 2}},
		Converting: []spec.SessionID{h1},
		Waiting: []spec.LockState{{Session: w1, Mode: spec.EX, Want: spec.EX, Request: 1, QueuedAt: spec.Time(time.Second)},
			{Session: w2, Mode: spec.PR, Want: spec.PR, Request: 1}, {Session: w3, Mode: spec.PR, Want: spec.PR, Request: 1}}}
	g := buildWaitGraph([]spec.ResourceState{r}, spec.Time(3*time.Second), 100)
	type e struct {
		from, to string
		reason   pb.WaitReason
		blocking spec.Mode
	}
	name := map[spec.SessionID]string{h1: "h1", h2: "h2", w1: "w1", w2: "w2", w3: "w3"}
	var got []e
	for _, x := range g.edges {
		got = append(got, e{name[x.waiter], name[x.blocker], x.reason, x.blocking})
	}
	holder, ahead := pb.WaitReason_WAIT_REASON_HOLDER, pb.WaitReason_WAIT_REASON_AHEAD
	want := []e{
		{"h1", "h2", holder, spec.PR}, // the conversion to EX waits for the other PR
		// w1 (EX) conflicts with both holders, and h1's EX ahead conflicts with it;
		// h1 is named once, as a holder
		{"w1", "h1", holder, spec.PR}, {"w1", "h2", holder, spec.PR},
		// w2 (PR) is compatible with the holders' PR, but EX is wanted ahead of
		// it: it waits for them through w1 and h1; and for w1, whose EX conflicts
		{"w2", "h1", holder, spec.PR}, {"w2", "h2", holder, spec.PR}, {"w2", "w1", ahead, spec.EX},
		// w3 as w2: w2 ahead wants PR, compatible with w3's: not an edge
		{"w3", "h1", holder, spec.PR}, {"w3", "h2", holder, spec.PR}, {"w3", "w1", ahead, spec.EX},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("edges\n got %v\nwant %v", got, want)
	}
	st := spec.State{Resources: []spec.ResourceState{r}}
	w := spec.WaitsFor(&st)
	for from, tos := range w {
		for _, to := range tos {
			if !slices.ContainsFunc(got, func(x e) bool { return x.from == name[from] && x.to == name[to] }) {
				t.Fatalf("spec has %s -> %s, the graph does not", name[from], name[to])
			}
		}
	}
	if len(g.waiters) != 4 || !g.waiters[0].conversion || g.waiters[0].held != spec.PR || g.waiters[0].want != spec.EX {
		t.Fatalf("waiters %+v", g.waiters)
	}
	if len(g.holders) != 2 {
		t.Fatalf("holders %+v", g.holders)
	}
	if w := g.waiters[1]; !w.known || w.waited != 2*time.Second || g.waiters[2].known {
		t.Fatalf("w1 queued at 1s waited %v (known %v) at 3s; w2, queued at no known instant, known %v",
			w.waited, w.known, g.waiters[2].known)
	}
	if d := longestWait([]spec.ResourceState{r}, spec.Time(3*time.Second)); d != 2*time.Second {
		t.Fatalf("longest wait %v, want 2s", d)
	}
}

// TestWaitGraphOnAMember: a member that does not lead refuses WaitGraph
// naming the leader (the client moves there) and reports no wait of its
// own, even when its applied state has queues; a member that leads (a
// group of one) answers through a linearizable read.
func TestWaitGraphOnAMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alone := startMember(t, []uint64{1, 2, 3})
	_, err := alone.WaitGraph(ctx, &pb.WaitGraphRequest{})
	if _, notLeader := wire.LeaderHint(err); !notLeader {
		t.Fatalf("a member without a leader answered WaitGraph: %v", err)
	}
	alone.metrics.queued.Store(1) // as if it had applied a queue
	if v := alone.longestWaitSeconds(); v != 0 {
		t.Fatalf("a follower reports a longest wait of %v", v)
	}

	one := startMember(t, []uint64{1})
	for {
		g, err := one.WaitGraph(ctx, &pb.WaitGraphRequest{})
		if err == nil {
			if len(g.Waiters) != 0 || g.Truncated {
				t.Fatalf("an empty group's graph: %v", g)
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("a group of one never answered WaitGraph: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
