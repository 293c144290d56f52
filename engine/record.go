package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// Records: how the core's durable state is laid out as keys and values.
//
//	key                                  value (every value starts with its format version)
//	"m"                                  meta: token-max, order seq, tombstone seq
//	"s" session-id                       session: ttl, acked
//	"p" session-id request-id(BE64)      reply: a recorded outcome
//	"r" name                             resource: value block, validity, lock-delay
//	"l" uvarint(len name) name session   lock: mode, want, token, queued request, ...
//	"t" seq(BE64)                        tombstone: session id, closed
//
// Session deadlines are not stored: recovery gives every session a full TTL.
// A resource exists while it has locks or a lock-delay; its record exists
// only once its value, validity or delay has been changed.
const (
	recordVersion = 1

	prefixMeta      = 'm'
	prefixSession   = 's'
	prefixReply     = 'p'
	prefixResource  = 'r'
	prefixLock      = 'l'
	prefixTombstone = 't'
)

// errCorrupt marks a record that cannot be decoded.
var errCorrupt = errors.New("corrupt record")

// Writes is the batch of durable changes of one turn, in the order they
// were made (a later write of a key overrides an earlier one). It is
// encoded into one reusable buffer, so a steady state allocates nothing.
type Writes struct {
	buf []byte
	ops []writeOp
}

type writeOp struct {
	del              bool
	keyEnd, valueEnd int // offsets into buf; the key starts where the previous op ended
}

// Len returns the number of writes.
func (w *Writes) Len() int { return len(w.ops) }

// Each calls f for every write in order; value is nil for a deletion. The
// slices are valid only until the core's next Advance.
func (w *Writes) Each(f func(key, value []byte, del bool) error) error {
	start := 0
	for _, op := range w.ops {
		key := w.buf[start:op.keyEnd:op.keyEnd]
		var value []byte
		if !op.del {
			value = w.buf[op.keyEnd:op.valueEnd:op.valueEnd]
		}
		if err := f(key, value, op.del); err != nil {
			return err
		}
		start = op.valueEnd
	}
	return nil
}

func (w *Writes) reset() {
	w.buf = w.buf[:0]
	w.ops = w.ops[:0]
}

// begin starts a record; the caller appends the key, then calls value, then
// appends the value, then calls end (or calls del instead of value and end).
func (w *Writes) value() {
	w.ops = append(w.ops, writeOp{keyEnd: len(w.buf)})
	w.buf = append(w.buf, recordVersion)
}

func (w *Writes) end() { w.ops[len(w.ops)-1].valueEnd = len(w.buf) }

func (w *Writes) del() {
	w.ops = append(w.ops, writeOp{del: true, keyEnd: len(w.buf), valueEnd: len(w.buf)})
}

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
func appendVarint(b []byte, v int64) []byte   { return binary.AppendVarint(b, v) }

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendLockKey(b []byte, name string, id spec.SessionID) []byte {
	b = append(b, prefixLock)
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	return append(b, id[:]...)
}

