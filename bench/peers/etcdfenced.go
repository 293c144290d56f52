package peers

// The correctness run's etcd client: concurrency.Mutex on a session whose
// lease the client also renews itself, so that it knows when each renewal
// was sent (the lease runs out no earlier than that plus its TTL); the
// token is the lock key's create revision.

import (
	"context"
	"errors"
	"log"
	"strings"
	"sync"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

type etcdFenced struct {
	c    *clientv3.Client
	rec  *Recorder
	ttl  time.Duration
	n    uint64 // sessions opened, for history ids
	sess *etcdSess
}

// logf notes what the client saw in its log (the client's standard error),
// times since the run's epoch.
func (e *etcdFenced) logf(format string, args ...any) {
	for i, a := range args {
		if t, ok := a.(time.Time); ok {
			args[i] = t.Sub(e.rec.Epoch).Round(time.Millisecond)
		}
	}
	log.Printf(format, args...)
}

// etcdSess is one lease and its concurrency.Session.
type etcdSess struct {
	s    *concurrency.Session
	id   spec.SessionID
	ttl  time.Duration
	used []string
	stop context.CancelFunc

	mu      sync.Mutex
	renewed time.Time // send time of the last answered renewal
	logf    func(format string, args ...any)
	lostAt  time.Time // when the server said the lease was gone
}

func dialEtcdFenced(ctx context.Context, addr string, rec *Recorder, ttl time.Duration) (lockClient, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(addr, ","), DialTimeout: 2 * time.Second,
		Context: context.Background(), Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	return &etcdFenced{c: c, rec: rec, ttl: ttl}, nil
}

func (e *etcdFenced) session(ctx context.Context) (*etcdSess, error) {
	if s := e.sess; s != nil {
		if _, lost := s.deadline(); !lost {
			return s, nil
		}
		e.abandon()
	}
	call := time.Now()
	gctx, cancel := context.WithTimeout(ctx, e.ttl)
	lease, err := e.c.Grant(gctx, int64(e.ttl/time.Second))
	cancel()
	if err != nil {
		return nil, err
	}
	cs, err := concurrency.NewSession(e.c, concurrency.WithLease(lease.ID), concurrency.WithContext(context.Background()))
	if err != nil {
		return nil, err
	}
	e.n++
	kctx, stop := context.WithCancel(context.Background())
	s := &etcdSess{s: cs, id: SessionOf(e.rec.Client, uint64(lease.ID), e.n), ttl: time.Duration(lease.TTL) * time.Second,
		stop: stop, renewed: call, logf: e.logf}
	go s.renew(kctx, e.c, lease.ID)
	e.sess = s
	return s, nil
}

// renew renews the lease every quarter TTL, noting each answered renewal's
// send time, until the server says the lease is gone or ctx ends.
func (s *etcdSess) renew(ctx context.Context, c *clientv3.Client, id clientv3.LeaseID) {
	t := time.NewTicker(s.ttl / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sent := time.Now()
		rctx, cancel := context.WithTimeout(ctx, s.ttl/2)
		resp, err := c.KeepAliveOnce(rctx, id)
		cancel()
		if s.logf != nil {
			var member uint64
			var ttl int64
			if resp != nil {
				ttl = resp.TTL
				if resp.ResponseHeader != nil {
					member = resp.ResponseHeader.MemberId
				}
			}
			s.logf("renew lease %x sent at %v, answered at %v by member %x: ttl %d, err %v", int64(id), sent, time.Now(), member, ttl, err)
		}
		s.mu.Lock()
		switch {
		case err == nil:
			s.renewed = sent
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			s.lostAt = time.Now()
		}
		s.mu.Unlock()
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return
		}
	}
}

// deadline is the client's count of the lease, and whether it knows the
// lease gone (the server said so, or the count ran out).
func (s *etcdSess) deadline() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.renewed.Add(s.ttl)
	return d, !s.lostAt.IsZero() || !time.Now().Before(d)
}

