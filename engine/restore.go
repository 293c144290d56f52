package engine

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/bouncer-dlm/bouncer/spec"
)

// Restore rebuilds a core from the records its writes left (in any order),
// as a restart at now, or at the clock of the last batch written if that is
// later (the clock never goes back): every session gets a full TTL from
// then (a grace period), while wait deadlines and lock-delays keep their
// instants. Timers
// already due fire at the first Tick, which the caller makes at once.
// records calls its argument for each stored key and value.
func Restore(lim spec.Limits, now spec.Time, records func(func(key, value []byte) error) error) (*Core, error) {
	return restore(lim, now, records, false)
}

// RestoreExact rebuilds exactly the core that wrote these records under
// WriteDeadlines, whose clock read now: every session keeps the deadline
// its record holds, no session gets a grace, and the clock is now (the
// records hold the clock only as of the last batch that had writes, so the
// caller keeps it: a replica stores it with its applied index). This is
// how a replica restarts, and how it installs a snapshot: its core then
// equals every other replica's at the same log index. The restored core
// writes deadlines too. A session record without a deadline, or a clock
// earlier than the records', is an error.
func RestoreExact(lim spec.Limits, now spec.Time, records func(func(key, value []byte) error) error) (*Core, error) {
	return restore(lim, now, records, true)
}

func restore(lim spec.Limits, now spec.Time, records func(func(key, value []byte) error) error, exact bool) (*Core, error) {
	c, err := New(lim)
	if err != nil {
		return nil, err
	}
	c.now, c.deadlines = now, exact
	rs := restoring{exact: exact}
	if err := records(rs.add); err != nil {
		return nil, err
	}
	if err := rs.build(c); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	return c, nil
}

type replyRecord struct {
	session spec.SessionID
	id      spec.RequestID
	acked   spec.RequestID // the session's floor when the record was written
	digest  uint64
	res     spec.Result
}

type resourceRecord struct {
	name       string
	value      []byte
	valid      bool
	delayUntil spec.Time
	limit      uint32
}

type lockRecord struct {
	resource string
	session  spec.SessionID
	lock     lock
	queueSeq uint64
	deadline spec.Time
	queuedAt spec.Time
	limit    uint32
}

// restoring collects decoded records until all are read.
type restoring struct {
	exact      bool // RestoreExact: sessions keep their stored deadlines
	metaSeen   bool
	now        spec.Time // the clock of the last batch written
	tokenMax   spec.Token
	seq        uint64
	tombSeq    uint64
	sessions   []session
	replies    []replyRecord
	resources  []resourceRecord
	locks      []lockRecord
	tombstones []tombstone
}

func (rs *restoring) add(key, value []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: empty key", errCorrupt)
	}
	if key[0] == ForeignPrefix {
		return nil // not the core's (a replica's raft state)
	}
	d := newDecoder(value)
	body := key[1:]
	switch key[0] {
	case prefixMeta:
		rs.metaSeen = true
		rs.tokenMax, rs.seq, rs.tombSeq = spec.Token(d.uvarint()), d.uvarint(), d.uvarint()
		if d.version >= 2 {
			rs.now = spec.Time(d.varint())
		}
	case prefixSession:
		if len(body) != len(spec.SessionID{}) {
			return fmt.Errorf("%w: session key %x", errCorrupt, key)
		}
		s := session{ttl: d.duration()}
		if d.version >= 3 {
			s.label = string(d.bytes())
		}
		s.expiry.index = -1 // no stored deadline
		if d.err == nil && len(d.b) > 0 {
			s.expiry.at, s.expiry.index = spec.Time(d.varint()), 0
		}
		copy(s.id[:], body)
		rs.sessions = append(rs.sessions, s)
	case prefixReply:
		if len(body) != 16+8 {
			return fmt.Errorf("%w: reply key %x", errCorrupt, key)
		}
		r := replyRecord{id: spec.RequestID(binary.BigEndian.Uint64(body[16:]))}
		r.acked = spec.RequestID(d.uvarint())
		if d.version >= 2 {
			r.digest = d.uint64()
		}
		r.res = decodeResult(d)
		copy(r.session[:], body)
		rs.replies = append(rs.replies, r)
	case prefixResource:
		flags := d.byte()
		r := resourceRecord{name: string(body), valid: flags&flagValid != 0, delayUntil: spec.Time(d.varint())}
		r.value = d.bytes()
		if d.version >= 3 {
			r.limit = decodeLimit(d)
		}
		rs.resources = append(rs.resources, r)
	case prefixLock:
		lr, err := decodeLock(body, d)
		if err != nil {
			return fmt.Errorf("%w: lock key %x", err, key)
		}
		rs.locks = append(rs.locks, lr)
	case prefixTombstone:
		if len(body) != 8 {
			return fmt.Errorf("%w: tombstone key %x", errCorrupt, key)
		}
		t := tombstone{seq: binary.BigEndian.Uint64(body), session: d.sessionID(), closed: d.byte()&flagClosed != 0}
		rs.tombstones = append(rs.tombstones, t)
	default:
		return fmt.Errorf("%w: unknown key prefix %q", errCorrupt, key[0])
	}
	if err := d.done(); err != nil {
		return fmt.Errorf("%w in key %x", err, key)
	}
	return nil
}

