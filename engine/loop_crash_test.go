package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// TestLoopCrashKeepsAcknowledged: a power cut at any moment while the loop
// runs, with turns pipelined or not, loses nothing the loop acknowledged.
// Sessions take and release try-locks through the loop over Pebble on
// vfs.NewCrashableMem; at a random moment the test takes a crash image that
// keeps only synced data. Every request acknowledged before that moment,
// retried on a node recovered from the image, must get its original
// outcome: the record of an outcome is durable with the change it records.
// A loop that answers before the sync (planted) must be caught.
func TestLoopCrashKeepsAcknowledged(t *testing.T) {
	for _, pipeline := range []int{1, 4} {
		for seed := range 6 {
			lost := loopCrashRun(t, uint64(seed), engine.LoopOptions{Pipeline: pipeline}, false)
			require.Empty(t, lost, "pipeline %d, seed %d", pipeline, seed)
		}
	}
	// The planted loop is crashed while its syncs are held, once it has
	// answered a turn begun since: caught every time, however slow the build.
	for seed := range 3 {
		// DurableEvery out of reach: the loop must not wait for the held
		// syncs to drain its pipeline before it takes more input.
		lost := loopCrashRun(t, uint64(seed), engine.WithEarlyReplies(engine.LoopOptions{Pipeline: 4, DurableEvery: 1 << 20}), true)
		require.NotEmpty(t, lost, "seed %d: replies sent before their sync were not caught", seed)
		t.Logf("planted early replies caught at seed %d: %s", seed, lost[0])
	}
}

type acked struct {
	in  spec.Input
	res spec.Result
}

