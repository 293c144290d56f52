package engine_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/require"
)

// fullDisk fails every write with ENOSPC while full is set.
type fullDisk struct{ full atomic.Bool }

func (d *fullDisk) MaybeError(op errorfs.Op) error {
	if d.full.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
		return fmt.Errorf("injected: write %s: %w", op.Path, syscall.ENOSPC)
	}
	return nil
}

func (d *fullDisk) String() string { return "full-disk" }

// TestLoopRefusesOnFullDiskAndRecovers: a node restarted on a full disk
// takes no turn: it answers Unavailable saying why (and says so once), and
// serves again by itself once a probe write succeeds, with everything
// acknowledged before still there.
func TestLoopRefusesOnFullDiskAndRecovers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	disk := &fullDisk{}
	fs := errorfs.Wrap(vfs.NewMem(), disk)
	clock := &fakeClock{}
	node, err := engine.OpenNode(engine.NodeOptions{FS: fs, Dir: "db", Limits: spec.DefaultLimits()}, clock.Now())
	require.NoError(t, err)
	a := spec.NamedSession("a")
	_, err = node.Turn(clock.Now(), []spec.Input{{Op: spec.OpOpen, Session: a, TTL: time.Hour}})
	require.NoError(t, err, "acknowledged before the disk filled")

	disk.full.Store(true)
	told := make(chan error, 4)
	loop := engine.StartLoop(node, engine.LoopOptions{Clock: clock, ProbeInterval: time.Second,
		OnDisk: func(full error) { told <- full }})
	defer func() { _ = loop.Stop() }()
	require.ErrorIs(t, <-told, syscall.ENOSPC, "told once that the disk is full")
	b := spec.NamedSession("b")
	for range 50 {
		r, err := loop.Submit(ctx, spec.Input{Op: spec.OpOpen, Session: b, TTL: time.Hour})
		require.NoError(t, err)
		require.Equal(t, spec.Unavailable, r.Code)
		require.Contains(t, r.Detail, "disk is full")
	}
	require.Empty(t, told, "said once, not per refusal")

	disk.full.Store(false)
	clock.set(clock.Now().Add(time.Second))
	require.NoError(t, <-told, "told that the disk takes writes again")
	r, err := loop.Submit(ctx, spec.Input{Op: spec.OpOpen, Session: b, TTL: time.Hour})
	require.NoError(t, err)
	require.Equal(t, spec.OK, r.Code, r.Detail)
	r, err = loop.Submit(ctx, spec.Input{Op: spec.OpKeepAlive, Session: a})
	require.NoError(t, err)
	require.Equal(t, spec.OK, r.Code, "the session acknowledged before is still there")
	require.False(t, strings.Contains(r.Detail, "disk"))
}
