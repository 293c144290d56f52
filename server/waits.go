package server

import (
	"context"
	"math"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
)

// Who blocks whom: the wait-for graph of spec/graph.go, across resources,
// as an operator needs it: each queued request, the sessions it waits for
// on its resource and why, and the locks held that the edges name. The
// edges are exactly spec.WaitsFor's, each with its resource and reason.

// WaitGraph returns the wait-for graph of the resources with a queue, at
// most limit queued requests of it.
func (s *Server) WaitGraph(ctx context.Context, req *pb.WaitGraphRequest) (*pb.WaitGraphResponse, error) {
	limit := int(req.Limit)
	if limit == 0 {
		limit = 100
	}
	if limit > s.opts.ListLimitMax {
		return nil, invalid(badField("limit: %d exceeds ListLimitMax %d", limit, s.opts.ListLimitMax))
	}
	queued, now, err := s.queued(ctx)
	if err != nil {
		return nil, inspectError(err)
	}
	g := buildWaitGraph(queued, now, limit)
	return s.tags.waitGraphToWire(&g), nil
}

// queued reads the resources with a queued request, in name order, and the
// core's time, between turns (on a member, through a linearizable read).
// Only the copy is made on the loop; the graph is built off it.
func (s *Server) queued(ctx context.Context) ([]spec.ResourceState, spec.Time, error) {
	var rs []spec.ResourceState
	var now spec.Time
	err := s.loop.Inspect(ctx, func(c *engine.Core) {
		rs, now = c.QueuedResources(), s.reads.read(c.Now())
	})
	return rs, now, err
}

// waitedFor is how long the queued request l (a waiting lock, or a lock
// with a queued conversion) has waited at now, and whether the node can
// tell: a request queued before the state recorded QueuedAt (restored from
// an older record) reads 0 there, and is unknown. It is the one place that
// knows where a queue's instant is kept.
func waitedFor(now spec.Time, l *spec.LockState) (time.Duration, bool) {
	if l.Request == 0 || l.QueuedAt == 0 {
		return 0, false
	}
	return max(0, now.Sub(l.QueuedAt)), true
}

// waitGraph is the wait-for graph of some resources, by session id (tags
// are made at the edge, waitGraphToWire).
type waitGraph struct {
	waiters   []waiter
	edges     []waitEdge
	holders   []holding
	truncated bool
}

// waiter is a queued request in a resource's serving order.
type waiter struct {
	session    spec.SessionID
	resource   string
	want       spec.Mode
	held       spec.Mode // a conversion's granted mode
	permits    uint32    // of a semaphore, wanted; 0 on a lock resource
	conversion bool
	waited     time.Duration
	known      bool // waited is known
}

// waitEdge: waiter's request on resource waits for blocker.
type waitEdge struct {
	waiter, blocker spec.SessionID
	resource        string
	reason          pb.WaitReason
	wanted          spec.Mode // the waiter's
	blocking        spec.Mode // the blocker's granted mode (HOLDER) or wanted mode (AHEAD)
	permits         uint32    // on a semaphore, the blocker's permits, held or wanted
}

// holding is a granted lock that an edge names.
type holding struct {
	session  spec.SessionID
	resource string
	mode     spec.Mode
	permits  uint32 // of a semaphore
	token    spec.Token
}

// waitEdgesPerWaiter bounds the edges of an answer: limit waiters may have
// at most this many edges each on average. A queue of n exclusive requests
// has n(n-1)/2 edges (each waits for every one ahead), so the waiter count
// alone would not bound the answer.
const waitEdgesPerWaiter = 10

// buildWaitGraph computes the graph of resources (in name order) at now:
// every queued request, resource by resource in serving order, until
// limit of them (or limit*waitEdgesPerWaiter edges) are listed. A request
// is listed with all its edges or not at all, and truncated says some were
// left out. O(queue^2 + queue*holders) for each resource.
func buildWaitGraph(resources []spec.ResourceState, now spec.Time, limit int) waitGraph {
	var g waitGraph
	edgesMax := limit * waitEdgesPerWaiter
	for ri := range resources {
		r := &resources[ri]
		queue := servingOrder(r, now)
		named := map[spec.SessionID]bool{} // holders of r already in g.holders
		for i := range queue {
			edges := waitsOn(r, queue[:i+1])
			if len(g.waiters) == limit || len(g.edges)+len(edges) > edgesMax {
				g.truncated = true
				return g
			}
			g.waiters = append(g.waiters, queue[i])
			g.edges = append(g.edges, edges...)
			for _, e := range edges {
				if e.reason == pb.WaitReason_WAIT_REASON_HOLDER && !named[e.blocker] {
					named[e.blocker] = true
					g.holders = append(g.holders, holderOf(r, e.blocker))
				}
			}
		}
	}
	return g
}

