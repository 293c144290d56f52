package sim

import (
	"bytes"
	cryptorand "crypto/rand"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
)

// Etcd raft draws its election jitter, its one source of randomness, from
// crypto/rand.Reader (crypto/rand.Int(rand.Reader, n), which reads the
// Reader it is given). A cluster run makes those draws come from its seed:
// while any run is in progress, crypto/rand.Reader is a dispatcher that
// serves each run's goroutine from that run's own ChaCha8 stream, and any
// other goroutine from the system's source. One goroutine drives every
// replica of a run, so its draws come in a fixed order, and runs on other
// goroutines (a campaign's workers, a test's parallel runs) do not disturb
// each other's streams.

var raftRand struct {
	sync.Mutex
	runs map[uint64]*rand.ChaCha8 // by goroutine id
	prev io.Reader                // the Reader before the first run
}

// seedRaft makes the calling goroutine's crypto/rand draws come from seed
// until the returned function is called (on the same goroutine).
func seedRaft(seed uint64) func() {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	copy(key[8:], "raft election jitter")
	g := goroutineID()
	raftRand.Lock()
	defer raftRand.Unlock()
	if raftRand.runs == nil {
		raftRand.runs = map[uint64]*rand.ChaCha8{}
		raftRand.prev = cryptorand.Reader
		cryptorand.Reader = dispatcher{}
	}
	raftRand.runs[g] = rand.NewChaCha8(key)
	return func() {
		raftRand.Lock()
		defer raftRand.Unlock()
		delete(raftRand.runs, g)
		if len(raftRand.runs) == 0 {
			cryptorand.Reader = raftRand.prev
			raftRand.runs = nil
		}
	}
}

type dispatcher struct{}

func (dispatcher) Read(b []byte) (int, error) {
	g := goroutineID()
	raftRand.Lock()
	r, ok := raftRand.runs[g]
	prev := raftRand.prev
	raftRand.Unlock()
	if !ok {
		return prev.Read(b)
	}
	return r.Read(b)
}

// goroutineID parses the calling goroutine's id from its stack header,
// "goroutine 123 [running]:". It is called only when raft draws (a change
// of term or role) and once per run.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		b = b[:i]
	}
	id, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		panic("sim: cannot read the goroutine id from " + strconv.Quote(string(buf[:])))
	}
	return id
}
