package server

import (
	"context"
	"errors"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/cluster"
	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Describe returns a resource's state.
func (s *Server) Describe(ctx context.Context, req *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	if bad := name("resource", req.Resource, &s.opts.Limits); bad != nil {
		return nil, invalid(bad)
	}
	var st spec.ResourceState
	var ok bool
	var now spec.Time
	err := s.loop.Inspect(ctx, func(c *engine.Core) {
		st, ok = c.Resource(string(req.Resource))
		now = s.reads.read(c.Now())
	})
	if err != nil {
		return nil, inspectError(err)
	}
	resp := &pb.DescribeResponse{Exists: ok}
	if ok {
		resp.Resource = s.tags.resourceToWire(st, now)
	}
	return resp, nil
}

// List returns a page of resources in use.
func (s *Server) List(ctx context.Context, req *pb.ListRequest) (*pb.ListResponse, error) {
	limit := int(req.Limit)
	if limit == 0 {
		limit = 100
	}
	if limit > s.opts.ListLimitMax {
		return nil, invalid(badField("limit: %d exceeds ListLimitMax %d", limit, s.opts.ListLimitMax))
	}
	if bad := name("prefix", req.Prefix, &s.opts.Limits); bad != nil {
		return nil, invalid(bad)
	}
	if bad := name("start_after", req.StartAfter, &s.opts.Limits); bad != nil {
		return nil, invalid(bad)
	}
	var states []spec.ResourceState
	var now spec.Time
	more := false
	err := s.loop.Inspect(ctx, func(c *engine.Core) {
		names := c.ResourceNames(string(req.Prefix), string(req.StartAfter), limit+1)
		more = len(names) > limit
		for _, n := range names[:min(limit, len(names))] {
			st, _ := c.Resource(n)
			states = append(states, st)
		}
		now = s.reads.read(c.Now())
	})
	if err != nil {
		return nil, inspectError(err)
	}
	resp := &pb.ListResponse{}
	for _, st := range states {
		resp.Resources = append(resp.Resources, s.tags.resourceToWire(st, now))
	}
	if more {
		resp.Next = []byte(states[len(states)-1].Name)
	}
	return resp, nil
}

func inspectError(err error) error {
	var nl *cluster.NotLeader
	if errors.As(err, &nl) {
		return wire.NotLeaderError(nl.Addr)
	}
	if errors.Is(err, cluster.ErrReadTimeout) {
		return status.Error(codes.Unavailable, err.Error())
	}
	if ctxErr := status.FromContextError(err); ctxErr.Code() != codes.Unknown {
		return ctxErr.Err()
	}
	return errStopped
}

// watcher holds the latest state of a watched resource not yet sent.
type watcher struct {
	wake   chan struct{} // 1-buffered: something new to send
	last   spec.ResourceState
	exists bool
	fresh  bool // last has not been sent
	sent   bool // something was sent at least once
}

// offer records a state if it differs from the last one (loop goroutine,
// under s.mu).
func (w *watcher) offer(st spec.ResourceState, exists bool) {
	if w.sent && exists == w.exists && st.Equal(&w.last) {
		return
	}
	w.last, w.exists, w.fresh, w.sent = st, exists, true, true
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Watch streams a resource's state now and after each change. A slow
// reader skips intermediate states: it always gets the latest.
func (s *Server) Watch(req *pb.WatchRequest, stream pb.Locks_WatchServer) error {
	if bad := name("resource", req.Resource, &s.opts.Limits); bad != nil {
		return invalid(bad)
	}
	resource := string(req.Resource)
	w := &watcher{wake: make(chan struct{}, 1)}
	s.mu.Lock()
	added := s.watchers.add(resource, w, s.opts.WatchersMax)
	s.mu.Unlock()
	if !added {
		return wire.StatusError(spec.Refuse(spec.LimitExceeded, "watch: the node's WatchersMax streams are open"))
	}
	defer func() {
		s.mu.Lock()
		s.watchers.remove(resource, w)
		s.mu.Unlock()
	}()
	// The current state, then every change.
	err := s.loop.Inspect(stream.Context(), func(c *engine.Core) {
		st, ok := c.Resource(resource)
		s.mu.Lock()
		w.offer(st, ok)
		s.mu.Unlock()
	})
	if err != nil {
		return inspectError(err)
	}
	for {
		select {
		case <-w.wake:
		case <-stream.Context().Done():
			return nil
		case <-s.loop.Done():
			return errStopped
		case <-s.draining:
			return errStopped
		}
		s.mu.Lock()
		st, exists, fresh := w.last, w.exists, w.fresh
		w.fresh = false
		s.mu.Unlock()
		if !fresh {
			continue
		}
		resp := &pb.WatchResponse{Exists: exists}
		if exists {
			resp.Resource = s.tags.resourceToWire(st, s.reads.read(spec.Time(s.now.Load())))
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// subscriber is one Events stream.
type subscriber struct {
	ch     chan *pb.Event
	behind chan struct{} // closed when the buffer overflowed
}

// send queues an event, or ends a subscriber that fell behind (under s.mu).
func (sub *subscriber) send(e *pb.Event) {
	select {
	case sub.ch <- e:
	default:
		select {
		case <-sub.behind:
		default:
			close(sub.behind)
		}
	}
}

// Events streams a session's events.
func (s *Server) Events(req *pb.EventsRequest, stream pb.Locks_EventsServer) error {
	id, err := wire.SessionFromWire(req.SessionId)
	if err != nil {
		return invalid(wireRefusal(err))
	}
	sub := &subscriber{ch: make(chan *pb.Event, s.opts.EventBufferMax), behind: make(chan struct{})}
	s.mu.Lock()
	added := s.subs.add(id, sub, s.opts.SubscribersMax)
	s.mu.Unlock()
	if !added {
		return wire.StatusError(spec.Refuse(spec.LimitExceeded, "events: the node's SubscribersMax streams are open"))
	}
	if err := stream.Send(&pb.Event{Kind: &pb.Event_Subscribed{Subscribed: &pb.Subscribed{}}}); err != nil {
		s.unsubscribe(id, sub)
		return err
	}
	defer s.unsubscribe(id, sub)
	for {
		select {
		case e := <-sub.ch:
			if err := stream.Send(e); err != nil {
				return err
			}
		case <-sub.behind:
			return status.Error(codes.ResourceExhausted, "events: the stream fell behind; reconnect")
		case <-stream.Context().Done():
			return nil
		case <-s.loop.Done():
			return errStopped
		case <-s.draining:
			return errStopped
		}
	}
}

func (s *Server) unsubscribe(id spec.SessionID, sub *subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs.remove(id, sub)
}

// streamSet holds the open streams of one kind by key (a session, a
// resource), at most a bound of them in all. Server.mu guards it.
type streamSet[K, V comparable] struct {
	byKey map[K]map[V]struct{}
	n     int
}

// add adds v under k, unless max streams are open already.
func (r *streamSet[K, V]) add(k K, v V, max int) bool {
	if r.n >= max {
		return false
	}
	if r.byKey == nil {
		r.byKey = map[K]map[V]struct{}{}
	}
	if r.byKey[k] == nil {
		r.byKey[k] = map[V]struct{}{}
	}
	r.byKey[k][v] = struct{}{}
	r.n++
	return true
}

// remove removes v, added under k.
func (r *streamSet[K, V]) remove(k K, v V) {
	delete(r.byKey[k], v)
	if len(r.byKey[k]) == 0 {
		delete(r.byKey, k)
	}
	r.n--
}
