package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Store keeps the core's records in Pebble, through an injected vfs.FS so
// that tests and the simulator run it on vfs.NewCrashableMem and errorfs.
// Every turn's writes go in one batch committed with pebble.Sync. A write
// that fails stops the store for good (fail-stop): it never answers from
// state it could not persist.
//
// A commit is two steps, so that the loop can step the next turn while one
// syncs: Apply hands a turn's batch to Pebble's write-ahead log (in the
// order of the calls, on one goroutine) and Synced waits, on any goroutine,
// until it is durable. Since the log is written in order, a durable batch
// means every earlier batch is durable too.
type Store struct {
	db  *pebble.DB
	fs  vfs.FS
	dir string
	log *storeLogger

	mu     sync.Mutex
	failed error
	full   error // the disk is out of space: writes are refused until a probe succeeds
}

// Applied is a batch handed to the log, perhaps not yet durable.
type Applied struct {
	b    *pebble.Batch
	wait bool // false: committed without sync (a planted bug)
}

// ErrStoreFailed is returned, wrapped, by every call after a write failed
// (the store stopped itself; compare ErrLoopStopped: Stop was called).
var ErrStoreFailed = errors.New("engine stopped after a failed write")

// fatalError carries a Pebble Fatalf out of the commit as a panic, so that a
// failed commit stops this store instead of exiting the process.
type fatalError struct{ msg string }

// storeLogger routes Pebble's messages to slog, at most one error line per
// errorLogEvery: a node on a full disk would otherwise log Pebble's
// retries hundreds of times a second. Fatalf panics with a fatalError
// that Commit recovers.
type storeLogger struct {
	log    *slog.Logger
	errors atomic.Uint64 // Pebble errors reported, logged or not

	mu     sync.Mutex
	last   time.Time
	hushed int
}

// errorLogEvery is how often Pebble's errors are logged at most.
const errorLogEvery = 10 * time.Second

func (l *storeLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}

func (l *storeLogger) Errorf(format string, args ...any) {
	l.errors.Add(1)
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < errorLogEvery {
		l.hushed++
		l.mu.Unlock()
		return
	}
	hushed := l.hushed
	l.last, l.hushed = now, 0
	l.mu.Unlock()
	l.log.Error(fmt.Sprintf(format, args...), "unlogged_since_last", hushed)
}

func (l *storeLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg)
	panic(fatalError{msg})
}

// Pebble's memory, sized for a lock service rather than Pebble's defaults
// (4 MiB memtables, an 8 MiB block cache). The records are small (tens of
// bytes) and every one lives in the core's memory too: the store is read
// only when the node starts (one scan) and when a replica sends a snapshot
// or old log entries, so a block cache buys little, and a memtable needs
// only to gather writes between flushes. With 100,000 held locks a node's
// RSS was 7 MiB lower with these (1 MiB memtable, 1 MiB cache) at the same
// fill rate.
const (
	memTableSize   = 1 << 20
	blockCacheSize = 1 << 20
)

// OpenStore opens (or creates) the store in dir on fs. log may be nil.
func OpenStore(fs vfs.FS, dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{fs: fs, dir: dir, log: &storeLogger{log: log}}
	opts := &pebble.Options{FS: fs, Logger: s.log, EventListener: &pebble.EventListener{
		BackgroundError: s.background}, MemTableSize: memTableSize, CacheSize: blockCacheSize}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	s.db = db
	return s, nil
}

// A full disk is not fail-stop: Pebble's background work (flushes,
// compactions) fails and retries, and a commit that cannot be written is
// never acknowledged. The store notes that the disk is full (from a
// background error or a failed probe); the loop then refuses every input
// with Unavailable, takes no turn (so nothing is stepped that could not be
// persisted), and probes with a synced write until one succeeds. A failed
// write or sync of a commit itself still stops the store: Pebble's log
// writer keeps such an error.

// background notes Pebble's background errors; out of space marks the
// disk full.
func (s *Store) background(err error) {
	s.log.Errorf("store: background: %v", err)
	if IsNoSpace(err) {
		s.mu.Lock()
		s.full = err
		s.mu.Unlock()
	}
}

// IsNoSpace reports whether err says the disk is out of space.
func IsNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// Full returns why the disk is full, or nil.
func (s *Store) Full() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.full
}

// probeBytes is the size of the probe write: enough to need a free block.
const probeBytes = 64 << 10

// Probe writes and syncs a small file beside the store and removes it: it
// tells whether the disk takes writes again. Out of space marks the disk
// full; success clears it.
func (s *Store) Probe() error {
	err := s.probe()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		s.full = nil
	case IsNoSpace(err):
		s.full = err
	}
	return err
}

func (s *Store) probe() error {
	name := s.fs.PathJoin(s.dir, "bouncer-probe")
	f, err := s.fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("store: probe: %w", err)
	}
	_, err = f.Write(make([]byte, probeBytes))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := s.fs.Remove(name); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("store: probe: %w", err)
	}
	return nil
}

// Errors counts the errors Pebble reported.
func (s *Store) Errors() uint64 { return s.log.errors.Load() }

// Load rebuilds the core from every record in the store, as a restart at
// now (see Restore). Keys under ForeignPrefix are not read.
func (s *Store) Load(lim spec.Limits, now spec.Time) (*Core, error) {
	c, err := Restore(lim, now, s.Records)
	if err != nil {
		return nil, fmt.Errorf("store: load: %w", err)
	}
	return c, nil
}

// LoadExact rebuilds exactly the core whose records the store holds and
// whose clock read now (see RestoreExact): a replica's restart.
func (s *Store) LoadExact(lim spec.Limits, now spec.Time) (*Core, error) {
	c, err := RestoreExact(lim, now, s.Records)
	if err != nil {
		return nil, fmt.Errorf("store: load: %w", err)
	}
	return c, nil
}

