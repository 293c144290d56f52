package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// An entry's data is one turn of the core, encoded so that every replica
// decodes the same inputs and the same time from the same bytes:
//
//	version  1 byte (entryVersion)
//	kind     1 byte (kindTurn, kindTick or kindFailover)
//	time     8 bytes, big-endian: the leader's stamp (spec.Time)
//	proposer uvarint: the replica that proposed it
//	seq      uvarint: the proposer's count of its proposals
//	inputs   uvarint count, then each input (kindTurn only; see putInput)
//
// Only replicas write entries, so a malformed one is a programmer error.
const (
	entryVersion = 1
	kindTurn     = 1 // inputs for Core.Step
	kindTick     = 2 // time alone, for Core.Tick
	kindFailover = 3 // a new leader's first entry, for Core.Failover then Core.Tick
	headerBytes  = 10
)

// entry is a decoded entry.
type entry struct {
	kind     byte
	at       spec.Time
	proposer uint64
	seq      uint64
	inputs   []spec.Input
}

func appendEntry(b []byte, e *entry) []byte {
	b = append(b, entryVersion, e.kind)
	b = binary.BigEndian.AppendUint64(b, uint64(e.at))
	b = binary.AppendUvarint(b, e.proposer)
	b = binary.AppendUvarint(b, e.seq)
	if e.kind == kindTick || e.kind == kindFailover {
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(e.inputs)))
	for i := range e.inputs {
		b = appendInput(b, &e.inputs[i])
	}
	return b
}

const (
	flagNoQueue    = 1 << 0
	flagWriteValue = 1 << 1
	// flagPermits: a semaphore's permits and limit (uvarints) follow the
	// value. Entries written before semaphores never set it.
	flagPermits = 1 << 2
	// flagLabel: an open's label (bytes) follows.
	flagLabel = 1 << 3
)

func appendInput(b []byte, in *spec.Input) []byte {
	b = append(b, byte(in.Op), byte(in.Mode))
	var flags byte
	if in.NoQueue {
		flags |= flagNoQueue
	}
	if in.WriteValue {
		flags |= flagWriteValue
	}
	if in.Permits != 0 || in.Limit != 0 {
		flags |= flagPermits
	}
	if in.Label != "" {
		flags |= flagLabel
	}
	b = append(b, flags)
	b = append(b, in.Session[:]...)
	b = binary.AppendUvarint(b, uint64(in.Request))
	b = binary.AppendUvarint(b, uint64(in.Acked))
	b = binary.AppendVarint(b, int64(in.WaitTimeout))
	b = binary.AppendVarint(b, int64(in.LockDelay))
	b = binary.AppendVarint(b, int64(in.TTL))
	b = binary.AppendUvarint(b, uint64(len(in.Resource)))
	b = append(b, in.Resource...)
	b = binary.AppendUvarint(b, uint64(len(in.Value)))
	b = append(b, in.Value...)
	if flags&flagPermits != 0 {
		b = binary.AppendUvarint(b, uint64(in.Permits))
		b = binary.AppendUvarint(b, uint64(in.Limit))
	}
	if flags&flagLabel != 0 {
		b = binary.AppendUvarint(b, uint64(len(in.Label)))
		b = append(b, in.Label...)
	}
	return b
}

// entryTime returns the stamp of an entry's data without decoding the rest.
func entryTime(data []byte) spec.Time {
	if len(data) < headerBytes || data[0] != entryVersion {
		panic(fmt.Sprintf("replica: entry of %d bytes, version %d: not ours", len(data), data[0]))
	}
	return spec.Time(binary.BigEndian.Uint64(data[2:headerBytes]))
}

// decodeEntry decodes data into e, reusing e.inputs. It panics on bytes
// that no replica wrote.
func decodeEntry(data []byte, e *entry) {
	d := decoder{b: data}
	if v := d.byte(); v != entryVersion {
		panic(fmt.Sprintf("replica: entry version %d, want %d", v, entryVersion))
	}
	e.kind = d.byte()
	e.at = spec.Time(d.u64())
	e.proposer, e.seq = d.uvarint(), d.uvarint()
	e.inputs = e.inputs[:0]
	switch e.kind {
	case kindTick, kindFailover:
	case kindTurn:
		n := d.uvarint()
		if n == 0 || n > uint64(len(d.b)) {
			panic(fmt.Sprintf("replica: entry with %d inputs in %d bytes", n, len(data)))
		}
		for range n {
			e.inputs = append(e.inputs, d.input())
		}
	default:
		panic(fmt.Sprintf("replica: entry kind %d", e.kind))
	}
	if err := d.done("entry"); err != nil {
		panic(err) // only replicas write entries
	}
}

// decoder reads the fields of an entry, a snapshot or the stored applied
// state, remembering the first error (after which it reads zeros).
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) need(n int) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.fail()
		return make([]byte, max(n, 0))
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) byte() byte { return d.need(1)[0] }

func (d *decoder) u64() uint64 { return binary.BigEndian.Uint64(d.need(8)) }

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if d.err != nil || n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// uint32 reads a uvarint that must fit in 32 bits.
func (d *decoder) uint32() uint32 {
	v := d.uvarint()
	if v > 1<<32-1 {
		d.fail()
		return 0
	}
	return uint32(v)
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if d.err != nil || n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	return d.need(int(n))
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errors.New("cut short")
	}
	d.b = nil
}

// done returns the first error, or one if bytes remain, naming what.
func (d *decoder) done(what string) error {
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("replica: %s: %w", what, d.err)
	}
	return nil
}

func (d *decoder) input() spec.Input {
	in := spec.Input{Op: spec.Op(d.byte()), Mode: spec.Mode(d.byte())}
	flags := d.byte()
	in.NoQueue, in.WriteValue = flags&flagNoQueue != 0, flags&flagWriteValue != 0
	copy(in.Session[:], d.need(len(in.Session)))
	in.Request, in.Acked = spec.RequestID(d.uvarint()), spec.RequestID(d.uvarint())
	in.WaitTimeout = time.Duration(d.varint())
	in.LockDelay = time.Duration(d.varint())
	in.TTL = time.Duration(d.varint())
	in.Resource = string(d.bytes())
	if v := d.bytes(); len(v) > 0 {
		in.Value = append([]byte(nil), v...) // the core keeps values: never alias the log
	}
	if flags&flagPermits != 0 {
		in.Permits, in.Limit = d.uint32(), d.uint32()
	}
	if flags&flagLabel != 0 {
		in.Label = string(d.bytes())
	}
	return in
}
