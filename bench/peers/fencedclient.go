package peers

// One client process of the correctness run: it locks a few resources in
// turn, and while it believes it holds a lock it writes to the fenced store
// with the lock's token, recording every request (Recorder) and every span
// of belief.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// lockClient is one client of one system: exclusive locks only, each
// request recorded in the client's history by the implementation, which
// alone knows the system's sessions.
type lockClient interface {
	// Acquire waits up to wait for resource.
	Acquire(ctx context.Context, resource string, wait time.Duration) (*grant, error)
	// Deadline is the latest instant at which the client knows g still
	// holds: its own count of the lease. Zero if it knows the lock lost.
	Deadline(g *grant) time.Time
	// Holds asks the service, by a read, whether g is still held by this
	// client: a lock it acknowledged and has not lost may not be gone.
	Holds(ctx context.Context, g *grant) (bool, error)
	// Release gives g up (or records that it was lost).
	Release(ctx context.Context, g *grant)
	// Close ends the client's session, recording it.
	Close()
}

// grant is a lock a client was granted.
type grant struct {
	resource string
	token    uint64    // 0: the system has none
	at       time.Time // when the grant was answered
	lock     any       // the system's own handle
}

// ClientConfig is one client process's part of a run.
type ClientConfig struct {
	System    string
	Addr      string // the lock service
	Store     string // the fenced store's host:port
	ID        int
	Resources []string
	Epoch     time.Time // the run's time zero, shared by every client
	End       time.Time // stop taking locks then
	Seed      uint64
	TTL       time.Duration // lease of sessions and locks
	Dir       string        // history-ID.jsonl and beliefs-ID.jsonl go here
}

// Per hold: the client checks its lease, prepares its write for
// writePrep (the window in which a pause hurts: checked, not yet
// written), writes, and does so holdWrites times before it releases. A
// hold of about a second, a third of the default TTL, outlasts a server's
// restart, as an application's work under a lock would.
const (
	holdWrites = 10
	writePrep  = 100 * time.Millisecond
	lockWait   = 5 * time.Second
)

// HoldLine is what a client prints on its standard output when it has
// checked its lease and is about to prepare its first write under a lock:
// the moment a pause is scheduled.
const HoldLine = "hold"

// DialLockClient opens a client of system on addr, recording into rec.
func DialLockClient(ctx context.Context, system, addr string, rec *Recorder, ttl time.Duration, seed uint64) (lockClient, error) {
	switch system {
	case "bouncer", "bouncer-3":
		return dialBouncerFenced(ctx, addr, rec, ttl)
	case "etcd", "etcd-3":
		return dialEtcdFenced(ctx, addr, rec, ttl)
	case "redis-default", "redis-always", "redis-fenced":
		return dialRedisFenced(ctx, addr, rec, ttl, seed, system == "redis-fenced")
	}
	return nil, fmt.Errorf("correctness: unknown system %q (want one of %s)", system, strings.Join(CheckSystems, ", "))
}

// RunClient runs one client until cfg.End, then closes it.
func RunClient(ctx context.Context, cfg ClientConfig, stdout io.Writer) error {
	hf, err := os.Create(filepath.Join(cfg.Dir, fmt.Sprintf("history-%d.jsonl", cfg.ID)))
	if err != nil {
		return err
	}
	defer hf.Close()
	bf, err := os.Create(filepath.Join(cfg.Dir, fmt.Sprintf("beliefs-%d.jsonl", cfg.ID)))
	if err != nil {
		return err
	}
	defer bf.Close()
	rec := NewRecorder(hf, cfg.ID, cfg.Epoch)
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.ID)))
	var lc lockClient
	for lc == nil {
		if lc, err = DialLockClient(ctx, cfg.System, cfg.Addr, rec, cfg.TTL, rng.Uint64()); err != nil {
			if time.Now().After(cfg.End) {
				return err
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	store := NewStoreClient(cfg.Store)
	benc := json.NewEncoder(bf)
	for time.Now().Before(cfg.End) && ctx.Err() == nil {
		r := cfg.Resources[rng.IntN(len(cfg.Resources))]
		g, err := lc.Acquire(ctx, r, lockWait)
		if err != nil {
			time.Sleep(50 * time.Millisecond) // a server down: do not spin
			continue
		}
		b := Belief{Client: cfg.ID, Resource: r, Token: g.token, Start: int64(g.at.Sub(cfg.Epoch))}
		last := lc.Deadline(g)
		for k := range holdWrites {
			d := lc.Deadline(g)
			if !time.Now().Before(d) {
				break // the lease may be gone: stop using what the lock protects
			}
			if k > 0 && time.Now().After(cfg.End) {
				break // the run is over: let go
			}
			last = d
			if k == 0 {
				fmt.Fprintln(stdout, HoldLine)
			}
			time.Sleep(writePrep)
			if _, err := store.Write(cfg.ID, r, g.token, b.Start); err != nil {
				return err
			}
		}
		if d := lc.Deadline(g); d.After(last) {
			last = d
		}
		checkHold(ctx, lc, g, &b, cfg.Epoch, last)
		call := time.Now()
		b.End = int64(earlier(call, last).Sub(cfg.Epoch))
		b.Release = int64(call.Sub(cfg.Epoch))
		if !last.After(g.at) {
			b.End = b.Start
		}
		lc.Release(ctx, g)
		if err := benc.Encode(b); err != nil {
			return err
		}
		time.Sleep(time.Duration(rng.Int64N(int64(20 * time.Millisecond))))
	}
	lc.Close()
	return rec.Err()
}

// checkHold asks the service whether g is still held, while the client's
// count of the lease (deadline) says it is, and notes the answer in b if it
// came before the deadline: "not held" then is a lost acknowledged grant.
func checkHold(ctx context.Context, lc lockClient, g *grant, b *Belief, epoch, deadline time.Time) {
	if !time.Now().Before(deadline) {
		return
	}
	cctx, cancel := context.WithDeadline(ctx, deadline)
	held, err := lc.Holds(cctx, g)
	cancel()
	if ret := time.Now(); err == nil && ret.Before(deadline) {
		b.Checked, b.Held = int64(ret.Sub(epoch)), held
	}
}

// earlier is the earlier of a and b.
func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

var errLost = errors.New("correctness: lease lost")
