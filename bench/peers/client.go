package peers

import (
	"context"
	"errors"
)

// Mode is the mode of a lock request, in the two kinds every system can
// name: exclusive (Bouncer's EX) and shared (Bouncer's PR).
type Mode int

const (
	Exclusive Mode = iota
	Shared
)

func (m Mode) String() string {
	if m == Shared {
		return "shared"
	}
	return "exclusive"
}

// rwPrefix starts the names of the resources that are locked in both modes
// (the shared/exclusive mix). A system whose reader-writer lock is apart
// from its plain mutex (etcd) takes the writer side of the reader-writer
// lock on them, so that writers exclude readers.
const rwPrefix = "rw-"

// ErrBusy is a TryLock that found the resource held.
var ErrBusy = errors.New("peers: resource busy")

// ErrNoShared is a shared request to a system without shared modes.
var ErrNoShared = errors.New("peers: no shared mode")

// Held is a granted lock.
type Held interface {
	Unlock(ctx context.Context) error
}

// Client is one client of a lock service, with its own connection and (where
// the system has them) its own session.
type Client interface {
	// Lock waits until resource is granted in mode.
	Lock(ctx context.Context, resource string, mode Mode) (Held, error)
	// TryLock takes resource exclusively if it is free, else fails with
	// ErrBusy at once.
	TryLock(ctx context.Context, resource string) (Held, error)
	Close() error
}

// Dialer opens a client on the server at addr.
type Dialer func(ctx context.Context, addr string) (Client, error)
