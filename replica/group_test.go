package replica_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/replica"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

// group drives replicas over a perfect network: every message is delivered
// at once, in order, and every snapshot reported delivered. Its replicas
// live in directories of one file system.
type group struct {
	tb   testing.TB
	fs   vfs.FS
	reps map[uint64]*replica.Replica
	now  spec.Time
	// cut replicas send and receive nothing; reads are the reads each
	// replica's Readies let it answer.
	cut   map[uint64]bool
	reads map[uint64][]uint64
}

// newGroup bootstraps n replicas with replica 1 elected.
func newGroup(tb testing.TB, n int, lim spec.Limits) *group {
	g := newEmptyGroup(tb)
	var peers []uint64
	for i := range n {
		peers = append(peers, uint64(i+1))
	}
	for _, id := range peers {
		cfg := g.config(id, peers, false)
		cfg.Limits, cfg.CompactAfter = lim, 0 // the default
		g.open(cfg)
		tb.Cleanup(func() { _ = g.reps[id].Close() })
	}
	for i := 0; !g.reps[1].IsLeader(); i++ {
		if i > 1000 {
			tb.Fatal("no leader")
		}
		g.now += spec.Time(10 * time.Millisecond)
		g.reps[1].Tick(g.now) // only the first campaigns
		g.quiet()
	}
	return g
}

func newEmptyGroup(tb testing.TB) *group {
	return &group{tb: tb, fs: vfs.NewMem(), reps: map[uint64]*replica.Replica{}, cut: map[uint64]bool{},
		reads: map[uint64][]uint64{}}
}

func (g *group) config(id uint64, peers []uint64, join bool) replica.Config {
	return replica.Config{ID: id, Peers: peers, Join: join, Limits: spec.DefaultLimits(), FS: g.fs,
		Dir: fmt.Sprintf("r%d", id), CompactAfter: 8}
}

func (g *group) open(cfg replica.Config) {
	g.tb.Helper()
	r, err := replica.New(cfg)
	if err != nil {
		g.tb.Fatal(err)
	}
	g.reps[cfg.ID] = r
}

// settle runs ticks rounds of 10 ms: a tick on every replica that is not
// cut, then quiet.
func (g *group) settle(ticks int) {
	g.tb.Helper()
	for range ticks {
		g.now += spec.Time(10 * time.Millisecond)
		for _, id := range slices.Sorted(maps.Keys(g.reps)) {
			if !g.cut[id] {
				g.reps[id].Tick(g.now)
			}
		}
		g.quiet()
	}
}

// quiet handles every Ready and delivers every message until the group is
// quiet; it returns replica 1's Readies and the bytes of entries it sent
// replica 2.
func (g *group) quiet() (readies, bytes int) {
	g.tb.Helper()
	ids := slices.Sorted(maps.Keys(g.reps))
	for busy := true; busy; {
		busy = false
		var msgs []*raftpb.Message
		for _, id := range ids {
			r := g.reps[id]
			for r.HasReady() {
				busy = true
				rd, err := r.Ready()
				if err != nil {
					g.tb.Fatal(err)
				}
				g.reads[id] = append(g.reads[id], rd.Reads...)
				msgs = append(msgs, rd.Messages...)
				r.Advance()
				if id != 1 {
					continue
				}
				readies++
				for _, m := range rd.Messages {
					if m.GetType() == raftpb.MessageType_MsgApp && m.GetTo() == 2 {
						for _, e := range m.GetEntries() {
							bytes += len(e.GetData())
						}
					}
				}
			}
		}
		for _, m := range msgs {
			if to, ok := g.reps[m.GetTo()]; ok && !g.cut[m.GetTo()] && !g.cut[m.GetFrom()] {
				_ = to.Step(m)
			}
			if m.GetType() == raftpb.MessageType_MsgSnap {
				g.reps[m.GetFrom()].ReportSnapshot(m.GetTo(), false)
			}
		}
	}
	return readies, bytes
}