// abandon ends the current session: revoked if the server answers
// (recorded as a close), else left to expire (recorded as an expiry after
// the client's count of the lease ran out).
func (e *etcdFenced) abandon() {
	s := e.sess
	e.sess = nil
	s.stop()
	s.s.Orphan() // its own keepalives end here
	d, lost := s.deadline()
	s.mu.Lock()
	lostAt := s.lostAt
	s.mu.Unlock()
	e.logf("abandon lease %x: deadline %v, lost %v (server said so at %v)", int64(s.s.Lease()), d, lost, lostAt)
	if !lost {
		call := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := e.c.Revoke(ctx, s.s.Lease())
		cancel()
		e.logf("revoke lease %x: %v", int64(s.s.Lease()), err)
		if err == nil {
			e.rec.Close(s.id, s.used, call, time.Now(), Refused(spec.OK))
			return
		}
		d, _ = s.deadline()
	}
	e.rec.Expire(s.id, s.used, d, lostAt)
}

func (e *etcdFenced) Acquire(ctx context.Context, resource string, wait time.Duration) (*grant, error) {
	s, err := e.session(ctx)
	if err != nil {
		return nil, err
	}
	if !contains(s.used, resource) {
		s.used = append(s.used, resource)
	}
	m := concurrency.NewMutex(s.s, etcdPrefix+"fenced/"+resource)
	call := time.Now()
	lctx, cancel := context.WithTimeout(ctx, wait)
	err = m.Lock(lctx)
	cancel()
	if err == nil {
		gctx, cancel := context.WithTimeout(ctx, e.ttl)
		var resp *clientv3.GetResponse
		resp, err = e.c.Get(gctx, m.Key())
		cancel()
		if err == nil && len(resp.Kvs) == 0 {
			err = concurrency.ErrSessionExpired
		}
		if err == nil {
			ret := time.Now()
			token := uint64(resp.Kvs[0].CreateRevision)
			e.logf("granted %s at %v: token %d, lease %x", resource, ret, token, int64(s.s.Lease()))
			e.rec.Acquire(s.id, resource, wait, call, ret, Granted(token))
			return &grant{resource: resource, token: token, at: ret, lock: m}, nil
		}
	}
	ret := time.Now()
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil && ret.Sub(call) >= wait {
		// Lock timed out. Its key may already have owned the lock (the
		// keys before it gone, the watch that would have said so slow or
		// served by a member cut off from the leader), and Lock deletes it
		// before it returns, ignoring whether the delete took: to the
		// service that is a grant and a release, neither of them answered.
		e.rec.Acquire(s.id, resource, wait, call, ret, Unknown)
		e.rec.Release(s.id, resource, call.Add(wait), ret, Unknown)
		return nil, err
	}
	e.rec.Acquire(s.id, resource, wait, call, ret, Unknown)
	e.abandon() // its key may be left behind: end the lease with it
	return nil, err
}

func (e *etcdFenced) Deadline(g *grant) time.Time {
	if e.sess == nil {
		return time.Time{}
	}
	d, lost := e.sess.deadline()
	if lost {
		return time.Time{}
	}
	return d
}

func (e *etcdFenced) Release(ctx context.Context, g *grant) {
	s := e.sess
	if s == nil {
		return
	}
	if _, lost := s.deadline(); lost {
		e.abandon() // the lock went with the lease
		return
	}
	call := time.Now()
	uctx, cancel := context.WithTimeout(ctx, e.ttl)
	err := g.lock.(*concurrency.Mutex).Unlock(uctx)
	cancel()
	if err != nil {
		e.rec.Release(s.id, g.resource, call, time.Now(), Unknown)
		e.abandon()
		return
	}
	e.rec.Release(s.id, g.resource, call, time.Now(), Refused(spec.OK))
}

func (e *etcdFenced) Close() {
	if e.sess != nil {
		e.abandon()
	}
	_ = e.c.Close()
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Holds reads the lock's key (a linearizable read): held while it exists
// with the grant's create revision under the session's lease.
func (e *etcdFenced) Holds(ctx context.Context, g *grant) (bool, error) {
	if e.sess == nil {
		return false, errLost
	}
	m := g.lock.(*concurrency.Mutex)
	resp, err := e.c.Get(ctx, m.Key())
	if err != nil {
		return false, err
	}
	for _, kv := range resp.Kvs {
		if uint64(kv.CreateRevision) == g.token && kv.Lease == int64(e.sess.s.Lease()) {
			return true, nil
		}
	}
	e.logf("hold of %s (token %d, lease %x) not held at revision %d by member %x: %d keys", g.resource, g.token,
		int64(e.sess.s.Lease()), resp.Header.Revision, resp.Header.MemberId, len(resp.Kvs))
	return false, nil
}
