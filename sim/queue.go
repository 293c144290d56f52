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

// queue is a binary min-heap of events by (at, seq). Its entries carry
// their keys, so ordering them reads no event; the events themselves are
// recycled: pop hands one out, release takes it back once dispatched, and
// push fills a released one before it allocates (a run schedules an event
// for every message, timer and fault, most of them short-lived).
type queue struct {
	evs  []qentry
	seq  uint64
	free []*event
}

type qentry struct {
	at  spec.Time
	seq uint64
	e   *event
}

func (a *qentry) before(b *qentry) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

// push schedules a copy of e.
func (q *queue) push(e event) {
	var p *event
	if n := len(q.free); n > 0 {
		p = q.free[n-1]
		q.free[n-1] = nil
		q.free = q.free[:n-1]
	} else {
		p = new(event)
	}
	q.seq++
	e.seq = q.seq
	*p = e
	q.evs = append(q.evs, qentry{at: e.at, seq: e.seq, e: p})
	evs := q.evs
	i := len(evs) - 1
	x := evs[i]
	for i > 0 {
		parent := (i - 1) / 2
		if !x.before(&evs[parent]) {
			break
		}
		evs[i] = evs[parent]
		i = parent
	}
	evs[i] = x
}

// pop removes the earliest event. The caller hands it back with release
// once nothing refers to it any more.
func (q *queue) pop() *event {
	evs := q.evs
	n := len(evs) - 1
	top := evs[0].e
	x := evs[n]
	evs[n] = qentry{}
	evs = evs[:n]
	q.evs = evs
	if n == 0 {
		return top
	}
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && evs[r].before(&evs[l]) {
			m = r
		}
		if !evs[m].before(&x) {
			break
		}
		evs[i] = evs[m]
		i = m
	}
	evs[i] = x
	return top
}

// release recycles a popped event.
func (q *queue) release(e *event) {
	*e = event{}
	q.free = append(q.free, e)
}

func (q *queue) len() int { return len(q.evs) }
