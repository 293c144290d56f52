package replica_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/replica"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
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
				if _, err := g.reps[0].Propose(g.now, inputs); err != nil {
					b.Fatal(err)
				}
				inputs = nil
				r, n := g.settle(b)
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

// group is a group of replicas whose messages are delivered at once, in
// order, with the leader elected first.
type group struct {
	reps []*replica.Replica
	now  spec.Time
}

func newGroup(b *testing.B, n int, lim spec.Limits) *group {
	g := &group{}
	var peers []uint64
	for i := range n {
		peers = append(peers, uint64(i+1))
	}
	for _, id := range peers {
		r, err := replica.New(replica.Config{ID: id, Peers: peers, Limits: lim, FS: vfs.NewMem()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = r.Close() })
		g.reps = append(g.reps, r)
	}
	for i := 0; !g.reps[0].IsLeader(); i++ {
		if i > 1000 {
			b.Fatal("no leader")
		}
		g.now += spec.Time(10 * time.Millisecond)
		g.reps[0].Tick(g.now) // only the first campaigns
		g.settle(b)
	}
	return g
}

// settle handles every Ready and delivers every message until the group is
// quiet; it returns the leader's Readies and the bytes of entries it
// appended.
func (g *group) settle(b *testing.B) (readies, bytes int) {
	for busy := true; busy; {
		busy = false
		var msgs []*raftpb.Message
		for i, r := range g.reps {
			for r.HasReady() {
				busy = true
				rd, err := r.Ready()
				if err != nil {
					b.Fatal(err)
				}
				msgs = append(msgs, rd.Messages...)
				if i == 0 {
					readies++
					for _, m := range rd.Messages {
						if m.GetType() == raftpb.MessageType_MsgApp && m.GetTo() == 2 {
							for _, e := range m.GetEntries() {
								bytes += len(e.GetData())
							}
						}
					}
				}
				r.Advance()
			}
		}
		for _, m := range msgs {
			_ = g.reps[m.GetTo()-1].Step(m)
		}
	}
	return readies, bytes
}
