package peers

// The verdicts of the correctness run beside linearizability (which
// `bouncer check` gives): client-view mutual exclusion, writes out of
// grant order at the fenced store, and availability.

import (
	"sort"
	"time"
)

// Belief is a span of time in which a client believed it held a lock
// exclusively: from the grant's answer until it called the release, or
// until its own count of the lease ran out (the last deadline it knew),
// whichever came first, as the simulator's client-view check counts it.
// Times are nanoseconds since the run's epoch.
type Belief struct {
	Client   int    `json:"client"`
	Resource string `json:"resource"`
	Token    uint64 `json:"token"`
	Start    int64  `json:"start"`
	End      int64  `json:"end"`
	Release  int64  `json:"release"` // when it called the release, whatever its lease
	// Checked: when the service answered whether the lock was still held,
	// asked at the end of the hold and answered before the client's count
	// of the lease ran out (0: not asked, or answered too late); Held: its
	// answer.
	Checked int64 `json:"checked,omitempty"`
	Held    bool  `json:"held,omitempty"`
}

// Lost reports whether the service said the lock was gone while the
// client's lease still held: an acknowledged grant lost.
func (b Belief) Lost() bool { return b.Checked != 0 && !b.Held }

// Overlap is two clients that believed at once that they held one lock.
type Overlap struct {
	A, B     Belief
	From, To int64
}

// Verdict is what one run of one system under one fault shows.
type Verdict struct {
	// Overlaps: pairs of beliefs of different clients on one resource that
	// overlap in time; OverlapTime their total overlap.
	Overlaps    []Overlap
	OverlapTime time.Duration
	// StaleAccepted: writes the store took although a write of a later
	// grant of the resource had been taken before (the writer's lock was
	// gone). StaleRefused: such writes that fencing refused, each one a
	// write an unfenced resource would have taken.
	StaleAccepted, StaleRefused int
	// OutOfOrder: writes taken with a token lower than one taken before on
	// the resource (the fence failing).
	OutOfOrder int
	// NewestRefused: writes of the newest grant of the resource that the
	// fence refused, its token lower than an older grant's: the service's
	// tokens went back (a holder locked out of what its lock protects).
	NewestRefused int
	// FirstNewestRefused is the first of them, if any.
	FirstNewestRefused *StoreWrite
	// FirstStale is the first stale write taken, if any.
	FirstStale *StoreWrite
	// Checks: holds whose lock the client asked the service about in
	// time; Lost: those the service said were gone (lost acknowledged
	// grants); FirstLost the first of them.
	Checks, Lost int
	FirstLost    *Belief
	// Availability: the share of the window, averaged over the resources,
	// in which some client believed it held the resource's lock.
	Availability float64
	Writes       int
}

// Judge computes the verdict of a run whose window is [from, to) (history
// times) on resources, from every client's beliefs and the store's log (in
// the order the store applied it).
func Judge(beliefs []Belief, log []StoreWrite, resources []string, from, to int64) Verdict {
	var v Verdict
	by := map[string][]Belief{}
	for i, b := range beliefs {
		if b.Checked != 0 {
			v.Checks++
		}
		if b.Lost() {
			v.Lost++
			if v.FirstLost == nil {
				v.FirstLost = &beliefs[i]
			}
		}
		if b.End > b.Start {
			by[b.Resource] = append(by[b.Resource], b)
		}
	}
	for _, r := range resources {
		bs := by[r]
		sort.Slice(bs, func(i, j int) bool { return bs[i].Start < bs[j].Start })
		for i := range bs {
			for j := i + 1; j < len(bs) && bs[j].Start < bs[i].End; j++ {
				if bs[i].Client == bs[j].Client {
					continue
				}
				o := Overlap{A: bs[i], B: bs[j], From: bs[j].Start, To: min(bs[i].End, bs[j].End)}
				v.Overlaps = append(v.Overlaps, o)
				v.OverlapTime += time.Duration(o.To - o.From)
			}
		}
		if to > from {
			v.Availability += float64(covered(bs, from, to)) / float64(to-from) / float64(len(resources))
		}
	}
	grant, token := map[string]int64{}, map[string]uint64{}
	for i, w := range log {
		v.Writes++
		stale := w.Grant < grant[w.Resource]
		switch {
		case stale && w.Accepted:
			v.StaleAccepted++
			if v.FirstStale == nil {
				v.FirstStale = &log[i]
			}
		case stale:
			v.StaleRefused++
		case !w.Accepted:
			v.NewestRefused++
			if v.FirstNewestRefused == nil {
				v.FirstNewestRefused = &log[i]
			}
		}
		if !w.Accepted {
			continue
		}
		if w.Token < token[w.Resource] {
			v.OutOfOrder++
		}
		token[w.Resource] = max(token[w.Resource], w.Token)
		grant[w.Resource] = max(grant[w.Resource], w.Grant)
	}
	return v
}

// covered is how much of [from, to) the beliefs (sorted by start) cover.
func covered(bs []Belief, from, to int64) int64 {
	var total, end int64 = 0, from
	for _, b := range bs {
		s, e := max(b.Start, end), min(b.End, to)
		if e > s {
			total += e - s
			end = e
		}
	}
	return total
}
