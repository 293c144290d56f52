package sequencer_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/bouncer-dlm/bouncer/sequencer"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

func seq(resource string, mode spec.Mode, token spec.Token) sequencer.Sequencer {
	return sequencer.Sequencer{Resource: resource, Mode: mode, Token: token, SessionTag: []byte("tagtagta")}
}

// TestFenceRefusesReplayedLower: once a newer holder wrote, the older
// holder's sequencer (a lower token) is refused; the newer one's, again
// or from its same grant (equal token), is admitted.
func TestFenceRefusesReplayedLower(t *testing.T) {
	f := sequencer.NewFence(0)
	require.NoError(t, f.Admit(seq("r", spec.EX, 5), "r", spec.EX))
	require.NoError(t, f.Admit(seq("r", spec.EX, 9), "r", spec.EX))
	require.ErrorIs(t, f.Admit(seq("r", spec.EX, 5), "r", spec.EX), sequencer.ErrStale)
	require.ErrorIs(t, f.Admit(seq("r", spec.EX, 8), "r", spec.EX), sequencer.ErrStale)
	require.NoError(t, f.Admit(seq("r", spec.EX, 9), "r", spec.EX), "the same holder writes again")
	require.Equal(t, spec.Token(9), f.Highest("r"))
	require.NoError(t, f.Admit(seq("other", spec.EX, 1), "other", spec.EX), "each resource has its own highest")
}

// TestFenceRefusesOtherResource: a sequencer for another resource is
// refused, whatever its token, and changes nothing.
func TestFenceRefusesOtherResource(t *testing.T) {
	f := sequencer.NewFence(0)
	require.ErrorIs(t, f.Admit(seq("a", spec.EX, 100), "b", spec.EX), sequencer.ErrOtherResource)
	require.Equal(t, spec.Token(0), f.Highest("b"))
	require.Equal(t, spec.Token(0), f.Highest("a"))
	require.NoError(t, f.Admit(seq("b", spec.EX, 1), "b", spec.EX))
}

// TestFenceRefusesWeakMode: a writer needs PW or EX; a sequencer in a mode
// that lets another writer in is refused, and asking for less than PW is
// a mistake the Fence names.
func TestFenceRefusesWeakMode(t *testing.T) {
	f := sequencer.NewFence(0)
	for _, m := range []spec.Mode{spec.NL, spec.CR, spec.CW, spec.PR} {
		require.ErrorIs(t, f.Admit(seq("r", m, 1), "r", spec.PW), sequencer.ErrWeakMode, m)
		require.ErrorIs(t, f.Admit(seq("r", m, 1), "r", spec.EX), sequencer.ErrWeakMode, m)
		require.ErrorIs(t, f.Admit(seq("r", spec.EX, 1), "r", m), sequencer.ErrWeakMode, "need %v", m)
	}
	require.ErrorIs(t, f.Admit(seq("r", spec.PW, 1), "r", spec.EX), sequencer.ErrWeakMode)
	require.NoError(t, f.Admit(seq("r", spec.PW, 1), "r", spec.PW))
	require.NoError(t, f.Admit(seq("r", spec.EX, 2), "r", spec.PW))
}

// TestFenceBounded: a Fence never remembers more resources than its
// bound, and what it forgets stays fenced by the floor.
func TestFenceBounded(t *testing.T) {
	const bound = 8
	f := sequencer.NewFence(bound)
	for i := range 100 {
		name := fmt.Sprint("r", i)
		require.NoError(t, f.Admit(seq(name, spec.EX, spec.Token(10+i)), name, spec.EX))
		require.LessOrEqual(t, f.Remembered(), bound)
	}
	// r0 was forgotten long ago: its old holder is still refused.
	require.ErrorIs(t, f.Admit(seq("r0", spec.EX, 10), "r0", spec.EX), sequencer.ErrStale)
	// A holder granted after everything the fence forgot is admitted.
	require.NoError(t, f.Admit(seq("r0", spec.EX, 200), "r0", spec.EX))
}

// TestFenceConcurrent: writers racing on one resource (run it with
// -race: the Fence's own lock is what keeps it whole). The highest token
// offered is always admitted, so it ends as the highest; a writer's
// tokens below a token already admitted are refused.
func TestFenceConcurrent(t *testing.T) {
	f := sequencer.NewFence(0)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				tok := spec.Token(i*8 + w)
				err := f.Admit(seq("r", spec.EX, tok), "r", spec.EX)
				if err != nil && f.Highest("r") <= tok {
					t.Errorf("token %d refused (%v) though the highest is %d", tok, err, f.Highest("r"))
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, spec.Token(199*8+7), f.Highest("r"))
	require.ErrorIs(t, f.Admit(seq("r", spec.EX, 199*8+6), "r", spec.EX), sequencer.ErrStale)
}
