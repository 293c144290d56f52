package replica

import (
	"log/slog"

	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Config configures a replica. Every replica of a group gets the same Peers
// and Limits.
//
// This file is one of the package's edges for the lint: it names the file
// system and the logger, which the store (engine.Store) uses; the replica
// itself does no I/O but through the store.
type Config struct {
	ID    uint64   // this replica's raft id, > 0
	Peers []uint64 // the ids of every voter, this one included (a restart takes them from the store)
	// Join makes a replica that joins a running group: it starts empty,
	// with no voters, and waits for the leader (which AddMember told of it)
	// to send it a snapshot; Peers is not read.
	Join   bool
	Limits spec.Limits
	// ElectionTick is the number of Ticks a follower waits without hearing
	// from a leader before it campaigns; raft adds a random jitter of up to
	// as much again. HeartbeatTick is the number of Ticks between a leader's
	// heartbeats. Zero means the default (10 and 1).
	ElectionTick, HeartbeatTick int

	// FS and Dir are where the replica's Pebble database lives: the core's
	// records and raft's log, hard state and applied index. A nil FS is a
	// fresh vfs.NewMem() (a replica that cannot outlive its process); an
	// empty Dir is "replica". New bootstraps a new group member when the
	// directory holds no replica, and restarts from it when it does.
	FS  vfs.FS
	Dir string
	// CompactAfter is how many applied entries the log keeps beyond its
	// last snapshot before the replica takes a new snapshot at its applied
	// index and drops the entries before it. Zero means 4096.
	CompactAfter uint64
	// Log receives the store's messages (optional).
	Log *slog.Logger
}

// storeFS returns the file system and directory to open the store in.
func (cfg *Config) storeFS() (vfs.FS, string) {
	fs, dir := cfg.FS, cfg.Dir
	if fs == nil {
		fs = vfs.NewMem()
	}
	if dir == "" {
		dir = "replica"
	}
	return fs, dir
}
