package server

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
)

// Package wire translates between the wire and spec; a field it cannot
// read becomes an InvalidArgument result naming the field. Everything else
// is checked by spec.Validate inside the core.

func badField(format string, args ...any) *spec.Result {
	r := spec.Refuse(spec.InvalidArgument, fmt.Sprintf(format, args...))
	return &r
}

// name checks a resource name (or a prefix of one) in field against
// NameBytesMax, for the calls that do not go through spec.Validate.
func name(field string, b []byte, lim *spec.Limits) *spec.Result {
	if len(b) <= lim.NameBytesMax {
		return nil
	}
	r := spec.Refuse(spec.LimitExceeded, fmt.Sprintf("%s: %d bytes exceeds NameBytesMax %d", field, len(b), lim.NameBytesMax))
	return &r
}

// wireRefusal is the refusal of a request package wire could not read
// (nil if it could).
func wireRefusal(err error) *spec.Result {
	if err == nil {
		return nil
	}
	var e *spec.Error
	if !errors.As(err, &e) {
		e = &spec.Error{Code: spec.InvalidArgument, Detail: err.Error()}
	}
	r := spec.Refuse(e.Code, e.Detail)
	return &r
}

// tagger makes the tag by which a session appears to others (Describe,
// Watch, List, sequencers): the id itself is a capability, so the tag is
// an HMAC of it under a secret key of the node, never shown. An unkeyed
// hash would let anyone who reads the tags test guessed ids offline. The
// key is derived from the node's sequencer key, so tags are stable across
// restarts (a sequencer names its holder by tag and must still check after
// one); each member of a group has its own key, so its own tags.
type tagger struct{ key [32]byte }

// newTagger derives the tag key from the sequencer key (a one-way
// function of its secret seed, under a label of its own, so the tag key
// tells nothing of the signing key).
func newTagger(seqKey ed25519.PrivateKey) *tagger {
	t := &tagger{}
	m := hmac.New(sha256.New, seqKey.Seed())
	m.Write([]byte("bouncer session tags v1"))
	copy(t.key[:], m.Sum(nil))
	return t
}

// tagBytes is the length of a tag, as before it was keyed.
const tagBytes = 8

func (t *tagger) tag(id spec.SessionID) []byte {
	m := hmac.New(sha256.New, t.key[:])
	m.Write(id[:])
	return m.Sum(nil)[:tagBytes]
}

// SessionTag is how this node shows the session id to others.
func (s *Server) SessionTag(id spec.SessionID) []byte { return s.tags.tag(id) }

func (t *tagger) lockToWire(l spec.LockState, converting bool, now spec.Time) *pb.Lock {
	w := &pb.Lock{SessionTag: t.tag(l.Session), Mode: wire.ModeToWire(l.Mode), Token: uint64(l.Token), Permits: l.Permits,
		Label: l.Label}
	if converting {
		w.ConvertingTo = wire.ModeToWire(l.Want)
	}
	if l.Token != 0 {
		w.HeldFor = wire.DurationToWire(max(0, now.Sub(l.GrantedAt)))
	}
	if l.Request != 0 {
		w.WaitedFor = wire.DurationToWire(max(0, now.Sub(l.QueuedAt)))
	}
	return w
}

func (t *tagger) resourceToWire(r spec.ResourceState, now spec.Time) *pb.Resource {
	w := &pb.Resource{Name: []byte(r.Name), Value: r.Value, ValueValid: r.ValueValid, Limit: r.Limit}
	if r.DelayUntil > now {
		w.DelayRemaining = wire.DurationToWire(r.DelayUntil.Sub(now))
	}
	converting := map[spec.SessionID]bool{}
	for _, id := range r.Converting {
		converting[id] = true
	}
	for _, l := range r.Granted {
		w.Holders = append(w.Holders, t.lockToWire(l, converting[l.Session], now))
	}
	for _, id := range r.Converting {
		for _, l := range r.Granted {
			if l.Session == id {
				w.Converting = append(w.Converting, t.lockToWire(l, true, now))
			}
		}
	}
	for _, l := range r.Waiting {
		w.Waiting = append(w.Waiting, t.lockToWire(l, false, now))
	}
	return w
}
