package peers

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/linearizability"
	"github.com/bouncer-dlm/bouncer/spec"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return epoch.Add(time.Duration(ms) * time.Millisecond) }

func sid(b byte) spec.SessionID { return spec.SessionID{b} }

// pauseHistory is a client-pause history as two clients record it: client
// 0 holds r0 and its lease runs out (at 3000 ms by its count) while it is
// paused; client 1 is granted r0 after that. withExpiry false leaves out
// client 0's expiry.
func pauseHistory(t *testing.T, withExpiry bool) []linearizability.Entry {
	t.Helper()
	var b0, b1 bytes.Buffer
	r0, r1 := NewRecorder(&b0, 0, epoch), NewRecorder(&b1, 1, epoch)
	r0.Acquire(sid(1), "r0", time.Second, at(10), at(20), Granted(5))
	r1.Acquire(sid(2), "r0", 10*time.Second, at(30), at(3500), Granted(9))
	if withExpiry {
		r0.Expire(sid(1), []string{"r0"}, at(3000), time.Time{})
	}
	r1.Release(sid(2), "r0", at(3600), at(3610), Refused(spec.OK))
	r1.Close(sid(2), []string{"r0"}, at(3700), at(3710), Refused(spec.OK))
	if r0.Err() != nil || r1.Err() != nil {
		t.Fatal(r0.Err(), r1.Err())
	}
	h, err := linearizability.ReadHistory(strings.NewReader(b0.String() + b1.String()))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// The recorder's lines are the documented format, and a history it wrote
// of a correct pause checks; without the expiry the checker refuses it.
func TestRecorderWritesCheckableHistory(t *testing.T) {
	h := pauseHistory(t, true)
	if len(h) != 5 {
		t.Fatalf("%d entries, want 5", len(h))
	}
	a := h[0]
	if a.Input.Op != spec.OpAcquire || a.Input.Request != 1 || a.Input.Mode != spec.EX || a.Output.Mode != spec.EX ||
		a.Output.Token != 5 || a.Call != spec.Time(10*time.Millisecond) || a.Return != spec.Time(20*time.Millisecond) {
		t.Fatalf("acquire entry: %+v", a)
	}
	if e := h[1]; !e.Expiry() || e.Known || e.Call != spec.Time(3000*time.Millisecond) || e.Return != linearizability.Never {
		t.Fatalf("expiry entry: %+v", e)
	}
	if e := h[3]; e.Input.Request != 2 || e.Input.Op != spec.OpRelease {
		t.Fatalf("release entry: %+v (request ids count per session)", e)
	}
	if v := linearizability.Check(h, 10*time.Second); !v.OK() {
		t.Fatalf("check: %s", v.String())
	}
	if v := linearizability.Check(pauseHistory(t, false), 10*time.Second); v.Verdict != linearizability.Illegal {
		t.Fatalf("without the expiry: %s, want Illegal", v.String())
	}
}

// An unknown outcome is written without a return, so the checker may
// place it anywhere after its call, or nowhere.
func TestRecorderUnknownOutcome(t *testing.T) {
	var b bytes.Buffer
	r := NewRecorder(&b, 2, epoch)
	r.Acquire(sid(3), "r1", time.Second, at(5), at(6), Unknown)
	if strings.Contains(b.String(), `"return"`) || !strings.Contains(b.String(), `"client":2`) {
		t.Fatalf("unknown acquire written as %s", b.String())
	}
	h, err := linearizability.ReadHistory(&b)
	if err != nil || len(h) != 1 || h[0].Known || h[0].Return != linearizability.Never {
		t.Fatalf("read back %+v, %v", h, err)
	}
}

// Grants without tokens (Redis) are numbered per resource in the order
// they were answered; then a double grant is still caught.
func TestNumberGrants(t *testing.T) {
	var b bytes.Buffer
	r := NewRecorder(&b, 0, epoch)
	r.Acquire(sid(1), "r0", time.Second, at(0), at(10), Granted(0))
	r.Acquire(sid(2), "r1", time.Second, at(0), at(12), Granted(0))
	r.Release(sid(1), "r0", at(20), at(21), Refused(spec.OK))
	r.Acquire(sid(3), "r0", time.Second, at(15), at(30), Granted(0))
	h, err := linearizability.ReadHistory(&b)
	if err != nil {
		t.Fatal(err)
	}
	NumberGrants(h)
	if h[0].Output.Token != 1 || h[1].Output.Token != 1 || h[3].Output.Token != 2 {
		t.Fatalf("tokens %d %d %d, want 1 1 2", h[0].Output.Token, h[1].Output.Token, h[3].Output.Token)
	}
	if v := linearizability.Check(h, 10*time.Second); !v.OK() {
		t.Fatalf("check: %s", v.String())
	}
	h[3].Call, h[3].Return = spec.Time(11*time.Millisecond), spec.Time(12*time.Millisecond) // granted while sid(1) held r0
	if v := linearizability.Check(h, 10*time.Second); v.Verdict != linearizability.Illegal {
		t.Fatalf("double grant: %s, want Illegal", v.String())
	}
}

// PlantDoubleGrant turns a correct history into one the checker refuses.
func TestPlantDoubleGrant(t *testing.T) {
	var b bytes.Buffer
	r := NewRecorder(&b, 0, epoch)
	r.Acquire(sid(1), "r0", time.Second, at(10), at(20), Granted(5))
	r.Release(sid(1), "r0", at(100), at(110), Refused(spec.OK))
	r.Acquire(sid(2), "r0", time.Second, at(200), at(210), Granted(6))
	r.Release(sid(2), "r0", at(300), at(310), Refused(spec.OK))
	h, err := linearizability.ReadHistory(&b)
	if err != nil {
		t.Fatal(err)
	}
	if v := linearizability.Check(h, 10*time.Second); !v.OK() {
		t.Fatalf("before planting: %s", v.String())
	}
	p, ok := PlantDoubleGrant(h)
	if !ok {
		t.Fatal("nothing planted")
	}
	if v := linearizability.Check(p, 10*time.Second); v.Verdict != linearizability.Illegal {
		t.Fatalf("planted: %s, want Illegal", v.String())
	}
	if v := linearizability.Check(h, 10*time.Second); !v.OK() {
		t.Fatalf("the original changed: %s", v.String())
	}
}

func TestJudgeOverlaps(t *testing.T) {
	bs := []Belief{
		{Client: 0, Resource: "r0", Start: 0, End: 100},
		{Client: 1, Resource: "r0", Start: 60, End: 200}, // overlaps client 0 by 40
		{Client: 0, Resource: "r0", Start: 90, End: 95},  // client 0's own: no overlap with itself
		{Client: 2, Resource: "r1", Start: 0, End: 300},  // another resource
		{Client: 2, Resource: "r0", Start: 200, End: 250},
	}
	v := Judge(bs, nil, []string{"r0", "r1"}, 0, 1000)
	// client 1 overlaps client 0's two beliefs (40 and 5); the one that
	// starts as client 1's ends does not overlap.
	if len(v.Overlaps) != 2 || v.OverlapTime != 45 {
		t.Fatalf("overlaps %+v, total %v; want 2 of 45ns", v.Overlaps, v.OverlapTime)
	}
	if o := v.Overlaps[0]; o.A.Client != 0 || o.B.Client != 1 || o.From != 60 || o.To != 100 {
		t.Fatalf("first overlap %+v", o)
	}
}

// A service whose tokens went back (a restart that forgot its counter):
// the fence refuses the writes of the newest grant, which are not stale.
func TestJudgeNewestRefused(t *testing.T) {
	s := NewFencedStore(epoch)
	s.Write(0, "r0", 3, 10) // the grant before the restart
	s.Write(1, "r0", 1, 20) // the newest grant, its token back to 1
	s.Write(1, "r0", 1, 20)
	s.Write(0, "r0", 3, 10) // the older grant's writer goes on: stale, taken
	log, err := s.Log()
	if err != nil {
		t.Fatal(err)
	}
	v := Judge(nil, log, []string{"r0"}, 0, 100)
	if v.NewestRefused != 2 || v.StaleRefused != 0 || v.StaleAccepted != 0 {
		t.Fatalf("%+v: want 2 writes of the newest grant refused and none stale", v)
	}
}

// A hold the service said it no longer had, answered while the client's
// lease held, is a lost acknowledged grant; a hold not read, or read and
// still held, is not.
func TestJudgeLostGrants(t *testing.T) {
	bs := []Belief{
		{Client: 0, Resource: "r0", Start: 0, End: 100, Checked: 90, Held: true},
		{Client: 1, Resource: "r0", Start: 100, End: 200},                         // not read
		{Client: 2, Resource: "r1", Start: 0, End: 100, Checked: 80, Held: false}, // lost
	}
	v := Judge(bs, nil, []string{"r0", "r1"}, 0, 1000)
	if v.Checks != 2 || v.Lost != 1 || v.FirstLost == nil || v.FirstLost.Client != 2 {
		t.Fatalf("checks %d, lost %d, first %+v; want 2, 1, client 2", v.Checks, v.Lost, v.FirstLost)
	}
}

func TestJudgeAvailability(t *testing.T) {
	bs := []Belief{
		{Client: 0, Resource: "r0", Start: 0, End: 50},
		{Client: 1, Resource: "r0", Start: 25, End: 75},
		{Client: 1, Resource: "r0", Start: 30, End: 40},
		{Client: 2, Resource: "r1", Start: 90, End: 150}, // clipped to the window
	}
	v := Judge(bs, nil, []string{"r0", "r1"}, 0, 100)
	if want := (0.75 + 0.10) / 2; v.Availability < want-1e-9 || v.Availability > want+1e-9 {
		t.Fatalf("availability %v, want %v", v.Availability, want)
	}
}

// A write of an older grant after a newer grant's write is stale: refused
// by a fenced store, taken by an unfenced one (token 0).
func TestJudgeStaleWrites(t *testing.T) {
	for _, fenced := range []bool{true, false} {
		s := NewFencedStore(epoch)
		tok := func(n uint64) uint64 {
			if fenced {
				return n
			}
			return 0
		}
		s.Write(0, "r0", tok(5), 10)
		s.Write(1, "r1", tok(7), 15) // another resource: no order with r0
		s.Write(1, "r0", tok(6), 20)
		s.Write(0, "r0", tok(5), 10) // client 0 after a pause
		s.Write(1, "r0", tok(6), 20)
		log, err := s.Log()
		if err != nil {
			t.Fatal(err)
		}
		v := Judge(nil, log, []string{"r0", "r1"}, 0, 100)
		if fenced && (v.StaleRefused != 1 || v.StaleAccepted != 0 || log[3].Accepted) {
			t.Fatalf("fenced: %+v", v)
		}
		if !fenced && (v.StaleAccepted != 1 || v.StaleRefused != 0 || v.FirstStale == nil || v.FirstStale.Client != 0) {
			t.Fatalf("unfenced: %+v", v)
		}
		if v.OutOfOrder != 0 || v.NewestRefused != 0 || v.Writes != 5 {
			t.Fatalf("out of order %d, newest refused %d, writes %d", v.OutOfOrder, v.NewestRefused, v.Writes)
		}
		log[3].Accepted = true // a fence that let it through
		if v := Judge(nil, log, []string{"r0"}, 0, 100); fenced && v.OutOfOrder != 1 {
			t.Fatalf("broken fence: %d out of order, want 1", v.OutOfOrder)
		}
	}
}