func decodeLock(body []byte, d *decoder) (lockRecord, error) {
	var lr lockRecord
	n, w := binary.Uvarint(body)
	if w <= 0 || uint64(len(body)-w) != n+16 {
		return lr, errCorrupt
	}
	lr.resource = string(body[w : w+int(n)])
	copy(lr.session[:], body[w+int(n):])
	l := &lr.lock
	flags := d.byte()
	l.granted = flags&flagGranted != 0
	l.mode, l.want = d.mode(), d.mode()
	l.notified = int8(d.byte())
	l.token = spec.Token(d.uvarint())
	l.request = spec.RequestID(d.uvarint())
	lr.deadline = spec.Time(d.varint())
	l.lockDelay = d.duration()
	l.grantSeq, lr.queueSeq = d.uvarint(), d.uvarint()
	if d.version >= 3 {
		l.grantedAt, lr.queuedAt = spec.Time(d.varint()), spec.Time(d.varint())
		l.permits, lr.limit = decodeLimit(d), decodeLimit(d)
	}
	if (lr.limit == 0) != (l.permits == 0) || l.permits > lr.limit {
		return lr, fmt.Errorf("%w: %d permits of a semaphore of %d", errCorrupt, l.permits, lr.limit)
	}
	return lr, nil
}

// decodeLimit reads a semaphore's limit or permits: at most spec.PermitsMax.
func decodeLimit(d *decoder) uint32 {
	v := d.uvarint()
	if v > spec.PermitsMax {
		d.fail()
		return 0
	}
	return uint32(v)
}

