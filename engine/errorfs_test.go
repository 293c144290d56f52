package engine_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/spec/spectest"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"pgregory.net/rapid"
)

// walFaults fails the n-th write or sync of the write-ahead log once armed.
type walFaults struct{ countdown atomic.Int64 }

func (w *walFaults) MaybeError(op errorfs.Op) error {
	if op.Kind.ReadOrWrite() != errorfs.OpIsWrite || !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	if w.countdown.Load() > 0 && w.countdown.Add(-1) == 0 {
		return errorfs.ErrInjected
	}
	return nil
}

func (w *walFaults) String() string { return "wal-faults" }

// TestWriteErrorStopsNode: an I/O error while committing a turn stops the
// node: the turn's replies are never delivered, every later turn fails, and
// a restart recovers a state in which nothing acknowledged is lost (the
// failed turn may or may not have reached the disk).
func TestWriteErrorStopsNode(t *testing.T) {
	var stops atomic.Int64
	// Each case leaves a stopped Pebble instance behind: keep the count low.
	withRapidChecks(60, func() {
		rapid.Check(t, func(t *rapid.T) {
			if errorRun(t) {
				stops.Add(1)
			}
		})
	})
	t.Logf("runs that hit an injected error: %d", stops.Load())
	if stops.Load() == 0 {
		t.Fatal("no run hit an injected error")
	}
}

func errorRun(t *rapid.T) bool {
	lim := spectest.SmallLimits()
	g := spectest.NewGen()
	mem := vfs.NewCrashableMem()
	faults := &walFaults{}
	node, err := engine.OpenNode(engine.NodeOptions{FS: errorfs.Wrap(mem, faults), Dir: "db", Limits: lim}, 0)
	if err != nil {
		t.Fatal(err)
	}
	model := spec.NewModel(lim)
	var acked spec.Token
	for i, n := 0, rapid.IntRange(0, 10).Draw(t, "turns"); i < n; i++ {
		turn(t, g, node, model, &acked)
	}
	faults.countdown.Store(int64(rapid.IntRange(1, 3).Draw(t, "fail-at")))
	durable := model.Clone()
	now := g.Advance(t)
	inputs := []spec.Input{g.InputOf(t, spec.OpOpen), g.Input(t), g.Input(t)}
	_, err = node.Turn(now, inputs)
	for _, in := range inputs {
		model.Step(now, in)
	}
	if err == nil {
		faults.countdown.Store(0)
		_ = node.Close()
		return false
	}
	if !errors.Is(err, engine.ErrStoreFailed) {
		t.Fatalf("turn failed with %v, want ErrStoreFailed", err)
	}
	if _, err := node.Turn(now, nil); !errors.Is(err, engine.ErrStoreFailed) {
		t.Fatalf("a turn after the failure gave %v, want ErrStoreFailed", err)
	}
	// The stopped Pebble instance is abandoned, as a dead process would
	// leave it; restart from what a power cut would leave of its files.
	percent := rapid.SampledFrom([]int{0, 100, 50}).Draw(t, "unsynced-kept")
	rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 2))
	image := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: percent, RNG: rng})
	restarted := g.Advance(t)
	node, err = engine.OpenNode(engine.NodeOptions{FS: image, Dir: "db", Limits: lim}, restarted)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer func() { _ = node.Close() }()
	recovered(t, node, []*spec.Model{durable, model}, restarted)
	return true
}
