package replica_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// A keepalive goes through the log: it is an input of a client turn, batched
// with whatever else waits (up to InputsPerBatchMax inputs per entry), so a
// keepalive costs no fsync of its own, only its share of one synced batch
// per Ready on each replica. (The other design, leader-local keepalives with
// only expiries proposed, was not taken: a new leader would not know the
// deadlines the old one extended, and etcd's years of lease bugs on leader
// changes came from there; see doc.go's failover grace.)
//
// BenchmarkKeepAlives10k opens 10,000 sessions on a group of 3 replicas
// (each on its own in-memory Pebble, messages delivered at once) and then
// keeps all of them alive, one round per iteration: it reports the leader's
// synced batches (fsyncs) and the log's bytes per round of 10,000, and the
// time a round takes.
//
//	go test ./replica -run - -bench KeepAlives10k -benchtime 5x
func BenchmarkKeepAlives10k(b *testing.B) {
	const sessions = 10_000
	lim := spec.DefaultLimits()
	g := newGroup(b, 3, lim)
	ids := make([]spec.SessionID, sessions)
	for i := range ids {
		binary.BigEndian.PutUint64(ids[i][:8], uint64(i+1))
		ids[i][15] = 1
	}
	round := func(op spec.Op) (readies, bytes int) {
		var inputs []spec.Input
		for i := range ids {
			inputs = append(inputs, spec.Input{Op: op, Session: ids[i], TTL: time.Minute})
			if len(inputs) == lim.InputsPerBatchMax || i == len(ids)-1 {
				if _, err := g.reps[1].Propose(g.now, inputs); err != nil {
					b.Fatal(err)
				}
				inputs = nil
				r, n := g.quiet()
				readies, bytes = readies+r, bytes+n
			}
		}
		return readies, bytes
	}
	round(spec.OpOpen)
	var readies, bytes int
	for b.Loop() {
		r, n := round(spec.OpKeepAlive)
		readies, bytes = readies+r, bytes+n
	}
	b.ReportMetric(float64(readies)/float64(b.N), "leader-readies/10k")
	b.ReportMetric(float64(bytes)/float64(b.N)/sessions, "log-bytes/keepalive")
}
