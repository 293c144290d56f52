package peers

// The only file that imports Bouncer's client library, so that a move of the
// package changes one import line.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bouncer-dlm/bouncer/client"
	"github.com/bouncer-dlm/bouncer/spec"
)

// sessionTTL is the lease of every system's sessions and locks.
const sessionTTL = 10 * time.Second

// DialBouncer opens a connection and a session on a Bouncer node, or on a
// replicated group: addr may name every member, comma-separated, and the
// client follows the leader among them.
func DialBouncer(ctx context.Context, addr string) (Client, error) {
	cfg := client.Config{Addr: addr, TTL: sessionTTL}
	if strings.Contains(addr, ",") {
		cfg = client.Config{Addrs: strings.Split(addr, ","), TTL: sessionTTL}
	}
	c, err := client.Connect(cfg)
	if err != nil {
		return nil, err
	}
	s, err := c.NewSession(ctx)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("bouncer: open session: %w", err)
	}
	return &bouncerClient{c: c, s: s}, nil
}

type bouncerClient struct {
	c *client.Client
	s *client.Session
}

func (b *bouncerClient) Lock(ctx context.Context, resource string, mode Mode) (Held, error) {
	m := spec.EX
	if mode == Shared {
		m = spec.PR
	}
	l, err := b.s.Lock(ctx, resource, m)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (b *bouncerClient) TryLock(ctx context.Context, resource string) (Held, error) {
	l, err := b.s.TryLock(ctx, resource, spec.EX)
	if client.CodeOf(err) == spec.WouldBlock {
		return nil, ErrBusy
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (b *bouncerClient) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := b.s.Close(ctx)
	if cerr := b.c.Close(); err == nil {
		err = cerr
	}
	return err
}

// bouncerFenced is the correctness run's Bouncer client: one session at a
// time (a new one when the lease is lost), its grants' tokens, and the
// library's own count of the lease as the client's belief.
type bouncerFenced struct {
	c    *client.Client
	rec  *Recorder
	s    *client.Session
	used []string  // resources the session named
	last time.Time // the last lease deadline the client read
}

func dialBouncerFenced(ctx context.Context, addr string, rec *Recorder, ttl time.Duration) (lockClient, error) {
	c, err := client.Connect(client.Config{Addr: addr, TTL: ttl})
	if err != nil {
		return nil, err
	}
	return &bouncerFenced{c: c, rec: rec}, nil
}

// session is the client's live session, a new one if the last is done (its
// expiry recorded: the node ends it after the last deadline the client
// knew, unseen by the client).
func (b *bouncerFenced) session(ctx context.Context) (*client.Session, error) {
	if b.s != nil {
		select {
		case <-b.s.Done():
			b.rec.Expire(b.s.ID(), b.used, b.last, time.Time{})
			b.s, b.used = nil, nil
		default:
			return b.s, nil
		}
	}
	s, err := b.c.NewSession(ctx)
	if err != nil {
		return nil, err
	}
	b.s, b.last = s, s.LeaseDeadline()
	return s, nil
}

func (b *bouncerFenced) use(resource string) {
	for _, r := range b.used {
		if r == resource {
			return
		}
	}
	b.used = append(b.used, resource)
}

func (b *bouncerFenced) Acquire(ctx context.Context, resource string, wait time.Duration) (*grant, error) {
	s, err := b.session(ctx)
	if err != nil {
		return nil, err
	}
	b.use(resource)
	call := time.Now()
	l, err := s.Lock(ctx, resource, spec.EX, client.WaitTimeout(wait))
	ret := time.Now()
	switch {
	case err == nil:
		v, valid := l.Value()
		b.rec.Acquire(s.ID(), resource, wait, call, ret, Outcome{Known: true, Code: spec.OK,
			Token: uint64(l.Token()), Value: v, ValueValid: valid})
		return &grant{resource: resource, token: uint64(l.Token()), at: ret, lock: l}, nil
	case client.CodeOf(err) == spec.Timeout && ctx.Err() == nil:
		b.rec.Acquire(s.ID(), resource, wait, call, ret, Refused(spec.Timeout))
	default: // the lease lost, the run over: it may have been granted
		b.rec.Acquire(s.ID(), resource, wait, call, ret, Unknown)
	}
	return nil, err
}

func (b *bouncerFenced) Deadline(g *grant) time.Time {
	select {
	case <-b.s.Done():
		return time.Time{}
	default:
	}
	if d := b.s.LeaseDeadline(); !d.IsZero() {
		b.last = d
		return d
	}
	return time.Time{}
}

func (b *bouncerFenced) Release(ctx context.Context, g *grant) {
	call := time.Now()
	err := g.lock.(*client.Lock).Unlock(ctx)
	o := Refused(spec.OK)
	if err != nil {
		o = Unknown // the lease lost: the session's expiry ends the lock
	}
	b.rec.Release(b.s.ID(), g.resource, call, time.Now(), o)
}

func (b *bouncerFenced) Close() {
	defer b.c.Close()
	if b.s == nil {
		return
	}
	select {
	case <-b.s.Done():
		b.rec.Expire(b.s.ID(), b.used, b.last, time.Time{})
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	call := time.Now()
	o := Refused(spec.OK)
	if err := b.s.Close(ctx); err != nil {
		o = Unknown
	}
	b.rec.Close(b.s.ID(), b.used, call, time.Now(), o)
}

// Holds asks the node whether the grant's sequencer still checks as held
// (the node's durable state, through the leader in a group).
func (b *bouncerFenced) Holds(ctx context.Context, g *grant) (bool, error) {
	l := g.lock.(*client.Lock)
	seq, err := l.Sequencer(ctx)
	if err != nil {
		if code := client.CodeOf(err); code == spec.NotHeld || code == spec.SessionExpired || code == spec.UnknownSession {
			return false, nil // the node no longer knows the lock
		}
		return false, err
	}
	held, _, err := b.c.CheckSequencer(ctx, seq)
	return held, err
}
