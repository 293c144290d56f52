package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/sequencer"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
)

// Sequencers: a holder asks for the proof of its lock (GetSequencer) and
// hands it to a service, which verifies it offline against the node's
// public key (PublicKey) and fences writers by its token; anyone may ask
// the node whether it still stands (CheckSequencer). All three read the
// core between turns, where every state is durable (on a member, through
// ReadIndex), and change nothing.

// GetSequencer signs the sequencer of the session's granted lock on a
// resource.
func (s *Server) GetSequencer(ctx context.Context, req *pb.GetSequencerRequest) (*pb.GetSequencerResponse, error) {
	id, err := wire.SessionFromWire(req.SessionId)
	if err != nil {
		return nil, invalid(wireRefusal(err))
	}
	if bad := name("resource", req.Resource, &s.opts.Limits); bad != nil {
		return nil, invalid(bad)
	}
	if n := len(req.Resource); n > sequencer.ResourceBytesMax {
		r := spec.Refuse(spec.LimitExceeded, fmt.Sprintf("resource: %d bytes exceeds the sequencer's ResourceBytesMax %d",
			n, sequencer.ResourceBytesMax))
		return nil, invalid(&r)
	}
	resource := string(req.Resource)
	var lock spec.LockState
	var held, queued bool
	err = s.loop.Inspect(ctx, func(c *engine.Core) {
		st, ok := c.Resource(resource)
		if !ok {
			return
		}
		for _, l := range st.Granted {
			if l.Session == id {
				lock, held = l, true
			}
		}
		for _, l := range st.Waiting {
			queued = queued || l.Session == id
		}
	})
	if err != nil {
		return nil, inspectError(err)
	}
	if !held {
		detail := fmt.Sprintf("the session holds no lock on %s: a sequencer proves a granted lock", spec.QuoteName(resource))
		if queued {
			detail = fmt.Sprintf("the session's request for %s is queued, not granted: a sequencer proves a granted lock",
				spec.QuoteName(resource))
		}
		return nil, wire.StatusError(spec.Refuse(spec.NotHeld, detail))
	}
	b, err := sequencer.Sign(sequencer.Sequencer{Resource: resource, Mode: lock.Mode, Token: lock.Token,
		SessionTag: s.tags.tag(id), Granted: lock.GrantedAt}, s.seqKey)
	if err != nil { // the bounds were checked above: a bug
		return nil, wire.StatusError(spec.Refuse(spec.InvalidArgument, err.Error()))
	}
	return &pb.GetSequencerResponse{Sequencer: b}, nil
}

// CheckSequencer answers whether a sequencer's lock is still held: a
// granted lock on its resource with its token, in its mode, granted at its
// instant, by its session. Tokens are never issued twice, for any resource, so the token
// names one grant to one session; the tag is compared too when this node
// signed the sequencer (another member's tags are keyed with its own key,
// and its signature with a key this node does not know).
func (s *Server) CheckSequencer(ctx context.Context, req *pb.CheckSequencerRequest) (*pb.CheckSequencerResponse, error) {
	seq, err := sequencer.Decode(req.Sequencer)
	if err != nil {
		return nil, wire.StatusError(spec.Refuse(spec.InvalidArgument, "sequencer: "+err.Error()))
	}
	mine := seq.KeyID == s.keyID()
	if mine {
		if _, err := sequencer.VerifyBytes(req.Sequencer, []ed25519.PublicKey{s.publicKey()}); err != nil {
			return nil, wire.StatusError(spec.Refuse(spec.InvalidArgument, "sequencer: "+err.Error()))
		}
	}
	var lock spec.LockState
	var found bool
	var tag []byte
	err = s.loop.Inspect(ctx, func(c *engine.Core) {
		st, ok := c.Resource(seq.Resource)
		if !ok {
			return
		}
		for _, l := range st.Granted {
			if l.Token == seq.Token {
				lock, found = l, true
			}
		}
	})
	if err != nil {
		return nil, inspectError(err)
	}
	if found {
		tag = s.tags.tag(lock.Session)
	}
	name := spec.QuoteName(seq.Resource)
	switch {
	case !found:
		return &pb.CheckSequencerResponse{Detail: fmt.Sprintf("no lock on %s holds token %d: released, expired or converted up since",
			name, seq.Token)}, nil
	case lock.Mode != seq.Mode:
		return &pb.CheckSequencerResponse{Detail: fmt.Sprintf("the lock on %s with token %d is held in %v now, not %v",
			name, seq.Token, lock.Mode, seq.Mode)}, nil
	case lock.GrantedAt != seq.Granted:
		return &pb.CheckSequencerResponse{Detail: fmt.Sprintf("the lock on %s with token %d was granted at %v, not %v",
			name, seq.Token, lock.GrantedAt, seq.Granted)}, nil
	case mine && !bytes.Equal(tag, seq.SessionTag):
		return &pb.CheckSequencerResponse{Detail: fmt.Sprintf("token %d on %s is held by another session than the sequencer's",
			seq.Token, name)}, nil
	}
	return &pb.CheckSequencerResponse{Held: true}, nil
}

// PublicKey returns the key this node signs sequencers with.
func (s *Server) PublicKey(ctx context.Context, _ *pb.PublicKeyRequest) (*pb.PublicKeyResponse, error) {
	id := s.keyID()
	return &pb.PublicKeyResponse{Keys: []*pb.SequencerKey{{KeyId: id[:], PublicKey: s.publicKey()}}}, nil
}

func (s *Server) publicKey() ed25519.PublicKey { return s.seqKey.Public().(ed25519.PublicKey) }

func (s *Server) keyID() sequencer.KeyID { return sequencer.IDOf(s.publicKey()) }