func appendReplyKey(b []byte, id spec.SessionID, req spec.RequestID) []byte {
	b = append(b, prefixReply)
	b = append(b, id[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(req))
}

func (w *Writes) putMeta(tokenMax spec.Token, seq, tombSeq uint64) {
	w.buf = append(w.buf, prefixMeta)
	w.value()
	w.buf = appendUvarint(w.buf, uint64(tokenMax))
	w.buf = appendUvarint(w.buf, seq)
	w.buf = appendUvarint(w.buf, tombSeq)
	w.end()
}

func (c *Core) putSession(s *session) {
	w := &c.writes
	w.buf = append(append(w.buf, prefixSession), s.id[:]...)
	w.value()
	w.buf = appendVarint(w.buf, int64(s.ttl))
	w.buf = appendUvarint(w.buf, uint64(s.acked))
	w.end()
}

func (w *Writes) deleteSession(id spec.SessionID) {
	w.buf = append(append(w.buf, prefixSession), id[:]...)
	w.del()
}

const (
	flagPending = 1 << iota
	flagValid
	flagGranted
	flagClosed
)

func (w *Writes) putReply(id spec.SessionID, req spec.RequestID, r *spec.Result) {
	w.buf = appendReplyKey(w.buf, id, req)
	w.value()
	var flags byte
	if r.Pending {
		flags |= flagPending
	}
	if r.ValueValid {
		flags |= flagValid
	}
	w.buf = append(w.buf, byte(r.Code), flags, byte(r.Mode))
	w.buf = appendUvarint(w.buf, uint64(r.Token))
	w.buf = appendBytes(w.buf, []byte(r.Detail))
	w.buf = appendBytes(w.buf, r.Value)
	w.end()
}

func (w *Writes) deleteReply(id spec.SessionID, req spec.RequestID) {
	w.buf = appendReplyKey(w.buf, id, req)
	w.del()
}

func (c *Core) putResource(r *resource) {
	w := &c.writes
	r.stored = true
	w.buf = append(append(w.buf, prefixResource), r.name...)
	w.value()
	var flags byte
	if r.valid {
		flags |= flagValid
	}
	w.buf = append(w.buf, flags)
	w.buf = appendVarint(w.buf, int64(r.delayUntil))
	w.buf = appendBytes(w.buf, r.value)
	w.end()
}

func (w *Writes) deleteResource(name string) {
	w.buf = append(append(w.buf, prefixResource), name...)
	w.del()
}

func (c *Core) putLock(l *lock) {
	w := &c.writes
	w.buf = appendLockKey(w.buf, l.res.name, l.sess.id)
	w.value()
	var flags byte
	if l.granted {
		flags |= flagGranted
	}
	w.buf = append(w.buf, flags, byte(l.mode), byte(l.want), byte(l.notified))
	w.buf = appendUvarint(w.buf, uint64(l.token))
	w.buf = appendUvarint(w.buf, uint64(l.request))
	var deadline spec.Time
	if l.request != 0 {
		deadline = l.timeout.at
	}
	w.buf = appendVarint(w.buf, int64(deadline))
	w.buf = appendVarint(w.buf, int64(l.lockDelay))
	w.buf = appendUvarint(w.buf, l.grantSeq)
	w.buf = appendUvarint(w.buf, l.queueSeq)
	w.end()
}

func (w *Writes) deleteLock(name string, id spec.SessionID) {
	w.buf = appendLockKey(w.buf, name, id)
	w.del()
}

func (w *Writes) putTombstone(t *tombstone) {
	w.buf = binary.BigEndian.AppendUint64(append(w.buf, prefixTombstone), t.seq)
	w.value()
	w.buf = append(w.buf, t.session[:]...)
	var flags byte
	if t.closed {
		flags |= flagClosed
	}
	w.buf = append(w.buf, flags)
	w.end()
}

func (w *Writes) deleteTombstone(seq uint64) {
	w.buf = binary.BigEndian.AppendUint64(append(w.buf, prefixTombstone), seq)
	w.del()
}

// ---- decoding ----

// decoder reads the fields of one record value, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func newDecoder(value []byte) *decoder {
	d := &decoder{b: value}
	if len(value) == 0 || value[0] != recordVersion {
		d.err = fmt.Errorf("%w: unknown format version", errCorrupt)
		return d
	}
	d.b = value[1:]
	return d
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || uint64(len(d.b)) < n {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	if n == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

func (d *decoder) sessionID() spec.SessionID {
	var id spec.SessionID
	if d.err != nil || len(d.b) < len(id) {
		d.fail()
		return id
	}
	copy(id[:], d.b)
	d.b = d.b[len(id):]
	return id
}

func (d *decoder) mode() spec.Mode {
	m := spec.Mode(d.byte())
	if d.err == nil && !m.Valid() {
		d.fail()
	}
	return m
}

func (d *decoder) duration() time.Duration { return time.Duration(d.varint()) }

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
}

// done returns the first error, or one if bytes remain.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(d.b))
	}
	return d.err
}

func decodeResult(d *decoder) spec.Result {
	var r spec.Result
	r.Code = spec.Code(d.byte())
	flags := d.byte()
	r.Mode = d.mode()
	r.Token = spec.Token(d.uvarint())
	r.Detail = string(d.bytes())
	r.Value = d.bytes()
	r.Pending = flags&flagPending != 0
	r.ValueValid = flags&flagValid != 0
	if d.err == nil && !r.Code.Valid() {
		d.fail()
	}
	return r
}