// Records calls f for each of the core's records in key order (never a key
// under ForeignPrefix). The slices are valid only during the call.
func (s *Store) Records(f func(key, value []byte) error) error {
	return s.Scan(recordsLower, recordsUpper, f)
}

// Scan calls f for each key in [lower, upper) in order, with its value.
// The slices are valid only during the call.
func (s *Store) Scan(lower, upper []byte, f func(key, value []byte) error) error {
	if err := s.failure(); err != nil {
		return err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		if err := f(it.Key(), v); err != nil {
			_ = it.Close()
			return err
		}
	}
	return it.Close()
}

// Get returns a copy of key's value, or ok false if the store has none.
func (s *Store) Get(key []byte) (value []byte, ok bool, err error) {
	if err := s.failure(); err != nil {
		return nil, false, err
	}
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	value = append([]byte(nil), v...)
	return value, true, closer.Close()
}

// Batch is one atomic, synced commit of the core's writes and of keys of
// its embedder's own under ForeignPrefix (a replica's raft log and state):
// NewBatch, any number of Put, Delete, DeleteRange and AddWrites, then
// Commit (or Close to drop it).
type Batch struct {
	s *Store
	b *pebble.Batch
}

// NewBatch begins a batch; it fails once the store has stopped.
func (s *Store) NewBatch() (*Batch, error) {
	if err := s.failure(); err != nil {
		return nil, err
	}
	return &Batch{s: s, b: s.db.NewBatch()}, nil
}

// AddWrites adds the core's writes of one turn (call it before the core's
// Advance: the batch copies them).
func (b *Batch) AddWrites(w *Writes) error {
	return w.Each(func(key, value []byte, del bool) error {
		if del {
			return b.b.Delete(key, nil)
		}
		return b.b.Set(key, value, nil)
	})
}

// Put sets key to value (both copied).
func (b *Batch) Put(key, value []byte) error { return b.b.Set(key, value, nil) }

// Delete deletes key.
func (b *Batch) Delete(key []byte) error { return b.b.Delete(key, nil) }

// DeleteRange deletes every key in [start, end).
func (b *Batch) DeleteRange(start, end []byte) error { return b.b.DeleteRange(start, end, nil) }

// DeleteRecords deletes every record of the core (a replica installing a
// snapshot replaces its core whole).
func (b *Batch) DeleteRecords() error { return b.DeleteRange(recordsLower, recordsUpper) }

// Len returns the size of the batch's contents in bytes.
func (b *Batch) Len() int { return b.b.Len() }

// Commit writes the batch and syncs it (one fsync) before it returns. An
// error stops the store, as any failed write does (fail-stop): nothing
// that depends on the batch may be acknowledged. The batch is closed
// either way.
func (b *Batch) Commit() (err error) {
	defer b.s.guard(&err) // a Pebble Fatalf leaves the batch to Pebble, unclosed
	if err := b.s.failure(); err != nil {
		_ = b.b.Close()
		return err
	}
	err = b.b.Commit(pebble.Sync)
	_ = b.b.Close()
	if err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// Close drops a batch that was not committed.
func (b *Batch) Close() { _ = b.b.Close() }

// Apply writes w to the log in one batch, without waiting for its sync:
// nothing of it may be acknowledged before Synced returns nil. An error
// stops the store.
func (s *Store) Apply(w *Writes) (a *Applied, err error) {
	defer s.guard(&err)
	b, err := s.batch(w)
	if err != nil {
		return nil, err
	}
	if bugzooOn && planted("reply-before-sync") {
		if err := b.Commit(pebble.NoSync); err != nil {
			return nil, fmt.Errorf("store: commit: %w", err)
		}
		return &Applied{b: b}, nil
	}
	if err := s.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		return nil, fmt.Errorf("store: commit: %w", err)
	}
	return &Applied{b: b, wait: true}, nil
}

// batch builds a batch of w's writes.
func (s *Store) batch(w *Writes) (*pebble.Batch, error) {
	if err := s.failure(); err != nil {
		return nil, err
	}
	b := s.db.NewBatch()
	err := w.Each(func(key, value []byte, del bool) error {
		if del {
			return b.Delete(key, nil)
		}
		return b.Set(key, value, nil)
	})
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("store: batch: %w", err)
	}
	return b, nil
}

// guard, deferred by every writing call, turns a Pebble Fatalf (a
// fatalError panic) into an error and stops the store on any error.
func (s *Store) guard(err *error) {
	if p := recover(); p != nil {
		f, ok := p.(fatalError)
		if !ok {
			panic(p)
		}
		*err = fmt.Errorf("store: commit: %s", f.msg)
	}
	if *err != nil && !errors.Is(*err, ErrStoreFailed) {
		*err = s.fail(*err)
	}
}

// Synced waits until a is durable. It may run on another goroutine than
// Apply; an error stops the store.
func (s *Store) Synced(a *Applied) (err error) {
	defer s.guard(&err)
	if a.wait {
		if err := a.b.SyncWait(); err != nil {
			return fmt.Errorf("store: sync: %w", err)
		}
	}
	_ = a.b.Close()
	return nil
}

// fail stops the store for good (the first failure is the one reported).
func (s *Store) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = fmt.Errorf("%w: %w", ErrStoreFailed, err)
	}
	return s.failed
}

// failure is why the store stopped, or nil.
func (s *Store) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Close closes the store. After a failed write it only reports that
// failure: Pebble's state is then unknown and its files are left as a crash
// would leave them.
func (s *Store) Close() error {
	if err := s.failure(); err != nil {
		return err
	}
	return s.db.Close()
}
