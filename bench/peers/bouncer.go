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
