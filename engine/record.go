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
//	"m"                                  meta: token-max, order seq, tombstone seq, now
//	"s" session-id                       session: ttl, label [, deadline] (the deadline only under Core.WriteDeadlines)
//	"p" session-id request-id(BE64)      reply: the session's acked floor, the request's digest, a recorded outcome
//	"r" name                             resource: value block, validity, lock-delay
//	"l" uvarint(len name) name session   lock: mode, want, token, queued request, ...
//	"t" seq(BE64)                        tombstone: session id, closed
//
// Session deadlines are not stored (unless Core.WriteDeadlines: a replica's
// core, restored exactly by RestoreExact): recovery gives every session a
// full TTL. Keys that begin with ForeignPrefix are never the core's: a
// store shared with a replica keeps raft's state there, and recovery reads
// only the keys from recordsLower on.
// A session's acknowledgement floor is stored in each reply record written
// (every request that moves the floor also writes its own reply in the same
// batch, and a session always keeps its newest reply), so recovery takes
// the highest floor among a session's replies.
// A resource exists while it has locks or a lock-delay; its record exists
// only once its value, validity or delay has been changed.
const (
	// recordVersion 2 added the request digest to reply records and the
	// clock to the meta record; version 1 records are still read (their
	// digests are 0, which no retry matches; their clock is unknown).
	// Version 3 added the label to session records, the instants of the
	// grant and of the queued request
	// and a semaphore's permits and limit to lock records, and the limit
	// to resource records (older records read as instants 0, a lock
	// resource).
	recordVersion = 3

	prefixMeta      = 'm'
	prefixSession   = 's'
	prefixReply     = 'p'
	prefixResource  = 'r'
	prefixLock      = 'l'
	prefixTombstone = 't'

	// ForeignPrefix begins every key in the store that is not the core's
	// (a replica's raft log, hard state and applied index): Load and
	// Records skip them, and no record key begins with it.
	ForeignPrefix = 0x00
)

// recordsLower and recordsUpper bound the core's keys: every record key
// begins with one of the prefixes above, all in [recordsLower, recordsUpper).
var recordsLower, recordsUpper = []byte{ForeignPrefix + 1}, []byte{0xff}

// errCorrupt marks a record that cannot be decoded.
var errCorrupt = errors.New("corrupt record")

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

func (c *Core) putMeta() {
	w := &c.writes
	k := w.begin()
	w.buf = append(w.buf, prefixMeta)
	w.put(&c.metaRef, true, k)
	w.buf = appendUvarint(w.buf, uint64(c.tokenMax))
	w.buf = appendUvarint(w.buf, c.seq)
	w.buf = appendUvarint(w.buf, c.tombSeq)
	w.buf = appendVarint(w.buf, int64(c.now))
	w.end()
}

// putSession writes s's record: once, when opened (existed false), and
// again whenever its deadline moves if the core writes deadlines.
func (c *Core) putSession(s *session, existed bool) {
	w := &c.writes
	k := w.begin()
	w.buf = append(append(w.buf, prefixSession), s.id[:]...)
	w.put(&s.ref, existed, k)
	w.buf = appendVarint(w.buf, int64(s.ttl))
	w.buf = appendUvarint(w.buf, uint64(len(s.label)))
	w.buf = append(w.buf, s.label...)
	if c.deadlines {
		w.buf = appendVarint(w.buf, int64(s.expiry.at))
	}
	w.end()
}

func (c *Core) deleteSession(s *session) {
	w := &c.writes
	k := w.begin()
	w.buf = append(append(w.buf, prefixSession), s.id[:]...)
	w.del(&s.ref, true, k)
}

const (
	flagPending = 1 << iota
	flagValid
	flagGranted
	flagClosed
)

// putReply writes the recorded outcome r of session s; existed says the
// record was there before (a pending outcome being completed).
func (c *Core) putReply(s *session, r *reply, existed bool) {
	w := &c.writes
	k := w.begin()
	w.buf = appendReplyKey(w.buf, s.id, r.id)
	w.put(&r.ref, existed, k)
	w.buf = appendUvarint(w.buf, uint64(s.acked))
	w.buf = binary.LittleEndian.AppendUint64(w.buf, r.digest)
	var flags byte
	if r.res.Pending {
		flags |= flagPending
	}
	if r.res.ValueValid {
		flags |= flagValid
	}
	w.buf = append(w.buf, byte(r.res.Code), flags, byte(r.res.Mode))
	w.buf = appendUvarint(w.buf, uint64(r.res.Token))
	w.buf = appendBytes(w.buf, []byte(r.res.Detail))
	w.buf = appendBytes(w.buf, r.res.Value)
	w.end()
}

