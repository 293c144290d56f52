//go:build bugzoo

package replica

import (
	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/internal/bugzoo"
	"github.com/bouncer-dlm/bouncer/spec"
	"go.etcd.io/raft/v3/raftpb"
)

// The bugzoo build plants real mistakes of a replicated state machine in the
// replica, one at a time, so that the tests' checkers can be seen to catch
// them (bugzoo_test.go). Never ship this build.
const bugzooOn = true

// zoo holds the replica bugs, with what each breaks.
var zoo = bugzoo.New("replica",
	bugzoo.Bug{Name: "apply-own-clock", Doc: "a replica applies entries at its own clock instead of the entry's time"},
	bugzoo.Bug{Name: "follower-answers", Doc: "every replica answers every entry it applies, not only the proposer"},
	bugzoo.Bug{Name: "reply-on-append", Doc: "the leader answers its proposal once appended to its log, before commit"},
	bugzoo.Bug{Name: "hint-self", Doc: "a follower's refusal names itself as the leader"},
	bugzoo.Bug{Name: "lone-voter", Doc: "the lowest id is bootstrapped with itself as the only voter"},
	bugzoo.Bug{Name: "failover-no-grace", Doc: "a new leader's failover entry gives the sessions no grace: their leases run out on the old deadlines"},
	bugzoo.Bug{Name: "applied-with-writes-only", Doc: "the applied state is stored only with a Ready whose entries changed records: after empty or quiet tick entries a restart comes back at an older index and clock"},
	bugzoo.Bug{Name: "apply-uncommitted", Doc: "a replica applies entries as soon as they are in its log, before commit: an entry a new leader replaces was applied"},
	bugzoo.Bug{Name: "token-not-replicated", Doc: "a replica installing a snapshot keeps its own token counter, not the snapshot's: it falls behind the group's, and its grants reuse tokens"},
	bugzoo.Bug{Name: "reply-table-not-replicated", Doc: "only the proposer records a turn's outcomes for retries: after a failover, a retry the new leader has no record of is applied again"},
	bugzoo.Bug{Name: "read-without-index", Doc: "the leader answers a read from its applied state at once, without ReadIndex: a deposed leader that does not know it yet answers stale reads"},
	bugzoo.Bug{Name: "restart-with-grace", Doc: "a restarted replica (or one installing a snapshot) restores its core as a single node does, every session a fresh TTL: a grace the other replicas never applied"},
)

func planted(name string) bool { return zoo.Planted(name) }

// PlantBug plants the named bug in every replica made afterwards ("": none).
func PlantBug(name string) error { return zoo.Plant(name) }

// Bugs returns the names of the planted bugs and what each breaks.
func Bugs() map[string]string { return zoo.Bugs() }

// replyOnAppend answers the replica's own turn, optimistically "ok" for
// every input, as soon as its entry is in the local log.
func (r *Replica) replyOnAppend(ent *raftpb.Entry) {
	var e entry
	decodeEntry(ent.Data, &e)
	if _, ok := r.pending[e.seq]; !ok || e.proposer != r.id || e.kind != kindTurn {
		return
	}
	r.out.Replies = append(r.out.Replies, Reply{Proposal: ProposalID{Replica: r.id, Seq: e.seq},
		Index: ent.GetIndex(), Term: ent.GetTerm(), Results: make([]spec.Result, len(e.inputs))})
}

// applyOnAppend is what a replica that applies its log as it grows applies
// in a Ready: the entries just past applied, the committed ones (a restart
// replays those) and then the ones appended now, committed or not. Entries
// at or below applied that a new leader's log replaced are skipped: the
// replica applied the old ones already.
func (r *Replica) applyOnAppend(committed, appended []*raftpb.Entry) []*raftpb.Entry {
	var out []*raftpb.Entry
	next := r.applied + 1
	for _, ents := range [][]*raftpb.Entry{committed, appended} {
		for _, ent := range ents {
			if ent.GetIndex() == next {
				out = append(out, ent)
				next++
			}
		}
	}
	return out
}

// keepTokenCounter gives the core a snapshot installed the token counter of
// the core it replaces, as if the counter were the replica's own and not
// part of the replicated state.
func keepTokenCounter(core, old *engine.Core) { core.SetTokenMax(old.Stats().TokenMax) }

// recordReplies has the core record the outcomes of the entry it applies
// next (for retries with the same request ids) only if on.
func recordReplies(core *engine.Core, on bool) { core.RecordReplies(on) }