// servingOrder lists r's queued requests in the order they are served (the
// conversion queue, then the wait queue), as spec/graph.go does, with how
// long each has waited at now.
func servingOrder(r *spec.ResourceState, now spec.Time) []waiter {
	var q []waiter
	add := func(l *spec.LockState, conversion bool) {
		w := waiter{session: l.Session, resource: r.Name, want: l.Mode, permits: l.Permits, conversion: conversion}
		if conversion {
			w.want, w.held = l.Want, l.Mode
		}
		w.waited, w.known = waitedFor(now, l)
		q = append(q, w)
	}
	for _, id := range r.Converting {
		for i := range r.Granted {
			if r.Granted[i].Session == id {
				add(&r.Granted[i], true)
			}
		}
	}
	for i := range r.Waiting {
		add(&r.Waiting[i], false)
	}
	return q
}

// modeSet is a set of modes, a bit each.
type modeSet uint8

func (m modeSet) conflicts(mode spec.Mode) bool {
	for x := spec.Mode(0); x < spec.ModeCount; x++ {
		if m&(1<<x) != 0 && !spec.Compatible(x, mode) {
			return true
		}
	}
	return false
}

// waitsOn returns the edges out of the last request p of prefix (a prefix
// of r's serving order), by the two rules of spec/graph.go:
//   - HOLDER: a holder whose granted lock conflicts with a request at or
//     ahead of p other than its own;
//   - AHEAD: a request ahead of p that conflicts with a request after it,
//     up to p.
//
// A session that is both is named once, as the holder. Two locks conflict
// by their modes, or on a semaphore when their permits add up past its
// limit. O(prefix + holders).
func waitsOn(r *spec.ResourceState, prefix []waiter) []waitEdge {
	if r.Limit != 0 {
		return semaphoreWaitsOn(r, prefix)
	}
	p := prefix[len(prefix)-1]
	var out []waitEdge
	var wanted [spec.ModeCount]int // modes wanted at or ahead of p
	own := map[spec.SessionID]spec.Mode{}
	for _, x := range prefix {
		wanted[x.want]++
		own[x.session] = x.want // a session has one request on a resource
	}
	holders := map[spec.SessionID]bool{}
	for _, h := range r.Granted {
		for m := spec.Mode(0); m < spec.ModeCount; m++ {
			n := wanted[m]
			if w, ok := own[h.Session]; ok && w == m {
				n--
			}
			if n > 0 && !spec.Compatible(h.Mode, m) {
				out = append(out, holderEdge(r, p, &h))
				holders[h.Session] = true
				break
			}
		}
	}
	// Walk back from p keeping the modes wanted behind each request.
	behind := modeSet(1) << p.want
	for j := len(prefix) - 2; j >= 0; j-- {
		e := prefix[j]
		if behind.conflicts(e.want) && !holders[e.session] {
			out = append(out, aheadEdge(r, p, &e))
		}
		behind |= 1 << e.want
	}
	return out
}

// semaphoreWaitsOn is waitsOn on a semaphore: a lock conflicts with a
// request when their permits add up past the limit, so what matters of a
// set of requests is the most permits one of them wants.
func semaphoreWaitsOn(r *spec.ResourceState, prefix []waiter) []waitEdge {
	p := prefix[len(prefix)-1]
	var out []waitEdge
	// The two largest requests at or ahead of p: they are of two sessions
	// (a session has one request on a resource), so for any holder one of
	// them is not its own.
	var first, second *waiter
	for i := range prefix {
		x := &prefix[i]
		switch {
		case first == nil || x.permits > first.permits:
			first, second = x, first
		case second == nil || x.permits > second.permits:
			second = x
		}
	}
	over := func(a, b uint32) bool { return uint64(a)+uint64(b) > uint64(r.Limit) }
	holders := map[spec.SessionID]bool{}
	for _, h := range r.Granted {
		most := first
		if most.session == h.Session {
			most = second
		}
		if most != nil && over(h.Permits, most.permits) {
			out = append(out, holderEdge(r, p, &h))
			holders[h.Session] = true
		}
	}
	behind := p.permits // the most permits wanted behind each request, up to p
	for j := len(prefix) - 2; j >= 0; j-- {
		e := prefix[j]
		if over(e.permits, behind) && !holders[e.session] {
			out = append(out, aheadEdge(r, p, &e))
		}
		behind = max(behind, e.permits)
	}
	return out
}

