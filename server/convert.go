package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Translation between the wire and spec. Malformed fields become
// InvalidArgument results naming the field; everything else is checked by
// spec.Validate inside the core.

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

func sessionID(b []byte) (spec.SessionID, *spec.Result) {
	var id spec.SessionID
	if len(b) != len(id) {
		return id, badField("session_id: want %d bytes, got %d", len(id), len(b))
	}
	copy(id[:], b)
	return id, nil
}

// ModeFromWire maps a wire mode to spec; MODE_UNSPECIFIED and unknown
// values are refused.
func ModeFromWire(m pb.Mode) (spec.Mode, bool) {
	if m < pb.Mode_MODE_NL || m > pb.Mode_MODE_EX {
		return 0, false
	}
	return spec.Mode(m - pb.Mode_MODE_NL), true
}

// ModeToWire maps a spec mode to the wire.
func ModeToWire(m spec.Mode) pb.Mode { return pb.Mode(m) + pb.Mode_MODE_NL }

func mode(m pb.Mode) (spec.Mode, *spec.Result) {
	sm, ok := ModeFromWire(m)
	if !ok {
		return 0, badField("mode: %v is not a lock mode (NL CR CW PR PW EX)", m)
	}
	return sm, nil
}

func duration(field string, d *durationpb.Duration) (time.Duration, *spec.Result) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, badField("%s: %v", field, err)
	}
	v := d.AsDuration()
	if v < 0 {
		return 0, badField("%s: %v is negative", field, v)
	}
	return v, nil
}

// tagger makes the tag by which a session appears to others (Describe,
// Watch, List): the id itself is a capability, so the tag is an HMAC of it
// under a key the node makes at start and never shows. An unkeyed hash
// would let anyone who reads the tags test guessed ids offline. Tags are
// stable for the life of the process, not across restarts.
type tagger struct{ key [32]byte }

func newTagger() *tagger {
	t := &tagger{}
	_, _ = rand.Read(t.key[:]) // crypto/rand never fails on supported platforms
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

func grantToWire(r spec.Result) *pb.LockResponse {
	return &pb.LockResponse{Mode: ModeToWire(r.Mode), Token: uint64(r.Token), Value: r.Value, ValueValid: r.ValueValid}
}

func (t *tagger) lockToWire(l spec.LockState, converting bool) *pb.Lock {
	w := &pb.Lock{SessionTag: t.tag(l.Session), Mode: ModeToWire(l.Mode), Token: uint64(l.Token)}
	if converting {
		w.ConvertingTo = ModeToWire(l.Want)
	}
	return w
}

func (t *tagger) resourceToWire(r spec.ResourceState, now spec.Time) *pb.Resource {
	w := &pb.Resource{Name: []byte(r.Name), Value: r.Value, ValueValid: r.ValueValid}
	if r.DelayUntil > now {
		w.DelayRemaining = durationpb.New(r.DelayUntil.Sub(now))
	}
	converting := map[spec.SessionID]bool{}
	for _, id := range r.Converting {
		converting[id] = true
	}
	for _, l := range r.Granted {
		w.Holders = append(w.Holders, t.lockToWire(l, converting[l.Session]))
	}
	for _, id := range r.Converting {
		for _, l := range r.Granted {
			if l.Session == id {
				w.Converting = append(w.Converting, t.lockToWire(l, true))
			}
		}
	}
	for _, l := range r.Waiting {
		w.Waiting = append(w.Waiting, t.lockToWire(l, false))
	}
	return w
}

func eventToWire(e spec.Event) *pb.Event {
	switch e.Kind {
	case spec.Completed:
		c := &pb.Completed{RequestId: uint64(e.Request), Resource: []byte(e.Resource),
			Code: pb.Code(e.Result.Code), Detail: e.Result.Detail}
		if e.Result.Code == spec.OK {
			c.Grant = grantToWire(e.Result)
		}
		return &pb.Event{Kind: &pb.Event_Completed{Completed: c}}
	case spec.Blocking:
		return &pb.Event{Kind: &pb.Event_Blocking{Blocking: &pb.Blocking{Resource: []byte(e.Resource), Mode: ModeToWire(e.Mode)}}}
	case spec.Expired:
		return &pb.Event{Kind: &pb.Event_Expired{Expired: &pb.Expired{}}}
	}
	return nil
}
