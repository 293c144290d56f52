package engine

// Writes is the batch of durable changes of one turn, in the order they
// were made. It is encoded into one reusable buffer, so a steady state
// allocates nothing.
//
// A key written twice in a turn keeps only its last write (within a batch
// the last write wins anyway), and a key created in a turn and deleted in
// the same turn (a lock taken and released, an outcome recorded and then
// acknowledged) is not written at all. Each record's owner (lock, reply,
// resource, session) remembers its latest write of the turn in an opRef,
// so this costs O(1) per write. Under group commit many clients' acquires
// and releases land in one turn, and this keeps them out of the store's
// memtable, where the cost of a turn lies (not in the fsync).
type Writes struct {
	buf  []byte
	ops  []writeOp
	live int    // ops not superseded
	turn uint64 // numbers turns, so that opRefs of earlier turns are stale
}

type writeOp struct {
	keyStart, keyEnd, valueEnd int // offsets into buf
	del                        bool
	dead                       bool // superseded by a later write of its key
}

// opRef is an owner's latest write in the current turn.
type opRef struct {
	turn uint64
	i    int32 // index in ops (a turn holds far fewer than 2^31 writes)
	born bool  // the key did not exist before this turn
}

// Len returns the number of writes.
func (w *Writes) Len() int { return w.live }

// Each calls f for every write in order; value is nil for a deletion. The
// slices are valid only until the core's next Advance.
func (w *Writes) Each(f func(key, value []byte, del bool) error) error {
	for i := range w.ops {
		op := &w.ops[i]
		if op.dead {
			continue
		}
		key := w.buf[op.keyStart:op.keyEnd:op.keyEnd]
		var value []byte
		if !op.del {
			value = w.buf[op.keyEnd:op.valueEnd:op.valueEnd]
		}
		if err := f(key, value, op.del); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writes) reset() {
	w.buf = w.buf[:0]
	w.ops = w.ops[:0]
	w.live = 0
	w.turn++
}

// A record is written as: start := w.begin(); append the key; then either
// w.put(ref, existed, start), append the value, w.end(); or
// w.del(ref, existed, start). existed says whether the key was in the store
// before this turn; ref's earlier write this turn, if any, knows better.

func (w *Writes) begin() int { return len(w.buf) }

// supersede drops ref's earlier write of this turn and says whether the
// key is new this turn.
func (w *Writes) supersede(ref *opRef, existed bool) (born bool) {
	if ref.turn != w.turn {
		return !existed
	}
	if op := &w.ops[ref.i]; !op.dead {
		op.dead = true
		w.live--
	}
	return ref.born
}

func (w *Writes) put(ref *opRef, existed bool, keyStart int) {
	born := w.supersede(ref, existed)
	w.ops = append(w.ops, writeOp{keyStart: keyStart, keyEnd: len(w.buf)})
	w.live++
	*ref = opRef{turn: w.turn, i: int32(len(w.ops) - 1), born: born}
	w.buf = append(w.buf, recordVersion)
}

func (w *Writes) end() { w.ops[len(w.ops)-1].valueEnd = len(w.buf) }

func (w *Writes) del(ref *opRef, existed bool, keyStart int) {
	if w.supersede(ref, existed) {
		w.buf = w.buf[:keyStart] // created and deleted within the turn
		*ref = opRef{}
		return
	}
	w.ops = append(w.ops, writeOp{del: true, keyStart: keyStart, keyEnd: len(w.buf), valueEnd: len(w.buf)})
	w.live++
	*ref = opRef{turn: w.turn, i: int32(len(w.ops) - 1)}
}
