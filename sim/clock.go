package sim

import "github.com/bouncer-dlm/bouncer/spec"

// clock is a client's local clock: it starts at an offset and runs at
// 1+ppm/10^6 times the rate of true time (the node's clock is true time).
// The client core works in local time only; the simulator converts.
type clock struct {
	offset spec.Time
	ppm    int64
}

const million = 1_000_000

// floorDiv divides rounding towards minus infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// local is the local time at true time t (t >= 0).
func (c clock) local(t spec.Time) spec.Time {
	return c.offset + t + spec.Time(floorDiv(int64(t)*c.ppm, million))
}

// trueAt is the first true instant at which the local clock reads at least
// l: a local deadline l has passed exactly at true times >= trueAt(l).
func (c clock) trueAt(l spec.Time) spec.Time {
	if l <= c.offset {
		return 0
	}
	t := spec.Time(floorDiv(int64(l-c.offset)*million, million+c.ppm))
	for c.local(t) < l {
		t++
	}
	for t > 0 && c.local(t-1) >= l {
		t--
	}
	return t
}
