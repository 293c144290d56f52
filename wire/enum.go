package wire

import (
	"fmt"
	"time"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
	"google.golang.org/protobuf/types/known/durationpb"
)

// bad is the error of a field that does not hold a known value.
func bad(format string, args ...any) error {
	return &spec.Error{Code: spec.InvalidArgument, Detail: fmt.Sprintf(format, args...)}
}

// modeOffset is where spec's modes start on the wire: zero is
// MODE_UNSPECIFIED, which is no mode.
const modeOffset = pb.Mode_MODE_NL

// ModeToWire maps a valid spec mode to the wire.
func ModeToWire(m spec.Mode) pb.Mode {
	if !m.Valid() {
		panic(fmt.Sprintf("wire: %v is not a mode", m))
	}
	return pb.Mode(m) + modeOffset
}

// ModeFromWire maps a wire mode to spec; MODE_UNSPECIFIED and values the
// enum lacks are errors.
func ModeFromWire(m pb.Mode) (spec.Mode, error) {
	if m < modeOffset || m-modeOffset >= spec.ModeCount {
		return 0, bad("mode: %v is not a lock mode (NL CR CW PR PW EX)", m)
	}
	return spec.Mode(m - modeOffset), nil
}

// CodeToWire maps a valid spec code to the wire, where it has the same
// number.
func CodeToWire(c spec.Code) pb.Code {
	if !c.Valid() {
		panic(fmt.Sprintf("wire: %v is not a code", c))
	}
	return pb.Code(c)
}

// CodeFromWire maps a wire code to spec; a value spec lacks is an error.
func CodeFromWire(c pb.Code) (spec.Code, error) {
	if c < 0 || c > 255 || !spec.Code(c).Valid() {
		return 0, bad("code: %v is not a Bouncer code", c)
	}
	return spec.Code(c), nil
}

// SessionToWire is a session id on the wire.
func SessionToWire(id spec.SessionID) []byte { return append([]byte(nil), id[:]...) }

// SessionFromWire reads a session id, which must have its exact length.
func SessionFromWire(b []byte) (spec.SessionID, error) {
	var id spec.SessionID
	if len(b) != len(id) {
		return id, bad("session_id: want %d bytes, got %d", len(id), len(b))
	}
	copy(id[:], b)
	return id, nil
}

// DurationToWire is d on the wire; zero (not set) is nil.
func DurationToWire(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

// DurationFromWire reads the duration in field; nil is zero, and a
// malformed or negative one is an error.
func DurationFromWire(field string, d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, bad("%s: %v", field, err)
	}
	v := d.AsDuration()
	if v < 0 {
		return 0, bad("%s: %v is negative", field, v)
	}
	return v, nil
}
