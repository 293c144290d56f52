package peer

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config configures a Transport. The bounds left zero take their defaults.
type Config struct {
	ID        uint64            // this member's raft id
	ClusterID string            // members refuse a peer of another cluster (carried in every stream's metadata)
	Peers     map[uint64]string // raft id -> peer address host:port, this member's included
	// ServerTLS is the peer server's TLS (nil: plaintext). With ClientCAs
	// and tls.RequireAndVerifyClientCert, a process without the cluster's
	// certificate is refused.
	ServerTLS *tls.Config
	ClientTLS *tls.Config  // used when dialing peers (nil: plaintext)
	Log       *slog.Logger // nil: discard

	QueueMax         int // messages waiting to be sent to one peer (default 4096)
	RecvMax          int // received messages waiting for the driver (default 4096)
	ReportsMax       int // reports waiting for the driver (default 1024)
	MessageBytesMax  int // one encoded message on a stream (default 8 MiB)
	FrameBytesMax    int // one frame (default 16 MiB; at least MessageBytesMax+16)
	FrameMessagesMax int // messages in one frame (default 1024)
	ChunkBytes       int // data in one snapshot chunk (default 1 MiB)
	SnapshotBytesMax int // one encoded MsgSnap (default 1 GiB)
	SnapshotsInMax   int // snapshots being received at once (default 2)
	StreamsMax       int // streams open at once on one connection to the peer port (default 16)

	SnapshotTimeout time.Duration // sending one snapshot, start to end (default 5 min)
	BackoffMin      time.Duration // first wait after a failed stream (default 100 ms)
	BackoffMax      time.Duration // longest wait between attempts (default 5 s)
	DialTimeout     time.Duration // one connection attempt (default 2 s)
	// KeepaliveInterval: a connection idle this long is pinged, and closed
	// if the ping is not answered within as long again (default 10 s).
	KeepaliveInterval time.Duration
}

// Defaults.
const (
	queueMaxDefault          = 4096
	recvMaxDefault           = 4096
	reportsMaxDefault        = 1024
	messageBytesMaxDefault   = 8 << 20
	frameBytesMaxDefault     = 16 << 20
	frameMessagesMaxDefault  = 1024
	chunkBytesDefault        = 1 << 20
	snapshotBytesMaxDefault  = 1 << 30
	snapshotsInMaxDefault    = 2
	streamsMaxDefault        = 16
	snapshotTimeoutDefault   = 5 * time.Minute
	backoffMinDefault        = 100 * time.Millisecond
	backoffMaxDefault        = 5 * time.Second
	dialTimeoutDefault       = 2 * time.Second
	keepaliveIntervalDefault = 10 * time.Second

	// frameOverhead is the room a frame needs beyond its payload: the
	// version byte and two or three uvarints.
	frameOverhead = 16
	// snapshotsQueuedMax is how many MsgSnap may wait for one peer.
	snapshotsQueuedMax = 2
	// backoffResetAfter: a stream that lived this long resets the backoff.
	backoffResetAfter = time.Second
)

// withDefaults checks cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.ID == 0 {
		return cfg, errors.New("peer: Config.ID must not be 0")
	}
	if cfg.ClusterID == "" {
		return cfg, errors.New("peer: Config.ClusterID must not be empty")
	}
	for id, addr := range cfg.Peers {
		if id == 0 || addr == "" {
			return cfg, fmt.Errorf("peer: Config.Peers: member %d at %q: need an id and an address", id, addr)
		}
	}
	setInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	setInt(&cfg.QueueMax, queueMaxDefault)
	setInt(&cfg.RecvMax, recvMaxDefault)
	setInt(&cfg.ReportsMax, reportsMaxDefault)
	setInt(&cfg.MessageBytesMax, messageBytesMaxDefault)
	setInt(&cfg.FrameBytesMax, frameBytesMaxDefault)
	setInt(&cfg.FrameMessagesMax, frameMessagesMaxDefault)
	setInt(&cfg.ChunkBytes, chunkBytesDefault)
	setInt(&cfg.SnapshotBytesMax, snapshotBytesMaxDefault)
	setInt(&cfg.SnapshotsInMax, snapshotsInMaxDefault)
	setInt(&cfg.StreamsMax, streamsMaxDefault)
	setDur(&cfg.SnapshotTimeout, snapshotTimeoutDefault)
	setDur(&cfg.BackoffMin, backoffMinDefault)
	setDur(&cfg.BackoffMax, backoffMaxDefault)
	setDur(&cfg.DialTimeout, dialTimeoutDefault)
	setDur(&cfg.KeepaliveInterval, keepaliveIntervalDefault)
	if cfg.FrameBytesMax < cfg.MessageBytesMax+frameOverhead {
		return cfg, fmt.Errorf("peer: FrameBytesMax %d must be at least MessageBytesMax %d + %d",
			cfg.FrameBytesMax, cfg.MessageBytesMax, frameOverhead)
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		return cfg, fmt.Errorf("peer: BackoffMax %v is less than BackoffMin %v", cfg.BackoffMax, cfg.BackoffMin)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// grpcMsgMax is the largest gRPC message either side accepts: a frame or a
// chunk with its header.
func (cfg Config) grpcMsgMax() int {
	return max(cfg.FrameBytesMax, cfg.ChunkBytes+frameOverhead)
}

// chunksMax is the most chunks one snapshot may have.
func (cfg Config) chunksMax() int {
	return (cfg.SnapshotBytesMax + cfg.ChunkBytes - 1) / cfg.ChunkBytes
}