func holderEdge(r *spec.ResourceState, p waiter, h *spec.LockState) waitEdge {
	return waitEdge{waiter: p.session, blocker: h.Session, resource: r.Name,
		reason: pb.WaitReason_WAIT_REASON_HOLDER, wanted: p.want, blocking: h.Mode, permits: h.Permits}
}

func aheadEdge(r *spec.ResourceState, p waiter, e *waiter) waitEdge {
	return waitEdge{waiter: p.session, blocker: e.session, resource: r.Name,
		reason: pb.WaitReason_WAIT_REASON_AHEAD, wanted: p.want, blocking: e.want, permits: e.permits}
}

// holderOf is session's granted lock on r.
func holderOf(r *spec.ResourceState, session spec.SessionID) holding {
	for _, l := range r.Granted {
		if l.Session == session {
			return holding{session: session, resource: r.Name, mode: l.Mode, permits: l.Permits, token: l.Token}
		}
	}
	return holding{session: session, resource: r.Name}
}

// longestWait is the longest any request queued on resources has waited
// at now, as far as the node can tell (0: none waits, or it cannot tell).
func longestWait(resources []spec.ResourceState, now spec.Time) time.Duration {
	var longest time.Duration
	for ri := range resources {
		for _, w := range servingOrder(&resources[ri], now) {
			if w.known {
				longest = max(longest, w.waited)
			}
		}
	}
	return longest
}

// waitGraphToWire shows g with sessions by tag.
func (t *tagger) waitGraphToWire(g *waitGraph) *pb.WaitGraphResponse {
	w := &pb.WaitGraphResponse{Truncated: g.truncated}
	for _, x := range g.waiters {
		pw := &pb.Waiter{SessionTag: t.tag(x.session), Resource: []byte(x.resource), Mode: wire.ModeToWire(x.want),
			Conversion: x.conversion, Permits: x.permits}
		if x.conversion {
			pw.Held = wire.ModeToWire(x.held)
		}
		if x.known {
			pw.Waited = wire.DurationToWire(x.waited)
		}
		w.Waiters = append(w.Waiters, pw)
	}
	for _, e := range g.edges {
		w.Edges = append(w.Edges, &pb.WaitEdge{WaiterTag: t.tag(e.waiter), BlockerTag: t.tag(e.blocker),
			Resource: []byte(e.resource), Reason: e.reason, Wanted: wire.ModeToWire(e.wanted),
			Blocking: wire.ModeToWire(e.blocking), Permits: e.permits})
	}
	for _, h := range g.holders {
		w.Holders = append(w.Holders, &pb.Holding{SessionTag: t.tag(h.session), Resource: []byte(h.resource),
			Mode: wire.ModeToWire(h.mode), Token: uint64(h.token), Permits: h.permits})
	}
	return w
}

// waitScrapeMax bounds the read a scrape makes for the longest wait.
const waitScrapeMax = time.Second

// longestWaitSeconds is the bouncer_longest_wait_seconds gauge. It is read
// at scrape, not kept per turn: finding the longest wait walks every
// queued request, which a turn must not pay for, while a scrape comes
// every few seconds at most. When the latest durable turn left no request
// queued (an O(1) count the loop stores each turn), it answers 0 without
// reading the core at all. Else it reads the core between turns (on a
// member, a linearizable read on the leader); a member that does not lead
// answers 0 (the leader reports the group's waits), and a read that fails
// or takes longer than waitScrapeMax answers NaN: unknown.
func (s *Server) longestWaitSeconds() float64 {
	if s.metrics.queued.Load() == 0 {
		return 0
	}
	if s.leading != nil && s.leading() != nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitScrapeMax)
	defer cancel()
	queued, now, err := s.queued(ctx)
	if err != nil {
		return math.NaN()
	}
	return longestWait(queued, now).Seconds()
}