// loopCrashRun runs one crash and returns the acknowledged outcomes the
// recovered node does not keep. With holdSyncs, every sync is held from
// the first answer until the crash image is taken.
//
// Besides the try-lock sessions, a holder takes resources q0, q1, ... and
// queuers queue behind it, one request per resource, never granted: every
// queued request acknowledged before the crash must still wait in the
// recovered node's queue.
func loopCrashRun(t *testing.T, seed uint64, opts engine.LoopOptions, holdSyncs bool) []string {
	lim := spec.DefaultLimits()
	mem := vfs.NewCrashableMem()
	// Syncs take a millisecond, as on a disk, so that a crash can fall
	// between an early answer and its sync.
	hold := &sync.RWMutex{}
	node, err := engine.OpenNode(engine.NodeOptions{FS: slowSyncFS{mem, hold}, Dir: "db", Limits: lim}, 0)
	require.NoError(t, err)
	loop := engine.StartLoop(node, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var mu sync.Mutex
	var log []acked
	// The crash comes at a random moment after the first acknowledgement
	// (a slow build, -race with the invariant checks, may take a while to
	// give one).
	firstAck, firstOnce := make(chan struct{}), sync.Once{}
	stop := make(chan struct{})
	var wg sync.WaitGroup

	// The holder takes every q resource, and a primer queues on each (so
	// that later PR requests queue without a blocking notification).
	const queues = 200
	holder := spec.NamedSession(fmt.Sprintf("holder%d", seed))
	primer := spec.NamedSession(fmt.Sprintf("primer%d", seed))
	for _, sid := range []spec.SessionID{holder, primer} {
		_, err = loop.Submit(ctx, spec.Input{Op: spec.OpOpen, Session: sid, TTL: time.Minute})
		require.NoError(t, err)
		var setup sync.WaitGroup
		for q := range queues {
			setup.Add(1)
			go func() {
				defer setup.Done()
				in := spec.Input{Op: spec.OpAcquire, Session: sid, Request: spec.RequestID(q + 1),
					Resource: fmt.Sprintf("q%d", q), Mode: spec.EX, NoQueue: true}
				if sid == primer {
					in.Mode, in.NoQueue, in.WaitTimeout = spec.PR, false, time.Minute
				}
				r, err := loop.Submit(ctx, in)
				require.NoError(t, err)
				require.True(t, r.Code == spec.OK, "%v", r)
			}()
		}
		setup.Wait()
	}
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sid := spec.NamedSession(fmt.Sprintf("queuer%d-%d", seed, i))
			if _, err := loop.Submit(ctx, spec.Input{Op: spec.OpOpen, Session: sid, TTL: time.Minute}); err != nil {
				return
			}
			for q := range queues {
				select {
				case <-stop:
					return
				default:
				}
				in := spec.Input{Op: spec.OpAcquire, Session: sid, Request: spec.RequestID(q + 1),
					Resource: fmt.Sprintf("q%d", q), Mode: spec.PR, WaitTimeout: time.Minute}
				r, err := loop.Submit(ctx, in)
				if err != nil || !r.Pending {
					return
				}
				mu.Lock()
				log = append(log, acked{in, r})
				mu.Unlock()
				firstOnce.Do(func() { close(firstAck) })
				time.Sleep(100 * time.Microsecond)
			}
		}()
	}
	const sessions = 8
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sid := spec.NamedSession(fmt.Sprintf("s%d-%d", seed, i))
			submit := func(in spec.Input) spec.Result {
				in.Session = sid
				r, err := loop.Submit(ctx, in)
				if err != nil || r.Code == spec.Unavailable {
					return spec.Refuse(spec.Unavailable, "")
				}
				mu.Lock()
				log = append(log, acked{in, r})
				mu.Unlock()
				firstOnce.Do(func() { close(firstAck) })
				return r
			}
			submit(spec.Input{Op: spec.OpOpen, TTL: time.Minute})
			for req := spec.RequestID(1); req < spec.RequestID(lim.RepliesPerSessionMax)-2; req += 2 {
				select {
				case <-stop:
					return
				default:
				}
				res := fmt.Sprintf("r%d", (uint64(i)+uint64(req))%3)
				r := submit(spec.Input{Op: spec.OpAcquire, Request: req, Resource: res, Mode: spec.EX, NoQueue: true})
				if r.Code == spec.OK {
					submit(spec.Input{Op: spec.OpRelease, Request: req + 1, Resource: res, WriteValue: true,
						Value: []byte(fmt.Sprint(req))})
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	select {
	case <-firstAck:
	case <-time.After(time.Minute):
		t.Fatal("no request acknowledged within a minute")
	}
	if holdSyncs {
		// Released once the crash image is taken. Syncs that passed the
		// hold finish (within a sync's delay); the rest wait, so the turns
		// begun after that, which only a loop answering before its sync
		// answers, stay unsynced. The image is taken once some have been
		// answered, however slow the build: a fixed sleep let a loaded
		// machine take it before any was.
		hold.Lock()
		time.Sleep(5 * syncDelay)
		mu.Lock()
		n0 := len(log)
		mu.Unlock()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			mu.Lock()
			n := len(log)
			mu.Unlock()
			if n >= n0+8 {
				break
			}
		}
	}
	time.Sleep(time.Duration(5+rng.IntN(40)) * time.Millisecond)
	mu.Lock()
	before := slices.Clone(log)
	mu.Unlock()
	image := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	if holdSyncs {
		hold.Unlock()
	}
	close(stop)
	wg.Wait()
	require.NoError(t, loop.Stop())
	require.NotEmpty(t, before, "nothing was acknowledged before the crash")

	recovered, err := engine.OpenNode(engine.NodeOptions{FS: image, Dir: "db", Limits: lim}, 0)
	require.NoError(t, err)
	defer recovered.Close()
	var lost []string
	recorded := map[spec.SessionID]map[spec.RequestID]bool{} // outcomes the recovered node keeps
	for _, ss := range recovered.Core().State().Sessions {
		recorded[ss.ID] = map[spec.RequestID]bool{}
		for _, r := range ss.Replies {
			recorded[ss.ID][r.Request] = true
		}
	}
	for _, a := range before {
		// Nothing is acknowledged here (Acked stays 0), so the node keeps
		// every outcome; one it lost would be worked out anew on a retry,
		// maybe to the same answer, so its record is looked for first.
		if a.in.Op.Mutating() && !recorded[a.in.Session][a.in.Request] {
			lost = append(lost, fmt.Sprintf("%v %s request %d on %q: acknowledged %v, no record of it after the crash",
				a.in.Op, spec.ShortID(a.in.Session), a.in.Request, a.in.Resource, a.res))
			continue
		}
		if a.res.Pending {
			// A queued request: it must still wait in the queue.
			st, _ := recovered.Core().Resource(a.in.Resource)
			if !slices.ContainsFunc(st.Waiting, func(l spec.LockState) bool {
				return l.Session == a.in.Session && l.Request == a.in.Request
			}) {
				lost = append(lost, fmt.Sprintf("%s request %d on %q: acknowledged as queued, not in the queue after the crash",
					spec.ShortID(a.in.Session), a.in.Request, a.in.Resource))
			}
			continue
		}
		res, err := recovered.Turn(recovered.Core().Now(), []spec.Input{a.in})
		require.NoError(t, err)
		got := res.Replies[0]
		if got.Code != a.res.Code || got.Mode != a.res.Mode || got.Token != a.res.Token ||
			string(got.Value) != string(a.res.Value) || got.ValueValid != a.res.ValueValid {
			lost = append(lost, fmt.Sprintf("%v %s request %d on %q: acknowledged %v, after the crash %v",
				a.in.Op, spec.ShortID(a.in.Session), a.in.Request, a.in.Resource, a.res, got))
		}
	}
	return lost
}

// slowSyncFS makes every sync of a file written through it take a
// millisecond longer.
// A sync also waits while hold is write-locked (held by the test).
type slowSyncFS struct {
	vfs.FS
	hold *sync.RWMutex
}

const syncDelay = time.Millisecond

func (fs slowSyncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return slowSyncFile{f, fs.hold}, err
}

func (fs slowSyncFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return slowSyncFile{f, fs.hold}, err
}

func (fs slowSyncFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return slowSyncFile{f, fs.hold}, err
}

type slowSyncFile struct {
	vfs.File
	hold *sync.RWMutex
}

func (f slowSyncFile) wait() {
	f.hold.RLock()
	f.hold.RUnlock()
	time.Sleep(syncDelay)
}

func (f slowSyncFile) Sync() error {
	f.wait()
	return f.File.Sync()
}

func (f slowSyncFile) SyncData() error {
	f.wait()
	return f.File.SyncData()
}

func (f slowSyncFile) SyncTo(length int64) (bool, error) {
	f.wait()
	return f.File.SyncTo(length)
}
