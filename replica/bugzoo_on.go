//go:build bugzoo

package replica

import (
	"fmt"

	"github.com/bouncer-dlm/bouncer/spec"
	"go.etcd.io/raft/v3/raftpb"
)

// The bugzoo build plants real mistakes of a replicated state machine in the
// replica, one at a time, so that the tests' checkers can be seen to catch
// them (bugzoo_test.go). Never ship this build.
const bugzooOn = true

// bugs are the replica bugs, with what each breaks.
var bugs = []struct{ name, doc string }{
	{"apply-own-clock", "a replica applies entries at its own clock instead of the entry's time"},
	{"follower-answers", "every replica answers every entry it applies, not only the proposer"},
	{"reply-on-append", "the leader answers its proposal once appended to its log, before commit"},
	{"hint-self", "a follower's refusal names itself as the leader"},
	{"lone-voter", "the lowest id is bootstrapped with itself as the only voter"},
}

// plantedBug is the bug planted in every replica of the process ("" none).
var plantedBug string

func planted(name string) bool { return plantedBug == name }

// PlantBug plants the named bug in every replica made afterwards ("": none).
func PlantBug(name string) error {
	for _, b := range bugs {
		if b.name == name || name == "" {
			plantedBug = name
			return nil
		}
	}
	return fmt.Errorf("replica: no planted bug %q", name)
}

// Bugs returns the names of the planted bugs and what each breaks.
func Bugs() map[string]string {
	out := map[string]string{}
	for _, b := range bugs {
		out[b.name] = b.doc
	}
	return out
}

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
