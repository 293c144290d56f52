//go:build !bugzoo

package replica

import (
	"github.com/bouncer-dlm/bouncer/engine"
	"go.etcd.io/raft/v3/raftpb"
)

// bugzooOn is false in every build but the bugzoo one, so the planted bugs
// compile away.
const bugzooOn = false

func planted(string) bool { return false }

func (r *Replica) replyOnAppend(*raftpb.Entry) {}

func (r *Replica) applyOnAppend(committed, _ []*raftpb.Entry) []*raftpb.Entry { return committed }

func keepTokenCounter(_, _ *engine.Core) {}

func recordReplies(*engine.Core, bool) {}
