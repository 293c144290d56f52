package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/bouncer-dlm/bouncer/replica"
)

// Addrs are a member's addresses: Peer for raft's messages, Client for the
// lock service. They travel in the log when a member is added
// (replica.AddMember's data) and are kept in replicated state.
type Addrs struct {
	Peer   string `json:"peer"`
	Client string `json:"client"`
}

func (a Addrs) encode() []byte {
	b, _ := json.Marshal(a) // two strings always marshal
	return b
}

func decodeAddrs(b []byte) (Addrs, error) {
	var a Addrs
	err := json.Unmarshal(b, &a)
	return a, err
}

// members publishes the group's members: the configured addresses, then
// those the log carried (which win), for the voters.
func (l *Loop) members() {
	voters := l.r.Voters()
	l.voters = voters
	addrs := map[uint64]Addrs{}
	for id, a := range l.opts.Members {
		addrs[id] = a
	}
	for id, b := range l.r.Members() {
		a, err := decodeAddrs(b)
		if err != nil {
			l.opts.Log.Error("member data unreadable", "id", id, "err", err)
			continue
		}
		addrs[id] = a
	}
	for id := range addrs {
		if !slices.Contains(voters, id) {
			delete(addrs, id)
		}
	}
	l.mu.Lock()
	l.addrs = addrs
	l.mu.Unlock()
	if l.opts.OnMembers != nil {
		l.opts.OnMembers(voters, maps.Clone(addrs))
	}
}

// clientAddr is member id's client address ("" unknown).
func (l *Loop) clientAddr(id uint64) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addrs[id].Client
}

// MemberStatus is one member as the status shows it.
type MemberStatus struct {
	ID    uint64
	Addrs Addrs
	// On the leader: the index raft knows the member has, and whether it
	// heard from it lately.
	Match        uint64
	RecentActive bool
}

// Status is a member's view of its group.
type Status struct {
	replica.Status
	Members []MemberStatus
}

// Status returns this member's view of the group.
func (l *Loop) Status(ctx context.Context) (Status, error) {
	var st Status
	err := l.Admin(ctx, func(r *replica.Replica) { st.Status = r.Status() })
	if err != nil {
		return st, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range st.Voters {
		m := MemberStatus{ID: id, Addrs: l.addrs[id]}
		if p, ok := st.Progress[id]; ok {
			m.Match, m.RecentActive = p.Match, p.RecentActive
		}
		st.Members = append(st.Members, m)
	}
	return st, nil
}

// ErrChangeTimeout: a membership change or transfer was proposed but not
// seen to take effect before the context ended (it may still).
var ErrChangeTimeout = errors.New("cluster: the change did not take effect in time")

// AddMember adds voter id with its addresses, through the leader, and
// waits until the change is applied here; it returns the voters then.
func (l *Loop) AddMember(ctx context.Context, id uint64, a Addrs) ([]uint64, error) {
	if a.Peer == "" {
		return nil, fmt.Errorf("cluster: member %d needs a peer address", id)
	}
	return l.change(ctx, func(r *replica.Replica) error { return r.AddMember(id, a.encode()) },
		func(voters []uint64) bool { return slices.Contains(voters, id) })
}

// RemoveMember removes voter id, through the leader, and waits until the
// change is applied here (if this member is the one removed, until it no
// longer leads).
func (l *Loop) RemoveMember(ctx context.Context, id uint64) ([]uint64, error) {
	return l.change(ctx, func(r *replica.Replica) error { return r.RemoveMember(id) },
		func(voters []uint64) bool { return !slices.Contains(voters, id) })
}

// TransferLeader hands the leadership to voter id and waits until this
// member knows it leads.
func (l *Loop) TransferLeader(ctx context.Context, id uint64) ([]uint64, error) {
	return l.change(ctx, func(r *replica.Replica) error {
		if !slices.Contains(r.Voters(), id) {
			return fmt.Errorf("cluster: %d is not a voter", id)
		}
		r.TransferLeader(id)
		return nil
	}, func([]uint64) bool { return l.lead.Load() == id })
}

func (l *Loop) change(ctx context.Context, propose func(*replica.Replica) error, done func([]uint64) bool) ([]uint64, error) {
	if err := l.Leading(); err != nil {
		return nil, err
	}
	var perr error
	if err := l.Admin(ctx, func(r *replica.Replica) { perr = propose(r) }); err != nil {
		return nil, err
	}
	var nl *replica.NotLeader
	if errors.As(perr, &nl) {
		return nil, l.notLeader()
	}
	if perr != nil {
		return nil, perr
	}
	for {
		var voters []uint64
		if err := l.Admin(ctx, func(r *replica.Replica) { voters = r.Voters() }); err != nil {
			return nil, err
		}
		if done(voters) {
			return voters, nil
		}
		select {
		case <-ctx.Done():
			return voters, ErrChangeTimeout
		case <-time.After(20 * time.Millisecond):
		}
	}
}
