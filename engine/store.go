package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

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
	db *pebble.DB

	mu     sync.Mutex
	failed error
}

// Applied is a batch handed to the log, perhaps not yet durable.
type Applied struct {
	b    *pebble.Batch
	wait bool // false: committed without sync (a planted bug)
}

// ErrStopped is returned, wrapped, by every call after a write failed.
var ErrStopped = errors.New("engine stopped after a failed write")

// fatalError carries a Pebble Fatalf out of the commit as a panic, so that a
// failed commit stops this store instead of exiting the process.
type fatalError struct{ msg string }

// storeLogger routes Pebble's messages to slog; Fatalf panics with a
// fatalError that Commit recovers.
type storeLogger struct{ log *slog.Logger }

func (l storeLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}

func (l storeLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...))
}

func (l storeLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg)
	panic(fatalError{msg})
}

// OpenStore opens (or creates) the store in dir on fs. log may be nil.
func OpenStore(fs vfs.FS, dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := &pebble.Options{FS: fs, Logger: storeLogger{log}}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Load rebuilds the core from every record in the store, as a restart at
// now (see Restore).
func (s *Store) Load(lim spec.Limits, now spec.Time) (*Core, error) {
	c, err := Restore(lim, now, func(f func(key, value []byte) error) error {
		it, err := s.db.NewIter(nil)
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
	})
	if err != nil {
		return nil, fmt.Errorf("store: load: %w", err)
	}
	return c, nil
}

// Commit writes w in one batch and syncs it. It returns only once the batch
// is durable, or with an error after which the store is stopped.
func (s *Store) Commit(w *Writes) error {
	a, err := s.Apply(w)
	if err != nil {
		return err
	}
	return s.Synced(a)
}

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
	if *err != nil && !errors.Is(*err, ErrStopped) {
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
		s.failed = fmt.Errorf("%w: %w", ErrStopped, err)
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
