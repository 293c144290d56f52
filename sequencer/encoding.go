package sequencer

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bouncer-dlm/bouncer/spec"
)

// Version is the version of the encoding this package writes and reads.
const Version = 1

// Bounds of the encoding. A resource name over ResourceBytesMax has no
// sequencer (the node refuses to issue one with LimitExceeded), which keeps
// the text form small enough for an HTTP header.
const (
	TagBytesMax      = 32
	ResourceBytesMax = 1024
	// headerBytes is everything before the tag: version, key id, mode,
	// token, granted, tag length.
	headerBytes = 1 + KeyIDBytes + 1 + 8 + 8 + 1
	// BytesMax bounds the binary form.
	BytesMax = headerBytes + TagBytesMax + 2 + ResourceBytesMax + ed25519.SignatureSize
	// bytesMin is the shortest binary form: a one-byte tag, an empty name.
	bytesMin = headerBytes + 1 + 2 + ed25519.SignatureSize
)

// TextMax bounds the text form.
var TextMax = text.EncodedLen(BytesMax)

// text is the text form's alphabet: unpadded base64url, strict (the unused
// bits of the last character must be zero, so each sequencer has one text).
var text = base64.RawURLEncoding.Strict()

// domain is signed before the body, so that a signature over a sequencer
// can never be taken for the signature of anything else the key signs.
const domain = "bouncer-sequencer-v1\x00"

// Sequencer is a lock's proof of possession, as the node signed it.
type Sequencer struct {
	KeyID      KeyID      // the key that signed it
	Resource   string     // the lock's resource
	Mode       spec.Mode  // the granted mode
	Token      spec.Token // the fencing token of the grant or up-conversion
	SessionTag []byte     // the holder's session, as the node shows it to others
	Granted    spec.Time  // the node's instant of the grant (its monotonic clock)
}

// ErrMalformed is the error of input that is not a sequencer of this
// version within its bounds.
var ErrMalformed = errors.New("sequencer: malformed")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// check reports whether s is within the encoding's bounds.
func (s *Sequencer) check() error {
	switch {
	case !s.Mode.Valid():
		return malformed("mode %d is not a lock mode", s.Mode)
	case len(s.SessionTag) == 0 || len(s.SessionTag) > TagBytesMax:
		return malformed("session tag of %d bytes (1 to %d)", len(s.SessionTag), TagBytesMax)
	case len(s.Resource) > ResourceBytesMax:
		return malformed("resource name of %d bytes exceeds ResourceBytesMax %d", len(s.Resource), ResourceBytesMax)
	}
	return nil
}

// body is the signed part of the binary form.
func (s *Sequencer) body() []byte {
	b := make([]byte, 0, BytesMax)
	b = append(b, Version)
	b = append(b, s.KeyID[:]...)
	b = append(b, byte(s.Mode))
	b = binary.BigEndian.AppendUint64(b, uint64(s.Token))
	b = binary.BigEndian.AppendUint64(b, uint64(s.Granted))
	b = append(b, byte(len(s.SessionTag)))
	b = append(b, s.SessionTag...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.Resource)))
	return append(b, s.Resource...)
}

// signed is the message the signature covers.
func signed(body []byte) []byte { return append([]byte(domain), body...) }

// decode reads the binary form: the sequencer, its signed body and its
// signature. It checks the form, not the signature.
func decode(b []byte) (s Sequencer, body, sig []byte, err error) {
	if len(b) > BytesMax {
		return s, nil, nil, malformed("%d bytes exceeds BytesMax %d", len(b), BytesMax)
	}
	if len(b) < bytesMin {
		return s, nil, nil, malformed("%d bytes is too short", len(b))
	}
	if b[0] != Version {
		return s, nil, nil, malformed("version %d (this reader knows %d)", b[0], Version)
	}
	r := b[1:]
	copy(s.KeyID[:], r)
	r = r[KeyIDBytes:]
	s.Mode = spec.Mode(r[0])
	s.Token = spec.Token(binary.BigEndian.Uint64(r[1:]))
	s.Granted = spec.Time(binary.BigEndian.Uint64(r[9:]))
	tagLen := int(r[17])
	r = r[18:]
	if tagLen == 0 || tagLen > TagBytesMax || len(r) < tagLen+2 {
		return s, nil, nil, malformed("session tag of %d bytes", tagLen)
	}
	s.SessionTag = append([]byte(nil), r[:tagLen]...)
	r = r[tagLen:]
	nameLen := int(binary.BigEndian.Uint16(r))
	r = r[2:]
	if nameLen > ResourceBytesMax || len(r) < nameLen+ed25519.SignatureSize {
		return s, nil, nil, malformed("resource name of %d bytes", nameLen)
	}
	s.Resource = string(r[:nameLen])
	r = r[nameLen:]
	if len(r) != ed25519.SignatureSize {
		return s, nil, nil, malformed("%d bytes after the signature", len(r)-ed25519.SignatureSize)
	}
	if !s.Mode.Valid() {
		return s, nil, nil, malformed("mode %d is not a lock mode", s.Mode)
	}
	end := len(b) - ed25519.SignatureSize
	return s, b[:end], b[end:], nil
}

// Decode reads a sequencer's binary form WITHOUT checking its signature:
// for a node answering about its own state, or for display. A service
// that acts on a sequencer uses Verify.
func Decode(b []byte) (Sequencer, error) {
	s, _, _, err := decode(b)
	return s, err
}

// Text is the text form of a sequencer's binary form.
func Text(b []byte) string { return text.EncodeToString(b) }

// FromText reads the text form back into the binary form, refusing
// oversize input and anything but unpadded base64url.
func FromText(t string) ([]byte, error) {
	if len(t) > TextMax {
		return nil, malformed("text of %d characters exceeds TextMax %d", len(t), TextMax)
	}
	b, err := text.DecodeString(t)
	if err != nil {
		return nil, malformed("text is not unpadded base64url: %v", err)
	}
	return b, nil
}

// String describes s for people; the resource name is quoted as the CLI
// quotes names.
func (s Sequencer) String() string {
	return fmt.Sprintf("%s %s token %d session %x granted at %v key %s",
		spec.QuoteName(s.Resource), s.Mode, s.Token, s.SessionTag, s.Granted, s.KeyID)
}
