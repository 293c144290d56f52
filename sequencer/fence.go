package sequencer

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/bouncer-dlm/bouncer/spec"
)

// Errors of Fence.Admit.
var (
	ErrOtherResource = errors.New("sequencer: for another resource")
	ErrWeakMode      = errors.New("sequencer: mode too weak")
	ErrStale         = errors.New("sequencer: stale token")
)

// FenceResourcesDefault is the number of resources a Fence remembers when
// NewFence is given no bound.
const FenceResourcesDefault = 10_000

// Fence is what a protected service keeps to refuse stale writers: per
// resource, the highest token it has admitted. Admit lets a writer in only
// with a sequencer for that resource, in a mode that excludes every other
// writer, and a token no lower than the highest admitted (an equal token
// is the same grant: the same holder writing again). Verify the sequencer
// first; a Fence trusts what it is given. One Fence serves the locks of
// one node or group: tokens of different lock services do not compare.
//
// Memory is bounded: a Fence remembers at most its bound of resources (a
// small map entry each). When a new resource would pass it, the half with
// the lowest tokens is forgotten and the highest token forgotten becomes
// a floor that every resource it does not remember must reach. That stays
// safe (a forgotten resource's stale holders are below the floor, since a
// token is higher than every token issued before it), at the price of
// refusing a holder whose grant is older than the floor on a resource
// forgotten meanwhile; such a holder takes the lock again.
//
// A Fence is safe for concurrent use.
type Fence struct {
	mu      sync.Mutex
	highest map[string]spec.Token
	floor   spec.Token // every token of a forgotten resource is at most this
	max     int
}

// NewFence returns a Fence that remembers at most resourcesMax resources
// (FenceResourcesDefault if resourcesMax <= 0).
func NewFence(resourcesMax int) *Fence {
	if resourcesMax <= 0 {
		resourcesMax = FenceResourcesDefault
	}
	return &Fence{highest: map[string]spec.Token{}, max: resourcesMax}
}

// Admit lets the holder of s write to resource, which needs mode (PW or
// EX: a fence orders one writer at a time; readers and CW's concurrent
// writers need no fence), or says why not: ErrOtherResource, ErrWeakMode
// (s's mode does not exclude everything mode excludes), ErrStale (a newer
// holder has been admitted). An admitted token becomes the highest for
// resource.
func (f *Fence) Admit(s Sequencer, resource string, mode spec.Mode) error {
	if mode != spec.PW && mode != spec.EX {
		return fmt.Errorf("%w: a fence admits writers, asked for %v: ask for PW or EX", ErrWeakMode, mode)
	}
	if s.Resource != resource {
		return fmt.Errorf("%w: the sequencer is for %s, not %s", ErrOtherResource,
			spec.QuoteName(s.Resource), spec.QuoteName(resource))
	}
	if !s.Mode.Valid() || !spec.Weaker(mode, s.Mode) {
		return fmt.Errorf("%w: %v does not exclude other writers as %v does", ErrWeakMode, s.Mode, mode)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	highest, known := f.highest[resource]
	if !known {
		highest = f.floor
	}
	if s.Token < highest {
		return fmt.Errorf("%w: token %d is lower than %d, already admitted for %s", ErrStale,
			s.Token, highest, spec.QuoteName(resource))
	}
	if !known && len(f.highest) >= f.max {
		f.forgetHalf()
	}
	f.highest[resource] = s.Token
	return nil
}

// Highest returns the highest token admitted for resource (the floor, if
// the Fence does not remember it; 0 before anything was admitted).
func (f *Fence) Highest(resource string) spec.Token {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.highest[resource]; ok {
		return t
	}
	return f.floor
}

// forgetHalf forgets the half of the resources with the lowest tokens and
// raises the floor to the highest of them (under f.mu).
func (f *Fence) forgetHalf() {
	tokens := make([]spec.Token, 0, len(f.highest))
	for _, t := range f.highest {
		// map order: the tokens are sorted next
		tokens = append(tokens, t)
	}
	slices.Sort(tokens)
	cut := tokens[len(tokens)/2]
	for name, t := range f.highest {
		// map order: each entry is judged alone
		if t < cut {
			delete(f.highest, name)
			f.floor = max(f.floor, t)
		}
	}
	if len(f.highest) >= f.max { // many equal tokens: forget at the cut too
		for name, t := range f.highest {
			// map order: each entry is judged alone
			if t <= cut {
				delete(f.highest, name)
				f.floor = max(f.floor, t)
			}
		}
	}
}

// Remembered returns how many resources the Fence remembers (at most its
// bound).
func (f *Fence) Remembered() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.highest)
}
