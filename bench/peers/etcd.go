package peers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	recipe "go.etcd.io/etcd/client/v3/experimental/recipes"
	"go.uber.org/zap"
)

// DialEtcd opens a client and a session (a lease, kept alive) on an etcd
// server, or on a cluster: addr may name every member, comma-separated
// (clientv3 takes several endpoints). Exclusive locks are concurrency.Mutex (TryLock for the try-lock
// workload); shared locks are the client's recipe.RWMutex, etcd's own
// reader-writer lock from its experimental recipes.
func DialEtcd(ctx context.Context, addr string) (Client, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(addr, ","), DialTimeout: 5 * time.Second,
		Context: context.Background(), Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	s, err := concurrency.NewSession(c, concurrency.WithTTL(int(sessionTTL/time.Second)),
		concurrency.WithContext(context.Background()))
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("etcd: open session: %w", err)
	}
	return &etcdClient{c: c, s: s}, nil
}

type etcdClient struct {
	c *clientv3.Client
	s *concurrency.Session
}

const etcdPrefix = "/bench/"

func (e *etcdClient) Lock(ctx context.Context, resource string, mode Mode) (Held, error) {
	if mode == Shared {
		// recipe.RWMutex takes no context: it waits on the client's.
		rw := recipe.NewRWMutex(e.s, etcdPrefix+"rw/"+resource)
		if err := rw.RLock(); err != nil {
			return nil, err
		}
		return etcdRLocked{rw}, nil
	}
	if strings.HasPrefix(resource, rwPrefix) { // writers must exclude the RWMutex's readers
		rw := recipe.NewRWMutex(e.s, etcdPrefix+"rw/"+resource)
		if err := rw.Lock(); err != nil {
			return nil, err
		}
		return etcdWLocked{rw}, nil
	}
	m := concurrency.NewMutex(e.s, etcdPrefix+resource)
	if err := m.Lock(ctx); err != nil {
		return nil, err
	}
	return etcdMutex{m}, nil
}

func (e *etcdClient) TryLock(ctx context.Context, resource string) (Held, error) {
	m := concurrency.NewMutex(e.s, etcdPrefix+resource)
	err := m.TryLock(ctx)
	if errors.Is(err, concurrency.ErrLocked) {
		return nil, ErrBusy
	}
	if err != nil {
		return nil, err
	}
	return etcdMutex{m}, nil
}

func (e *etcdClient) Close() error {
	err := e.s.Close()
	if cerr := e.c.Close(); err == nil {
		err = cerr
	}
	return err
}

type etcdMutex struct{ m *concurrency.Mutex }

func (h etcdMutex) Unlock(ctx context.Context) error { return h.m.Unlock(ctx) }

type etcdRLocked struct{ rw *recipe.RWMutex }

func (h etcdRLocked) Unlock(context.Context) error { return h.rw.RUnlock() }

type etcdWLocked struct{ rw *recipe.RWMutex }

func (h etcdWLocked) Unlock(context.Context) error { return h.rw.Unlock() }

// etcdStatuses asks every member of an etcd cluster for its status (the
// maintenance API), by index in addrs: nil for a member that did not answer.
func etcdStatuses(ctx context.Context, addrs []string) ([]*clientv3.StatusResponse, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: addrs, DialTimeout: 2 * time.Second,
		Context: ctx, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd status: %w", err)
	}
	defer c.Close()
	sts := make([]*clientv3.StatusResponse, len(addrs))
	for i, a := range addrs {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		sts[i], _ = c.Status(sctx, a)
		cancel()
	}
	return sts, nil
}

// etcdStatus returns the leader's index in addrs, and whether the cluster
// is whole: every member answers, names the same leader and has applied
// within groupLagMax entries of the highest raft index.
func etcdStatus(ctx context.Context, addrs []string) (int, bool, error) {
	sts, err := etcdStatuses(ctx, addrs)
	if err != nil {
		return -1, false, err
	}
	lead, whole := -1, true
	var leaderID, top uint64
	applied := make([]uint64, len(addrs))
	for i, st := range sts {
		if st == nil {
			whole = false
			continue
		}
		switch {
		case st.Leader == 0 || leaderID != 0 && st.Leader != leaderID:
			whole = false
		default:
			leaderID = st.Leader
		}
		if st.Header != nil && st.Header.MemberId == st.Leader && st.Leader != 0 {
			lead = i
		}
		top = max(top, st.RaftIndex)
		applied[i] = st.RaftAppliedIndex
	}
	if lead < 0 {
		return -1, false, errors.New("etcd status: no member says it leads")
	}
	for _, a := range applied {
		if a+groupLagMax < top {
			whole = false
		}
	}
	return lead, whole, nil
}
