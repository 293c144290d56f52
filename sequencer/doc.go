// Package sequencer is a lock's proof of possession (Chubby's sequencer):
// a small signed statement by a lock node that a session held a resource
// in a mode under a fencing token. A holder passes it to a service it
// writes to; the service checks the node's signature offline (Verify,
// against the node's public keys) and admits only the newest holder of
// each resource (Fence).
//
// A sequencer names the resource, the granted mode, the fencing token of
// the grant (or up-conversion) it proves, the holder's session tag (the
// keyed hash by which the node shows a session to others: never its id,
// which is a capability), the node's instant of the grant (its monotonic
// clock, not the wall clock), and the id of the key that signed it.
//
// # Encoding
//
// One canonical binary form, version 1, every integer big-endian:
//
//	version     1 byte (1)
//	key id      8 bytes (the first 8 bytes of SHA-256 of the public key)
//	mode        1 byte (spec.Mode: NL 0 ... EX 5)
//	token       8 bytes
//	granted     8 bytes (spec.Time, nanoseconds of the node's clock)
//	tag length  1 byte (1 to TagBytesMax), then the tag
//	name length 2 bytes (0 to ResourceBytesMax), then the resource name
//	signature   64 bytes: Ed25519 over "bouncer-sequencer-v1\x00" and
//	            every byte above
//
// Decoding refuses another version, an invalid mode, a length over its
// bound, input longer than BytesMax and trailing bytes. The text form, for
// environment variables (BOUNCER_SEQUENCER) and HTTP headers
// (Bouncer-Sequencer), is the binary form in unpadded base64url, at most
// TextMax characters.
//
// # Keys
//
// Each node signs with its own Ed25519 key, kept in its data directory
// (`bouncer serve --print-public-key` prints it); each member of a
// replicated group has its own key, so a verifier trusts the set of the
// members' keys and picks the one the sequencer's key id names.
//
// # Fencing
//
// A verified sequencer says that the lock was held when it was issued, not
// that it still is: its holder may have lost its lease since. A Fence
// kept by the protected service closes that gap the way fencing tokens
// do: it admits a writer only with a sequencer for the right resource, in
// a mode that excludes other writers (PW or EX), and a token no lower than
// the highest it has admitted for that resource. A stale holder's token is
// lower than its successor's, so it is refused once the successor has
// written. A node can also be asked whether a sequencer's lock is still
// held (the CheckSequencer call of the Locks service), at the cost of a
// round trip.
package sequencer
