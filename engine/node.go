package engine

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Node is the core and its store, stepped one turn at a time: the loop
// logic that the production event loop and the simulator share. A turn
// steps every input, commits all the writes in one synced batch (group
// commit), and only then hands back the replies and events.
type Node struct {
	core  *Core
	store *Store
	turn  Turn
}

// NodeOptions configure a node.
type NodeOptions struct {
	FS     vfs.FS       // where the store lives: vfs.Default, or a test FS
	Dir    string       // the store's directory on FS
	Limits spec.Limits  // must be valid
	Log    *slog.Logger // optional
}

// TurnResult is what one turn produced. Its slices belong to the node and
// stay valid until the next Turn.
type TurnResult struct {
	Replies []spec.Result // one per input, in order
	Events  []spec.Event
	Writes  int // records written in the turn's batch (0: no fsync)
}

// Turn is a turn begun (stepped, its batch handed to the log) whose
// outputs may go out only once Wait returns nil. Its slices are its own.
type Turn struct {
	TurnResult
	applied *Applied // nil: the turn wrote nothing
}

// Wait waits until the turn's writes are durable. It may run on another
// goroutine than Begin. A turn that wrote nothing is durable as soon as the
// turns before it are, which the caller ensures by delivering in order.
func (t *Turn) Wait(n *Node) error {
	if t.applied == nil {
		return nil
	}
	return n.store.Synced(t.applied)
}

// OpenNode opens the store and recovers the core from it, as a restart at
// now. The caller should make a turn at once (with no inputs, if none
// wait): it fires the timers that came due while the node was down.
func OpenNode(opts NodeOptions, now spec.Time) (*Node, error) {
	if err := opts.Limits.Validate(); err != nil {
		return nil, err
	}
	st, err := OpenStore(opts.FS, opts.Dir, opts.Log)
	if err != nil {
		return nil, err
	}
	foreign := false
	if err := st.Scan([]byte{ForeignPrefix}, []byte{ForeignPrefix + 1}, func(_, _ []byte) error {
		foreign = true
		return errStopScan
	}); err != nil && !errors.Is(err, errStopScan) {
		_ = st.Close()
		return nil, err
	}
	if foreign {
		_ = st.Close()
		return nil, fmt.Errorf("engine: %s holds a member of a replicated group, not a lone node: serve it as that member (--id, --peers)", opts.Dir)
	}
	c, err := st.Load(opts.Limits, now)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return &Node{core: c, store: st}, nil
}

var errStopScan = errors.New("stop")

// Turn steps inputs at now (or, with none, only lets time pass), commits the
// turn's writes with one fsync, and returns the replies and events. On an
// error nothing of the turn may be delivered: the node has stopped and must
// be reopened from its store.
func (n *Node) Turn(now spec.Time, inputs []spec.Input) (*TurnResult, error) {
	t := &n.turn
	if err := n.Begin(now, inputs, t); err != nil {
		return nil, err
	}
	if err := t.Wait(n); err != nil {
		return nil, err
	}
	return &t.TurnResult, nil
}

// Begin steps inputs at now into t (reusing its slices) and hands the
// turn's writes to the log without waiting for them to be durable, so that
// the next turn can be stepped meanwhile (pipelined group commit). Turns
// reach the log in the order of Begin; their outputs must be delivered in
// that order, each only after its Wait returned nil. After an error,
// nothing of this turn or of any turn begun before it and not yet
// delivered may be: the node has stopped.
func (n *Node) Begin(now spec.Time, inputs []spec.Input, t *Turn) error {
	n.core.Advance() // the previous turn's outputs were copied out
	t.Replies, t.Events, t.Writes, t.applied = t.Replies[:0], t.Events[:0], 0, nil
	if err := n.store.failure(); err != nil {
		return err
	}
	if len(inputs) == 0 {
		n.core.Tick(now)
	}
	for i := range inputs {
		t.Replies = append(t.Replies, n.core.Step(now, &inputs[i]))
	}
	rd := n.core.Ready()
	t.Events, t.Writes = append(t.Events, rd.Events...), rd.Writes.Len()
	if t.Writes > 0 {
		a, err := n.store.Apply(rd.Writes)
		if err != nil {
			return err
		}
		t.applied = a
	}
	return nil
}

// NextDeadline returns when the node next needs a turn without inputs.
func (n *Node) NextDeadline() (spec.Time, bool) { return n.core.NextDeadline() }

// Core gives read access to the core between turns (state, inspection).
// Stepping it directly would bypass the store: don't.
func (n *Node) Core() *Core { return n.core }

// Close closes the store.
func (n *Node) Close() error {
	if err := n.store.Close(); err != nil {
		return fmt.Errorf("node: close: %w", err)
	}
	return nil
}
