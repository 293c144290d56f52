package sequencer_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"

	"strings"
	"testing"

	"github.com/bouncer-dlm/bouncer/sequencer"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return pub, priv
}

var genSequencer = rapid.Custom(func(t *rapid.T) sequencer.Sequencer {
	return sequencer.Sequencer{
		Resource:   string(rapid.SliceOfN(rapid.Byte(), 0, sequencer.ResourceBytesMax).Draw(t, "resource")),
		Mode:       spec.Mode(rapid.IntRange(0, spec.ModeCount-1).Draw(t, "mode")),
		Token:      spec.Token(rapid.Uint64().Draw(t, "token")),
		SessionTag: rapid.SliceOfN(rapid.Byte(), 1, sequencer.TagBytesMax).Draw(t, "tag"),
		Granted:    spec.Time(rapid.Int64().Draw(t, "granted")),
	}
})

// TestRoundTrip: every sequencer within the bounds comes back equal from
// its binary and its text form, through Verify, within the size bounds.
func TestRoundTrip(t *testing.T) {
	pub, priv := newKey(t)
	rapid.Check(t, func(t *rapid.T) {
		s := genSequencer.Draw(t, "sequencer")
		b, err := sequencer.Sign(s, priv)
		require.NoError(t, err)
		require.LessOrEqual(t, len(b), sequencer.BytesMax)
		text := sequencer.Text(b)
		require.LessOrEqual(t, len(text), sequencer.TextMax)
		s.KeyID = sequencer.IDOf(pub)
		got, err := sequencer.Verify(text, []ed25519.PublicKey{pub})
		require.NoError(t, err)
		require.Equal(t, s, got)
		got, err = sequencer.Decode(b)
		require.NoError(t, err)
		require.Equal(t, s, got)
	})
}

// TestSignRefusesOutOfBounds: Sign refuses what the encoding cannot hold.
func TestSignRefusesOutOfBounds(t *testing.T) {
	_, priv := newKey(t)
	ok := sequencer.Sequencer{Resource: "r", Mode: spec.EX, Token: 1, SessionTag: []byte{1}}
	for name, s := range map[string]sequencer.Sequencer{
		"long name": {Resource: strings.Repeat("x", sequencer.ResourceBytesMax+1), Mode: spec.EX, SessionTag: []byte{1}},
		"no tag":    {Resource: "r", Mode: spec.EX},
		"long tag":  {Resource: "r", Mode: spec.EX, SessionTag: make([]byte, sequencer.TagBytesMax+1)},
		"bad mode":  {Resource: "r", Mode: spec.ModeCount, SessionTag: []byte{1}},
	} {
		_, err := sequencer.Sign(s, priv)
		require.ErrorIs(t, err, sequencer.ErrMalformed, name)
	}
	_, err := sequencer.Sign(ok, priv)
	require.NoError(t, err)
}

// TestDecodeRefuses: trailing bytes, oversize input, a truncated form,
// another version and a bad mode are each malformed.
func TestDecodeRefuses(t *testing.T) {
	pub, priv := newKey(t)
	b, err := sequencer.Sign(sequencer.Sequencer{Resource: "r", Mode: spec.EX, Token: 7, SessionTag: []byte("tagtagta")}, priv)
	require.NoError(t, err)
	trusted := []ed25519.PublicKey{pub}
	_, err = sequencer.VerifyBytes(b, trusted)
	require.NoError(t, err)
	for name, bad := range map[string][]byte{
		"trailing byte": append(bytes.Clone(b), 0),
		"oversize":      make([]byte, sequencer.BytesMax+1),
		"truncated":     b[:len(b)-1],
		"empty":         nil,
		"version 2":     append([]byte{2}, b[1:]...),
		"mode 6":        append(append(bytes.Clone(b[:9]), 6), b[10:]...),
	} {
		_, err := sequencer.VerifyBytes(bad, trusted)
		require.ErrorIs(t, err, sequencer.ErrMalformed, name)
		_, err = sequencer.Decode(bad)
		require.ErrorIs(t, err, sequencer.ErrMalformed, name)
	}
	for name, bad := range map[string]string{
		"oversize text": strings.Repeat("A", sequencer.TextMax+1),
		"padded":        sequencer.Text(b) + "=",
		"not base64url": "+/" + sequencer.Text(b)[2:],
	} {
		_, err := sequencer.Verify(bad, trusted)
		require.ErrorIs(t, err, sequencer.ErrMalformed, name)
	}
}

// TestForgedRefused: a sequencer signed by a key the verifier does not
// trust is refused, also when the forger writes a trusted key's id into it.
func TestForgedRefused(t *testing.T) {
	pub, priv := newKey(t)
	_, forger := newKey(t)
	s := sequencer.Sequencer{Resource: "r", Mode: spec.EX, Token: 7, SessionTag: []byte("tagtagta")}
	good, err := sequencer.Sign(s, priv)
	require.NoError(t, err)
	forged, err := sequencer.Sign(s, forger)
	require.NoError(t, err)
	trusted := []ed25519.PublicKey{pub}
	_, err = sequencer.VerifyBytes(good, trusted)
	require.NoError(t, err)
	_, err = sequencer.VerifyBytes(forged, trusted)
	require.ErrorIs(t, err, sequencer.ErrUnknownKey)
	// The forger claims the trusted key's id: the signature gives it away.
	id := sequencer.IDOf(pub)
	copy(forged[1:], id[:])
	_, err = sequencer.VerifyBytes(forged, trusted)
	require.ErrorIs(t, err, sequencer.ErrBadSignature)
	_, err = sequencer.VerifyBytes(good, nil)
	require.ErrorIs(t, err, sequencer.ErrUnknownKey, "no trusted key")
}

// TestAlteredRefused: flipping any bit of any byte of a signed sequencer
// makes Verify refuse it (malformed, another key, or a bad signature);
// never does it return a sequencer.
func TestAlteredRefused(t *testing.T) {
	pub, priv := newKey(t)
	trusted := []ed25519.PublicKey{pub}
	rapid.Check(t, func(t *rapid.T) {
		b, err := sequencer.Sign(genSequencer.Draw(t, "sequencer"), priv)
		require.NoError(t, err)
		i := rapid.IntRange(0, len(b)-1).Draw(t, "position")
		bit := byte(1) << rapid.IntRange(0, 7).Draw(t, "bit")
		b[i] ^= bit
		if s, err := sequencer.VerifyBytes(b, trusted); err == nil {
			t.Fatalf("byte %d altered, yet verified as %v", i, s)
		}
	})
}

func TestPublicKeyText(t *testing.T) {
	pub, _ := newKey(t)
	pub2, _ := newKey(t)
	got, err := sequencer.ParsePublicKey(sequencer.FormatPublicKey(pub))
	require.NoError(t, err)
	require.Equal(t, pub, got)
	keys, err := sequencer.ParsePublicKeys(sequencer.FormatPublicKey(pub) + "," + sequencer.FormatPublicKey(pub2))
	require.NoError(t, err)
	require.Equal(t, []ed25519.PublicKey{pub, pub2}, keys)
	for _, bad := range []string{"", "ed25519:", "rsa:AAAA", sequencer.FormatPublicKey(pub)[:20], sequencer.FormatPublicKey(pub) + "AA"} {
		_, err := sequencer.ParsePublicKey(bad)
		require.Error(t, err, bad)
	}
}
