package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The replica's database holds the core's records (engine/record.go) and,
// under engine.ForeignPrefix (0x00), which no record key begins with,
// raft's state:
//
//	key                     value
//	0x00 'i'                the replica's id (uvarint): there is a replica here
//	0x00 'h'                raft's HardState (protobuf)
//	0x00 's'                the log's snapshot: its SnapshotMetadata (index,
//	                        term, ConfState; protobuf); entries up to its index
//	                        are compacted away, and its data is the core at
//	                        the applied index (see below)
//	0x00 'a'                the applied state (see appliedState)
//	0x00 'c'                the group's configuration (ConfState; protobuf) as
//	                        of the applied index: the snapshot's until a
//	                        membership change is applied
//	0x00 'e' index(BE64)    a log entry (protobuf), from the snapshot's index + 1
//	0x00 'm' id(BE64)       what a member added through AddMember carries
//	                        (its addresses, opaque here), as of the applied
//	                        index; part of the replicated state
//
// Every Ready that changes anything is one synced batch: the new entries
// (and the deletion of the entries they replace), the hard state, the
// core's writes for every entry applied, the applied state and, when the
// log is compacted or a snapshot installed, the new snapshot metadata and
// the deletions. So the database always holds the core exactly as of the
// applied index it records.
var (
	keyID       = []byte{engine.ForeignPrefix, 'i'}
	keyHard     = []byte{engine.ForeignPrefix, 'h'}
	keySnap     = []byte{engine.ForeignPrefix, 's'}
	keyApplied  = []byte{engine.ForeignPrefix, 'a'}
	keyConf     = []byte{engine.ForeignPrefix, 'c'}
	entryPrefix = []byte{engine.ForeignPrefix, 'e'}
	entriesEnd  = []byte{engine.ForeignPrefix, 'e' + 1}
	memberStart = []byte{engine.ForeignPrefix, 'm'}
	memberEnd   = []byte{engine.ForeignPrefix, 'm' + 1}
)

func memberKey(id uint64) []byte { return binary.BigEndian.AppendUint64(memberStart[:2:2], id) }

func entryKey(index uint64) []byte { return binary.BigEndian.AppendUint64(entryPrefix[:2:2], index) }

// appliedState is what the replica keeps beside the core's records: the
// applied index, the core's clock there (the records hold it only as of
// the last batch with writes; a tick entry may have moved it since), the
// term of the last failover entry applied, and the count of this
// replica's proposals (so that a restarted replica never reuses a
// ProposalID that is in some log).
//
//	version 1 byte, applied uvarint, applied term uvarint, clock varint,
//	failover term uvarint, proposals uvarint
type appliedState struct {
	index, term uint64
	now         spec.Time
	failover    uint64
	seq         uint64
}

const appliedVersion = 1

func (a *appliedState) append(b []byte) []byte {
	b = append(b, appliedVersion)
	b = binary.AppendUvarint(b, a.index)
	b = binary.AppendUvarint(b, a.term)
	b = binary.AppendVarint(b, int64(a.now))
	b = binary.AppendUvarint(b, a.failover)
	return binary.AppendUvarint(b, a.seq)
}

func (a *appliedState) decode(b []byte) error {
	if len(b) == 0 || b[0] != appliedVersion {
		return errors.New("replica: applied state: unknown version")
	}
	d := decoder{b: b[1:]}
	a.index, a.term = d.uvarint(), d.uvarint()
	a.now = spec.Time(d.varint())
	a.failover, a.seq = d.uvarint(), d.uvarint()
	return d.done("applied state")
}

// A snapshot's data is the core at the snapshot's index, exactly: the clock
// and the failover term of appliedState, then every record of the core, in
// key order, each length-prefixed, then the members' data (0x00 'm' keys),
// alike. It is built from the store right after
// the batch that reached that index, so it is what a restart would load.
// Its size is bounded by the limits (spec.Limits bounds sessions, replies,
// resources, locks, values and tombstones, and so the records).
//
//	version 1 byte, clock varint, failover term uvarint,
//	then per record: uvarint len, key, uvarint len, value
const snapVersion = 1

// snapshotData encodes the core as the store holds it now.
func (r *Replica) snapshotData() ([]byte, error) {
	b := []byte{snapVersion}
	b = binary.AppendVarint(b, int64(r.core.Now()))
	b = binary.AppendUvarint(b, r.appliedFailover)
	put := func(key, value []byte) error {
		b = binary.AppendUvarint(b, uint64(len(key)))
		b = append(b, key...)
		b = binary.AppendUvarint(b, uint64(len(value)))
		b = append(b, value...)
		return nil
	}
	if err := r.store.Records(put); err != nil {
		return nil, err
	}
	err := r.store.Scan(memberStart, memberEnd, put)
	return b, err
}

// loadMembers reads the members' data from the store.
func loadMembers(st *engine.Store) (map[uint64][]byte, error) {
	m := map[uint64][]byte{}
	err := st.Scan(memberStart, memberEnd, func(key, value []byte) error {
		if len(key) != 10 {
			return fmt.Errorf("replica: member key %x: corrupt", key)
		}
		m[binary.BigEndian.Uint64(key[2:])] = slices.Clone(value)
		return nil
	})
	return m, err
}

