package client

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"maps"
	"slices"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/sequencer"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sequencer returns the lock's sequencer in text form: the node's signed
// proof that this session holds the lock, in its mode, under its token
// (package sequencer). Pass it to a service that verifies it against the
// node's public key and fences writers by it (sequencer.Fence). A lock
// whose lease may be lost (Done is closed) has none: ErrLeaseLost. The
// node answers NotHeld for a lock it no longer has.
func (l *Lock) Sequencer(ctx context.Context) (string, error) {
	select {
	case <-l.Done():
		return "", ErrLeaseLost
	default:
	}
	req := &pb.GetSequencerRequest{SessionId: wire.SessionToWire(l.s.id), Resource: []byte(l.resource)}
	resp, err := read(ctx, l.s.c, func(ctx context.Context, opts ...grpc.CallOption) (*pb.GetSequencerResponse, error) {
		return l.s.c.api.GetSequencer(ctx, req, opts...)
	})
	if err != nil {
		return "", err
	}
	s, err := sequencer.Decode(resp.Sequencer)
	if err != nil {
		return "", fmt.Errorf("client: the node answered a malformed sequencer: %w", err)
	}
	if s.Resource != l.resource {
		return "", fmt.Errorf("client: the node answered a sequencer for %s, not %s", spec.QuoteName(s.Resource),
			spec.QuoteName(l.resource))
	}
	return sequencer.Text(resp.Sequencer), nil
}

// CheckSequencer asks the node whether a sequencer's lock (text form) is
// still held: by the same session, in the same mode, under the same
// token. If not, why says so. It reads the node's durable state (a
// group's through its leader), so the answer may be stale by the time it
// arrives: a service that must refuse stale writers fences them with
// sequencer.Fence instead.
func (c *Client) CheckSequencer(ctx context.Context, text string) (held bool, why string, err error) {
	b, err := sequencer.FromText(text)
	if err != nil {
		return false, "", &spec.Error{Code: spec.InvalidArgument, Detail: err.Error()}
	}
	req := &pb.CheckSequencerRequest{Sequencer: b}
	resp, err := read(ctx, c, func(ctx context.Context, opts ...grpc.CallOption) (*pb.CheckSequencerResponse, error) {
		return c.api.CheckSequencer(ctx, req, opts...)
	})
	if err != nil {
		return false, "", err
	}
	return resp.Held, resp.Detail, nil
}

// read makes a call that changes nothing until the node answers it or ctx
// ends: a call that fails on the way is made again, a refusal is returned
// as an *Error.
func read[T any](ctx context.Context, c *Client, call func(context.Context, ...grpc.CallOption) (*T, error)) (*T, error) {
	retry := min(c.cfg.TTL/8, 500*time.Millisecond)
	for {
		resp, err := call(ctx, grpc.WaitForReady(true))
		if err == nil {
			return resp, nil
		}
		if res, ok := resultOf(err); ok {
			return nil, &spec.Error{Code: res.Code, Detail: res.Detail}
		}
		if status.Code(err) == codes.Unimplemented {
			return nil, fmt.Errorf("client: the node does not know this call (an older version?): %w", err)
		}
		t := time.NewTimer(retry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("client: %w (last: %v)", ctx.Err(), err)
		}
	}
}

// PublicKeys returns the keys the node the client talks to signs
// sequencers with (on a group, the member it reaches: MemberPublicKeys
// gives every member's). Trusting keys fetched over an
// unauthenticated connection trusts that connection: prefer keys taken
// from the node's host (`bouncer serve --print-public-key`), or use TLS.
func (c *Client) PublicKeys(ctx context.Context) ([]ed25519.PublicKey, error) {
	resp, err := read(ctx, c, func(ctx context.Context, opts ...grpc.CallOption) (*pb.PublicKeyResponse, error) {
		return c.api.PublicKey(ctx, &pb.PublicKeyRequest{}, opts...)
	})
	if err != nil {
		return nil, err
	}
	return publicKeysOf(resp)
}

// MemberPublicKeys asks every member of the group the client knows for
// its keys and returns them all, each once: on a group every member signs
// the sequencers it issues while it leads with a key of its own, so a
// verifier that must still accept them after a failover trusts them all.
// Every member must answer (before ctx ends). For a lone node it is
// PublicKeys. The same warning holds: keys fetched over an
// unauthenticated connection are as trustworthy as that connection.
func (c *Client) MemberPublicKeys(ctx context.Context) ([]ed25519.PublicKey, error) {
	conns := c.group.everyConn()
	addrs := slices.Sorted(maps.Keys(conns))
	var keys []ed25519.PublicKey
	for _, a := range addrs {
		resp, err := pb.NewLocksClient(conns[a]).PublicKey(ctx, &pb.PublicKeyRequest{}, grpc.WaitForReady(true))
		if err != nil {
			return nil, fmt.Errorf("client: member %s: %w", a, err)
		}
		ks, err := publicKeysOf(resp)
		if err != nil {
			return nil, fmt.Errorf("client: member %s: %w", a, err)
		}
		for _, k := range ks {
			if !slices.ContainsFunc(keys, func(x ed25519.PublicKey) bool { return x.Equal(k) }) {
				keys = append(keys, k)
			}
		}
	}
	return keys, nil
}

// publicKeysOf checks and returns the keys of a PublicKey answer.
func publicKeysOf(resp *pb.PublicKeyResponse) ([]ed25519.PublicKey, error) {
	if len(resp.Keys) > sequencer.KeysMax {
		return nil, fmt.Errorf("client: the node answered %d keys, over KeysMax %d", len(resp.Keys), sequencer.KeysMax)
	}
	var keys []ed25519.PublicKey
	for _, k := range resp.Keys {
		pub := ed25519.PublicKey(k.PublicKey)
		if len(pub) != ed25519.PublicKeySize || len(k.KeyId) != sequencer.KeyIDBytes || sequencer.IDOf(pub) != sequencer.KeyID(k.KeyId) {
			return nil, fmt.Errorf("client: the node answered a malformed public key (%d bytes, key id %x)", len(pub), k.KeyId)
		}
		keys = append(keys, pub)
	}
	return keys, nil
}