func (rs *restoring) build(c *Core) error {
	if !rs.metaSeen && (len(rs.sessions) > 0 || len(rs.locks) > 0) {
		return fmt.Errorf("%w: records without meta", errCorrupt)
	}
	c.tokenMax, c.seq, c.tombSeq = rs.tokenMax, rs.seq, rs.tombSeq
	if rs.exact && c.now < rs.now {
		return fmt.Errorf("%w: clock %v before the records' %v", errCorrupt, c.now, rs.now)
	}
	c.now = max(c.now, rs.now) // the clock never goes back, also across a restart
	for i := range rs.sessions {
		s := c.newSession(rs.sessions[i].id, rs.sessions[i].ttl)
		s.label = rs.sessions[i].label
		if rs.exact {
			if rs.sessions[i].expiry.index < 0 {
				return fmt.Errorf("%w: session %s has no stored deadline", errCorrupt, rs.sessions[i].id)
			}
			c.timers.set(&s.expiry, rs.sessions[i].expiry.at)
			continue
		}
		c.timers.set(&s.expiry, c.now.Add(s.ttl)) // the grace period
		if bugzooOn && planted("no-grace-period") {
			c.timers.set(&s.expiry, c.now)
		}
	}
	sort.Slice(rs.replies, func(i, j int) bool { return rs.replies[i].id < rs.replies[j].id })
	for _, r := range rs.replies {
		s := c.sessions[r.session]
		if s == nil {
			return fmt.Errorf("%w: reply of unknown session %s", errCorrupt, r.session)
		}
		s.replies.buf = append(s.replies.buf, reply{id: r.id, digest: r.digest, res: r.res})
		s.acked = max(s.acked, r.acked)
	}
	for i := range rs.resources {
		rec := &rs.resources[i]
		r := c.useResource(nil, rec.name)
		r.valid, r.stored = rec.valid, true
		if rec.value != nil || rec.delayUntil != 0 || rec.limit != 0 {
			x := c.extOf(r)
			x.value, x.delayUntil, x.limit = rec.value, rec.delayUntil, rec.limit
		}
		if rec.delayUntil != 0 {
			c.timers.set(&r.ext.delay, rec.delayUntil)
		}
	}
	for i := range rs.locks {
		if err := c.restoreLock(&rs.locks[i]); err != nil {
			return err
		}
	}
	if bugzooOn && planted("token-not-persisted") {
		c.tokenMax = 0
		for i := range rs.locks {
			c.tokenMax = max(c.tokenMax, rs.locks[i].lock.token)
		}
	}
	sort.Slice(rs.tombstones, func(i, j int) bool { return rs.tombstones[i].seq < rs.tombstones[j].seq })
	for _, t := range rs.tombstones {
		if c.sessions[t.session] != nil || t.seq > c.tombSeq {
			return fmt.Errorf("%w: tombstone %d of session %s", errCorrupt, t.seq, t.session)
		}
		c.tombstones = append(c.tombstones, t)
		c.tombIndex[t.session] = t.closed
	}
	for name, r := range c.resources {
		// map order: only which corrupt record is reported first
		if r.granted.n == 0 && r.ext.waiting.n == 0 && r.ext.delayUntil == 0 {
			return fmt.Errorf("%w: resource %q has neither locks nor a lock-delay", errCorrupt, name)
		}
	}
	return nil
}

func (c *Core) restoreLock(lr *lockRecord) error {
	s := c.sessions[lr.session]
	if s == nil || c.lockOf(s, lr.resource) != nil {
		return fmt.Errorf("%w: lock on %q of unknown session %s, or twice", errCorrupt, lr.resource, lr.session)
	}
	rec := &lr.lock
	if rec.token > c.tokenMax || rec.grantSeq > c.seq || lr.queueSeq > c.seq || (rec.request != 0) != (lr.queueSeq != 0) {
		return fmt.Errorf("%w: lock on %q of %s is beyond the counters or half queued", errCorrupt, lr.resource, lr.session)
	}
	r := c.resources[lr.resource]
	if r == nil {
		r = c.useResource(nil, lr.resource)
	}
	if lr.limit != r.ext.limit {
		if r.ext.limit != 0 || r.locks > 0 || r.stored {
			return fmt.Errorf("%w: lock on %q names a semaphore of %d, the resource %d", errCorrupt, lr.resource, lr.limit, r.ext.limit)
		}
		c.extOf(r).limit = lr.limit
	}
	l := c.newLock(s, r, rec.mode, rec.permits, rec.lockDelay)
	l.granted, l.want, l.token, l.notified = rec.granted, rec.want, rec.token, rec.notified
	l.grantSeq, l.request, l.stored, l.grantedAt = rec.grantSeq, rec.request, true, rec.grantedAt
	if l.granted {
		r.granted.insertSorted(grantedList, l, func(l *lock) uint64 { return l.grantSeq })
		r.grantedModes[l.mode]++
		if l.permits != 0 {
			r.ext.held += uint64(l.permits) // a semaphore's ext is its own (above)
		}
		c.grantedTotal++
	}
	if l.request == 0 {
		return nil
	}
	part := c.queue(l)
	part.seq, part.at = lr.queueSeq, lr.queuedAt
	x := c.extOf(r)
	q := &x.waiting
	if l.granted {
		q = &x.converting
	}
	q.insertSorted(queueList, l, func(l *lock) uint64 { return l.q.seq })
	s.pending.pushBack(pendingList, l)
	r.ext.wantedModes[l.want]++
	c.queuedTotal++
	c.timers.set(&l.q.timeout, lr.deadline)
	return nil
}