// decodeSnapshot reads a snapshot's header and calls f for each record.
func decodeSnapshot(data []byte, f func(key, value []byte) error) (now spec.Time, failover uint64, err error) {
	if len(data) == 0 || data[0] != snapVersion {
		return 0, 0, errors.New("replica: snapshot: unknown version")
	}
	d := decoder{b: data[1:]}
	now, failover = spec.Time(d.varint()), d.uvarint()
	for d.err == nil && len(d.b) > 0 {
		key := d.bytes()
		value := d.bytes()
		if d.err == nil && f != nil {
			if err := f(key, value); err != nil {
				return 0, 0, err
			}
		}
	}
	return now, failover, d.done("snapshot")
}

// stored is what a replica's database holds of raft's state.
type stored struct {
	id      uint64
	hard    *raftpb.HardState
	snap    *raftpb.SnapshotMetadata
	conf    *raftpb.ConfState // as of the applied index
	applied appliedState
	entries []*raftpb.Entry
}

// bootstrap writes a new group member's initial state in one synced batch:
// the log begins with a snapshot at index 1, term 1, of the empty core,
// with voters as its configuration. With no voters it is a member joining
// a running group: an empty log at index 0 and no configuration, until the
// leader sends it a snapshot.
func bootstrap(st *engine.Store, id uint64, voters []uint64) error {
	b, err := st.NewBatch()
	if err != nil {
		return err
	}
	index := uint64(0)
	if len(voters) > 0 {
		index = 1
	}
	conf := &raftpb.ConfState{Voters: voters}
	meta := &raftpb.SnapshotMetadata{Index: new(index), Term: new(index), ConfState: conf}
	hard := &raftpb.HardState{Term: new(index), Commit: new(index)}
	applied := appliedState{index: index, term: index}
	for _, kv := range []struct {
		key   []byte
		value []byte
	}{
		{keyID, binary.AppendUvarint(nil, id)},
		{keySnap, mustMarshal(meta)},
		{keyConf, mustMarshal(conf)},
		{keyHard, mustMarshal(hard)},
		{keyApplied, applied.append(nil)},
	} {
		if err := b.Put(kv.key, kv.value); err != nil {
			b.Close()
			return err
		}
	}
	return b.Commit()
}

// load reads raft's state from the store; ok is false if it holds no
// replica.
func load(st *engine.Store) (s stored, ok bool, err error) {
	v, ok, err := st.Get(keyID)
	if err != nil || !ok {
		return s, false, err
	}
	var n int
	if s.id, n = binary.Uvarint(v); n <= 0 || n != len(v) {
		return s, false, errors.New("replica: stored id: corrupt")
	}
	s.hard, s.snap, s.conf = &raftpb.HardState{}, &raftpb.SnapshotMetadata{}, &raftpb.ConfState{}
	for _, kv := range []struct {
		key []byte
		m   proto.Message
	}{{keyHard, s.hard}, {keySnap, s.snap}, {keyConf, s.conf}} {
		v, ok, err := st.Get(kv.key)
		if err == nil && !ok {
			err = fmt.Errorf("key %q missing", kv.key)
		}
		if err == nil {
			err = proto.Unmarshal(v, kv.m)
		}
		if err != nil {
			return s, false, fmt.Errorf("replica: stored raft state: %w", err)
		}
	}
	v, ok, err = st.Get(keyApplied)
	if err == nil && !ok {
		err = errors.New("replica: applied state missing")
	}
	if err == nil {
		err = s.applied.decode(v)
	}
	if err != nil {
		return s, false, err
	}
	next := s.snap.GetIndex() + 1
	err = st.Scan(entryKey(next), entriesEnd, func(key, value []byte) error {
		ent := &raftpb.Entry{}
		if err := proto.Unmarshal(value, ent); err != nil {
			return fmt.Errorf("replica: stored entry %x: %w", key, err)
		}
		if ent.GetIndex() != next || binary.BigEndian.Uint64(key[2:]) != next {
			return fmt.Errorf("replica: stored entry %d where %d was due", ent.GetIndex(), next)
		}
		next++
		s.entries = append(s.entries, ent)
		return nil
	})
	if err != nil {
		return s, false, err
	}
	// (A planted bug applies entries before commit, and stores that.)
	beyondCommit := s.applied.index > s.hard.GetCommit() && !(bugzooOn && planted("apply-uncommitted"))
	if a := s.applied.index; a < s.snap.GetIndex() || a > next-1 || beyondCommit {
		return s, false, fmt.Errorf("replica: applied index %d outside the log [%d, %d] or beyond commit %d",
			a, s.snap.GetIndex(), next-1, s.hard.GetCommit())
	}
	return s, true, nil
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("replica: marshal %T: %v", m, err)) // our own messages always marshal
	}
	return b
}

// maxIndex bounds the entry keys of a deletion to the end of the log.
const maxIndex = math.MaxUint64