func (c *Core) deleteReply(s *session, r *reply) {
	w := &c.writes
	k := w.begin()
	w.buf = appendReplyKey(w.buf, s.id, r.id)
	w.del(&r.ref, true, k)
}

func (c *Core) putResource(r *resource) {
	w := &c.writes
	k := w.begin()
	w.buf = append(append(w.buf, prefixResource), r.name...)
	x := c.extOf(r)
	w.put(&x.ref, r.stored, k)
	r.stored = true
	var flags byte
	if r.valid {
		flags |= flagValid
	}
	w.buf = append(w.buf, flags)
	w.buf = appendVarint(w.buf, int64(x.delayUntil))
	w.buf = appendBytes(w.buf, x.value)
	w.buf = appendUvarint(w.buf, uint64(x.limit))
	w.end()
}

func (c *Core) deleteResource(r *resource) {
	w := &c.writes
	k := w.begin()
	w.buf = append(append(w.buf, prefixResource), r.name...)
	w.del(&c.extOf(r).ref, r.stored, k)
	r.stored = false
}

func (c *Core) putLock(l *lock) {
	w := &c.writes
	k := w.begin()
	w.buf = appendLockKey(w.buf, l.res.name, l.sess.id)
	w.put(&l.ref, l.stored, k)
	l.stored = true
	var flags byte
	if l.granted {
		flags |= flagGranted
	}
	w.buf = append(w.buf, flags, byte(l.mode), byte(l.want), byte(l.notified))
	w.buf = appendUvarint(w.buf, uint64(l.token))
	w.buf = appendUvarint(w.buf, uint64(l.request))
	var deadline spec.Time
	if l.request != 0 {
		deadline = l.q.timeout.at
	}
	w.buf = appendVarint(w.buf, int64(deadline))
	w.buf = appendVarint(w.buf, int64(l.lockDelay))
	w.buf = appendUvarint(w.buf, l.grantSeq)
	w.buf = appendUvarint(w.buf, l.queueSeq())
	w.buf = appendVarint(w.buf, int64(l.grantedAt))
	var queuedAt spec.Time
	if l.request != 0 {
		queuedAt = l.q.at
	}
	w.buf = appendVarint(w.buf, int64(queuedAt))
	w.buf = appendUvarint(w.buf, uint64(l.permits))
	w.buf = appendUvarint(w.buf, uint64(l.res.ext.limit))
	w.end()
}

func (c *Core) deleteLock(l *lock) {
	w := &c.writes
	k := w.begin()
	w.buf = appendLockKey(w.buf, l.res.name, l.sess.id)
	w.del(&l.ref, l.stored, k)
}

func (c *Core) putTombstone(t *tombstone) {
	w := &c.writes
	k := w.begin()
	w.buf = binary.BigEndian.AppendUint64(append(w.buf, prefixTombstone), t.seq)
	var ref opRef
	w.put(&ref, false, k)
	w.buf = append(w.buf, t.session[:]...)
	var flags byte
	if t.closed {
		flags |= flagClosed
	}
	w.buf = append(w.buf, flags)
	w.end()
}

func (c *Core) deleteTombstone(seq uint64) {
	w := &c.writes
	k := w.begin()
	w.buf = binary.BigEndian.AppendUint64(append(w.buf, prefixTombstone), seq)
	var ref opRef
	w.del(&ref, true, k)
}

// ---- decoding ----

// decoder reads the fields of one record value, remembering the first error.
type decoder struct {
	b       []byte
	version byte
	err     error
}

func newDecoder(value []byte) *decoder {
	d := &decoder{b: value}
	if len(value) == 0 || value[0] < 1 || value[0] > recordVersion {
		d.err = fmt.Errorf("%w: unknown format version", errCorrupt)
		return d
	}
	d.version, d.b = value[0], value[1:]
	return d
}

func (d *decoder) uint64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
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
