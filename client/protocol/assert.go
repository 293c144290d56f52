package protocol

// Assertions state what must hold where it must hold, and stay on in every
// build: each is O(1) and allocates nothing unless it fails. A failed one is
// a programmer error and panics (only the simulator recovers it, to print
// the seed).

// assert panics with msg, which names what was broken, unless cond holds.
func assert(cond bool, msg string) {
	if !cond {
		panic("client/protocol: assertion failed: " + msg)
	}
}
