package engine

import (
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// fakeSystem is a machine's two clocks: the wall clock, which NTP or a VM
// resume may step, and the monotonic clock, which only moves forward.
type fakeSystem struct {
	wall time.Time
	mono time.Duration
}

func (f *fakeSystem) step(wall, mono time.Duration) {
	f.wall = f.wall.Add(wall)
	f.mono += mono
}

// TestMonotonicClockIgnoresWallSteps: the node's leases run on the
// monotonic clock. A wall-clock jump of +1h expires nothing, a jump back
// does not stop expiry, and a restart resumes from the persisted clock. The
// same steps on a clock that reads the wall clock (how the node timed its
// leases before) expire the session at once, which is what this guards.
func TestMonotonicClockIgnoresWallSteps(t *testing.T) {
	sys := &fakeSystem{wall: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	fs := vfs.NewMem()
	opts := NodeOptions{FS: fs, Dir: "db", Limits: spec.DefaultLimits()}
	node, err := OpenNode(opts, 0)
	require.NoError(t, err)
	clock := &MonotonicClock{base: node.Core().Now(), elapsed: func() time.Duration { return sys.mono }}
	wallNow := func() spec.Time { return spec.Time(sys.wall.UnixNano()) }

	id := spec.NamedSession("a")
	res, err := node.Turn(clock.Now(), []spec.Input{{Op: spec.OpOpen, Session: id, TTL: 10 * time.Second}})
	require.NoError(t, err)
	require.Equal(t, spec.OK, res.Replies[0].Code)
	res, err = node.Turn(clock.Now(), []spec.Input{{Op: spec.OpAcquire, Session: id, Request: 1,
		Resource: "r", Mode: spec.EX, WaitTimeout: time.Second}})
	require.NoError(t, err)
	require.Equal(t, spec.OK, res.Replies[0].Code)
	openedWall := wallNow()

	sys.step(time.Hour, time.Second) // NTP steps the wall clock forward an hour
	_, err = node.Turn(clock.Now(), nil)
	require.NoError(t, err)
	require.Equal(t, 1, node.Core().Stats().Sessions, "a wall-clock jump of +1h expired the session")
	require.Greater(t, wallNow().Sub(openedWall), 10*time.Second,
		"on the wall clock, the session's 10s lease would have run out")

	sys.step(-2*time.Hour, 11*time.Second) // and back, while 11s really pass
	_, err = node.Turn(clock.Now(), nil)
	require.NoError(t, err)
	require.Equal(t, 0, node.Core().Stats().Sessions, "a wall-clock jump back stopped expiry")

	// The clock rides in every batch: a restart resumes from it, whatever the
	// machine's clocks say (the grace period then runs from there).
	last := node.Core().Now()
	require.NoError(t, node.Close())
	node, err = OpenNode(opts, 0)
	require.NoError(t, err)
	defer node.Close()
	require.Equal(t, last, node.Core().Now())
}
