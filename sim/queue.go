package sim

import (
	"github.com/bouncer-dlm/bouncer/spec"
	"go.etcd.io/raft/v3/raftpb"
)

// evKind is the kind of a scheduled event.
type evKind uint8

const (
	evNodeArrive   evKind = iota + 1 // a message reaches the node
	evClientArrive                   // a message reaches a client
	evTurnDone                       // the node's commit finished: send the outputs
	evNodeTimer                      // the node's next deadline
	evCrash                          // cut the node's power
	evRestart                        // the node comes back
	evDiskFault                      // arm a WAL write failure for the next commits
	evClientWake                     // a client's timer (core deadline or its workload)
	evPause                          // a client stops the world
	evResume                         // and resumes
	evPartition                      // a client is cut off from the node
	evPartitionEnd                   // and reconnected
	evReset                          // a client's connection is reset
	evConnect                        // a client connects (again)
	evFence                          // a write reaches the fenced resource
	evHeal                           // the safety phase ends: every fault heals
	evDrain                          // the calm phase ends: clients finish and close
	evDeadline                       // the liveness bound
	evReplicaTick                    // a replica's tick interval passed
	evReplicaOut                     // a replica's commit finished: send its Ready's outputs
	evRaftArrive                     // a raft message reaches a replica
	evLayout                         // the raft network's layout changes
	evLayoutEnd                      // and heals
	evLeaderCheck                    // after the heal: a leader known to all
	evTransfer                       // the leader hands its leadership to another replica
	evMembers                        // the group's leader adds or removes a member
	evRemoved                        // a replica removed from the group shuts down
	evRead                           // a reader asks a member for a linearizable read
	evReadArrive                     // and the request reaches it
)

// event is something that happens at an instant of true time. Events at
// the same instant happen in the order they were scheduled (seq).
type event struct {
	at   spec.Time
	seq  uint64
	kind evKind
	c    int    // the client, for client events
	gen  uint64 // the generation of a cancellable timer
	msg  *message
	w    *write
	n    int // the replica, for replica events
	from int // the sending replica, for raft messages
	raft *raftpb.Message
	out  *replicaOut
	read uint64 // a reader's read
}

// queue is a binary min-heap of events by (at, seq).
type queue struct {
	evs []*event
	seq uint64
}

func (q *queue) less(i, j int) bool {
	a, b := q.evs[i], q.evs[j]
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (q *queue) push(e *event) {
	q.seq++
	e.seq = q.seq
	q.evs = append(q.evs, e)
	i := len(q.evs) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.evs[i], q.evs[p] = q.evs[p], q.evs[i]
		i = p
	}
}

func (q *queue) pop() *event {
	n := len(q.evs) - 1
	top := q.evs[0]
	q.evs[0] = q.evs[n]
	q.evs[n] = nil
	q.evs = q.evs[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && q.less(l, m) {
			m = l
		}
		if r < n && q.less(r, m) {
			m = r
		}
		if m == i {
			return top
		}
		q.evs[i], q.evs[m] = q.evs[m], q.evs[i]
		i = m
	}
}

func (q *queue) len() int { return len(q.evs) }
