package protocol_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/client/protocol"
	"github.com/bouncer-dlm/bouncer/spec"
	"pgregory.net/rapid"
)

// TestBeliefsHeldByNode drives a few session cores against the spec model
// over a network that delays, reorders, drops and duplicates, with perfect
// clocks and no safety margin, and checks at every instant that whatever a
// core believes it holds, the node holds too: the session is live and has
// the lock in a mode at least as strong. (The simulator checks the same
// with drifting clocks and the real engine; this test keeps the core honest
// on its own, with rapid shrinking any counterexample.)
func TestBeliefsHeldByNode(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := newWorld(t)
		for i, n := 0, rapid.IntRange(50, 300).Draw(t, "steps"); i < n; i++ {
			w.step()
			w.check()
		}
	})
}

type flight struct {
	toNode  bool
	client  int
	call    protocol.CallID
	input   spec.Input
	reply   spec.Result
	event   *spec.Event
	arrives spec.Time
}

type world struct {
	t        *rapid.T
	now      spec.Time
	model    *spec.Model
	sessions []*protocol.Session
	owner    map[spec.SessionID]int
	inFlight []flight
	names    int
}

var lim = func() spec.Limits {
	l := spec.DefaultLimits()
	l.TTLMin = time.Second
	return l
}()

func newWorld(t *rapid.T) *world {
	return &world{t: t, model: spec.NewModel(lim), owner: map[spec.SessionID]int{}}
}

func (w *world) newSession() {
	w.names++
	id := spec.NamedSession(fmt.Sprintf("c%d", w.names))
	s, err := protocol.NewSession(id, protocol.Config{TTL: 2 * time.Second, DriftPPM: -1, Margin: -1}, w.now)
	if err != nil {
		w.t.Fatal(err)
	}
	w.owner[id] = len(w.sessions)
	w.sessions = append(w.sessions, s)
}

func (w *world) send(i int) {
	s := w.sessions[i]
	for _, m := range s.Sends(w.now) {
		d := time.Duration(rapid.IntRange(0, 50).Draw(w.t, "delay")) * time.Millisecond
		w.inFlight = append(w.inFlight, flight{toNode: true, client: i, call: m.Call, input: m.Input, arrives: w.now.Add(d)})
	}
	s.Updates()
}

func (w *world) step() {
	t := w.t
	resources := []string{"a", "b"}
	if len(w.sessions) == 0 || rapid.IntRange(0, 30).Draw(t, "new?") == 0 {
		w.newSession()
	}
	i := rapid.IntRange(0, len(w.sessions)-1).Draw(t, "client")
	s := w.sessions[i]
	switch rapid.IntRange(0, 9).Draw(t, "action") {
	case 0, 1:
		ms := rapid.IntRange(1, 100).Draw(t, "advance")
		if rapid.IntRange(0, 20).Draw(t, "long?") == 0 {
			ms = rapid.IntRange(500, 3000).Draw(t, "long")
		}
		w.now = w.now.Add(time.Duration(ms) * time.Millisecond)
	case 2:
		mode := spec.Mode(rapid.IntRange(0, spec.ModeCount-1).Draw(t, "mode"))
		_, _ = s.Acquire(w.now, rapid.SampledFrom(resources).Draw(t, "res"), mode,
			protocol.AcquireOptions{WaitTimeout: time.Second})
	case 3:
		mode := spec.Mode(rapid.IntRange(0, spec.ModeCount-1).Draw(t, "mode"))
		_, _ = s.Convert(w.now, rapid.SampledFrom(resources).Draw(t, "res"), mode,
			protocol.ConvertOptions{NoQueue: rapid.Bool().Draw(t, "try")})
	case 4:
		_, _ = s.Release(w.now, rapid.SampledFrom(resources).Draw(t, "res"), protocol.ReleaseOptions{})
	case 5:
		if rapid.IntRange(0, 5).Draw(t, "close?") == 0 {
			_ = s.Close(w.now)
		} else {
			_, _ = s.Cancel(w.now, rapid.SampledFrom(resources).Draw(t, "res"))
		}
	default:
		for n := rapid.IntRange(1, 8).Draw(t, "deliveries"); n > 0; n-- {
			w.deliver()
		}
	}
	for j := range w.sessions {
		w.sessions[j].Tick(w.now)
		w.send(j)
	}
}

// deliver delivers (or drops, or duplicates) one message that has arrived.
func (w *world) deliver() {
	var ready []int
	for k, f := range w.inFlight {
		if f.arrives <= w.now {
			ready = append(ready, k)
		}
	}
	if len(ready) == 0 {
		return
	}
	k := rapid.SampledFrom(ready).Draw(w.t, "message")
	f := w.inFlight[k]
	fate := rapid.IntRange(0, 9).Draw(w.t, "fate")
	if fate != 9 { // 9: duplicate, leave it in flight
		w.inFlight = append(w.inFlight[:k], w.inFlight[k+1:]...)
	}
	if fate == 0 {
		return // dropped
	}
	if !f.toNode {
		s := w.sessions[f.client]
		if f.event != nil {
			s.Event(w.now, *f.event)
		} else {
			s.Reply(w.now, f.call, f.reply)
		}
		return
	}
	res, evs := w.model.Step(w.now, f.input)
	d := time.Duration(rapid.IntRange(0, 50).Draw(w.t, "delay")) * time.Millisecond
	w.inFlight = append(w.inFlight, flight{client: f.client, call: f.call, reply: res, arrives: w.now.Add(d)})
	for _, e := range evs {
		if c, ok := w.owner[e.Session]; ok {
			e := e
			w.inFlight = append(w.inFlight, flight{client: c, event: &e, arrives: w.now.Add(d)})
		}
	}
}

// check: every lock a core believes it holds, the node holds at least as
// strongly, for a live session.
func (w *world) check() {
	for _, e := range w.model.Tick(w.now) {
		if c, ok := w.owner[e.Session]; ok {
			e := e
			w.inFlight = append(w.inFlight, flight{client: c, event: &e, arrives: w.now})
		}
	}
	st := w.model.State()
	for _, s := range w.sessions {
		for _, l := range s.Locks(w.now) {
			if !l.State.Believed() || l.Mode == spec.NL {
				continue
			}
			if m, ok := nodeMode(&st, s.ID(), l.Resource); !ok || !spec.Weaker(l.Mode, m) {
				w.t.Fatalf("at %v %s believes it holds %q in %v; the node: held=%v mode=%v\n%s",
					w.now, spec.ShortID(s.ID()), l.Resource, l.Mode, ok, m, st.String())
			}
		}
	}
}

func nodeMode(st *spec.State, id spec.SessionID, resource string) (spec.Mode, bool) {
	for _, r := range st.Resources {
		if r.Name != resource {
			continue
		}
		for _, l := range r.Granted {
			if l.Session == id {
				return l.Mode, true
			}
		}
	}
	return 0, false
}
