package sequencer

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeyIDBytes is the length of a key id.
const KeyIDBytes = 8

// KeyID names a signing key: the first 8 bytes of SHA-256 of its public
// key. It lets a verifier that trusts several keys (the members of a
// group) pick the one to check, and a person see which node signed.
type KeyID [KeyIDBytes]byte

// IDOf returns the id of a public key.
func IDOf(pub ed25519.PublicKey) KeyID {
	sum := sha256.Sum256(pub)
	var id KeyID
	copy(id[:], sum[:])
	return id
}

func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// Errors of Verify, besides ErrMalformed. A sequencer signed by a key the
// verifier does not trust is ErrUnknownKey; one whose bytes do not match
// its signature (altered, or forged under a trusted key id) is
// ErrBadSignature.
var (
	ErrUnknownKey   = errors.New("sequencer: signed by a key that is not trusted")
	ErrBadSignature = errors.New("sequencer: the signature does not match")
)

// Sign returns the binary form of s signed with key; s.KeyID is set to
// key's id. It fails only if s is out of the encoding's bounds.
func Sign(s Sequencer, key ed25519.PrivateKey) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sequencer: a private key of %d bytes is not Ed25519's", len(key))
	}
	s.KeyID = IDOf(key.Public().(ed25519.PublicKey))
	if err := s.check(); err != nil {
		return nil, err
	}
	body := s.body()
	return append(body, ed25519.Sign(key, signed(body))...), nil
}

// VerifyBytes checks a sequencer's binary form against the trusted public
// keys and returns the sequencer it proves.
func VerifyBytes(b []byte, trusted []ed25519.PublicKey) (Sequencer, error) {
	s, body, sig, err := decode(b)
	if err != nil {
		return Sequencer{}, err
	}
	for _, pub := range trusted {
		if len(pub) != ed25519.PublicKeySize || IDOf(pub) != s.KeyID {
			continue
		}
		if !ed25519.Verify(pub, signed(body), sig) {
			return Sequencer{}, ErrBadSignature
		}
		return s, nil
	}
	return Sequencer{}, fmt.Errorf("%w (key id %s)", ErrUnknownKey, s.KeyID)
}

// Verify checks a sequencer's text form (as in BOUNCER_SEQUENCER or a
// Bouncer-Sequencer header) against the trusted public keys and returns
// the sequencer it proves.
func Verify(t string, trusted []ed25519.PublicKey) (Sequencer, error) {
	b, err := FromText(t)
	if err != nil {
		return Sequencer{}, err
	}
	return VerifyBytes(b, trusted)
}

// keyPrefix marks the text form of a public key.
const keyPrefix = "ed25519:"

// FormatPublicKey is the text form of a public key, as `bouncer serve
// --print-public-key` prints it: "ed25519:" and the key in unpadded
// base64url.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return keyPrefix + base64.RawURLEncoding.EncodeToString(pub)
}

// ParsePublicKey reads a public key's text form.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), keyPrefix)
	if !ok {
		return nil, fmt.Errorf("sequencer: public key %q does not start with %q", trimmed(s), keyPrefix)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("sequencer: public key %q is not %d bytes of unpadded base64url", trimmed(s), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// ParsePublicKeys reads a comma-separated list of public keys (a group's
// members' keys), at most KeysMax.
func ParsePublicKeys(s string) ([]ed25519.PublicKey, error) {
	parts := strings.Split(s, ",")
	if len(parts) > KeysMax {
		return nil, fmt.Errorf("sequencer: %d public keys exceeds KeysMax %d", len(parts), KeysMax)
	}
	var keys []ed25519.PublicKey
	for _, p := range parts {
		k, err := ParsePublicKey(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// KeysMax bounds the keys ParsePublicKeys reads: a group's members, with
// room for replacements.
const KeysMax = 64

// trimmed shortens s for an error message.
func trimmed(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
