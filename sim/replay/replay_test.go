package replay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/linearizability"
	"github.com/bouncer-dlm/bouncer/sim"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

// shortRun is a seed's options, shortened for a test.
func shortRun(seed uint64, nodes int) sim.Options {
	o := sim.NewOptions(seed)
	o.Safety = 2 * time.Second
	o.Nodes = nodes
	return o
}

// record runs o with a recorder and returns the page and the trace.
func record(t *testing.T, o sim.Options) (*Page, []byte, *sim.Report) {
	t.Helper()
	rec := NewRecorder()
	var trace bytes.Buffer
	rep := sim.Run(o, rec.Config(sim.Config{Trace: &trace, LinTimeout: time.Minute}))
	p, err := rec.Page(rep, "x.porcupine.html", "bouncer sim --seed 1")
	require.NoError(t, err)
	return p, trace.Bytes(), rep
}

func pageBytes(t *testing.T, p *Page) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, p.Write(&b))
	return b.Bytes()
}

// The page of a seed is the same byte for byte every time, and recording
// changes nothing in the run: its trace is the one a run without a
// recorder writes.
func TestPageDeterministicAndRunUnchanged(t *testing.T) {
	for _, nodes := range []int{1, 3} {
		t.Run(fmt.Sprintf("nodes=%d", nodes), func(t *testing.T) {
			o := shortRun(5, nodes)
			p1, tr1, rep := record(t, o)
			require.False(t, rep.Failed(), rep.Summary())
			p2, tr2, _ := record(t, o)
			require.Equal(t, tr1, tr2)
			require.Equal(t, pageBytes(t, p1), pageBytes(t, p2))

			var plain bytes.Buffer
			sim.Run(o, sim.Config{Trace: &plain, LinTimeout: time.Minute})
			require.Equal(t, plain.Bytes(), tr1, "recording states changed the run")

			// Every step points at a state in force, in time order, and the
			// states show queues.
			require.NotEmpty(t, p1.States)
			require.NotEmpty(t, p1.Events)
			require.Nil(t, p1.Failure)
			granted := 0
			for i, e := range p1.Events {
				require.Less(t, e.St, len(p1.States))
				if e.St >= 0 {
					require.LessOrEqual(t, p1.States[e.St].T, e.T, "step %d", i)
				}
				if e.K == "granted" {
					granted++
				}
			}
			require.Positive(t, granted)
			held := 0
			for _, s := range p1.States {
				var b StateBody
				require.NoError(t, json.Unmarshal(s.Body, &b))
				for _, r := range b.Resources {
					held += len(r.Granted)
				}
			}
			require.Positive(t, held, "no state shows a granted lock")
		})
	}
}

// Body shows a state's queues, tokens, permits and wait-for edges.
func TestBody(t *testing.T) {
	a, b, c := spec.SessionID{1}, spec.SessionID{2}, spec.SessionID{3}
	st := spec.State{TokenMax: 9, Resources: []spec.ResourceState{
		{Name: "x", Value: []byte("v1"), ValueValid: true, Granted: []spec.LockState{{Session: a, Mode: spec.EX, Want: spec.EX, Token: 9, GrantedAt: 5}},
			Waiting: []spec.LockState{{Session: b, Mode: spec.PR, Want: spec.PR, Request: 3, QueuedAt: 6}}},
		{Name: "sem", Limit: 3, Value: []byte{0xff}, Granted: []spec.LockState{{Session: c, Mode: spec.PR, Want: spec.PR, Permits: 2, Token: 4}}},
	}}
	got := Body(&st)
	require.EqualValues(t, 9, got.TokenMax)
	require.Equal(t, `"v1"`, got.Resources[0].Value)
	require.Equal(t, "0xff", got.Resources[1].Value)
	require.Equal(t, Short(a), got.Resources[0].Granted[0].S)
	require.EqualValues(t, 9, got.Resources[0].Granted[0].Token)
	require.Equal(t, Short(b), got.Resources[0].Waiting[0].S)
	require.EqualValues(t, 3, got.Resources[1].Limit)
	require.EqualValues(t, 2, got.Resources[1].Granted[0].Permits)
	require.Equal(t, [][2]string{{Short(b), Short(a)}}, got.Waits)
}

// bound keeps MaxEvents steps with the first violation three quarters in,
// and says that it cut.
func TestBoundKeepsTheViolation(t *testing.T) {
	n := MaxEvents * 3
	bad := MaxEvents * 2
	p := &Page{Failure: &Failure{T: int64(bad), Checker: "mutex", Step: bad}}
	for i := 0; i < n; i++ {
		p.Events = append(p.Events, Event{T: int64(i), K: "keepalive", Bad: i == bad})
		if i%2 == 0 {
			p.States = append(p.States, State{T: int64(i), Body: json.RawMessage(`{}`)})
		}
	}
	p.bound()
	require.Len(t, p.Events, MaxEvents)
	require.LessOrEqual(t, len(p.States), MaxStates)
	require.True(t, p.Events[p.Failure.Step].Bad)
	require.Equal(t, 3*MaxEvents/4, p.Failure.Step)
	require.NotEmpty(t, p.Notes)
	require.Contains(t, strings.Join(p.Notes, "\n"), fmt.Sprintf("of %d", n))
	// The failing step sees the state recorded at its instant.
	st := p.Events[p.Failure.Step].St
	require.GreaterOrEqual(t, st, 0)
	require.Equal(t, int64(bad), p.States[st].T)

	// Without a violation, the first steps.
	q := &Page{}
	for i := 0; i < MaxEvents+10; i++ {
		q.Events = append(q.Events, Event{T: int64(i)})
	}
	q.bound()
	require.Len(t, q.Events, MaxEvents)
	require.EqualValues(t, 0, q.Events[0].T)
}

// Names from a history cannot end the script element the data sits in.
func TestPageEscapesData(t *testing.T) {
	evil := `</script><script>alert(1)</script>`
	h := []linearizability.Entry{{Client: 0, Input: spec.Input{Op: spec.OpAcquire, Session: spec.SessionID{1}, Request: 1,
		Resource: evil, Mode: spec.EX}, Call: 1, Return: 2, Known: true, Output: spec.Result{Code: spec.OK, Mode: spec.EX, Token: 1}}}
	v := linearizability.Check(h, time.Minute)
	p, err := FromHistory(evil, h, &v, "", "")
	require.NoError(t, err)
	out := string(pageBytes(t, p))
	require.False(t, strings.Contains(out, evil), "the data ends the script element it sits in")
	require.Equal(t, 2, strings.Count(out, "</script>"), "only the page's own two script elements end")
}

// A history's page shows the queues as the clients observed them, and a
// failing history's verdict as its violation.
func TestFromHistory(t *testing.T) {
	p := failingHistoryPage(t)
	require.NotNil(t, p.Failure)
	require.Equal(t, "linearizability", p.Failure.Checker)
	require.True(t, p.Events[p.Failure.Step].Bad)
	last := p.States[p.Events[len(p.Events)-1].St]
	var b StateBody
	require.NoError(t, json.Unmarshal(last.Body, &b))
	require.True(t, b.Observed)
	require.Len(t, b.Resources, 1)
	require.Len(t, b.Resources[0].Granted, 2, "both grants, as the clients saw them")
	require.EqualValues(t, 2, b.TokenMax)
}

func TestShortenIDs(t *testing.T) {
	id := spec.SessionID{0xab, 0xcd}
	require.Equal(t, "acquire abcd0000 #1", shortenIDs("acquire "+id.String()+" #1"))
	require.Equal(t, "token=12", shortenIDs("token=12"))
}

// failingHistoryPage is the page of a history where two sessions were
// granted one exclusive lock at once.
func failingHistoryPage(t *testing.T) *Page {
	t.Helper()
	s1, s2 := spec.SessionID{1}, spec.SessionID{2}
	h := []linearizability.Entry{
		{Client: 0, Input: spec.Input{Op: spec.OpAcquire, Session: s1, Request: 1, Resource: "r", Mode: spec.EX},
			Call: 1, Return: 2, Known: true, Output: spec.Result{Code: spec.OK, Mode: spec.EX, Token: 1, ValueValid: true}},
		{Client: 1, Input: spec.Input{Op: spec.OpAcquire, Session: s2, Request: 1, Resource: "r", Mode: spec.EX},
			Call: 3, Return: 4, Known: true, Output: spec.Result{Code: spec.OK, Mode: spec.EX, Token: 2, ValueValid: true}},
	}
	v := linearizability.Check(h, time.Minute)
	require.False(t, v.OK())
	p, err := FromHistory("bad", h, &v, "bad.porcupine.html", "")
	require.NoError(t, err)
	return p
}

// A recorder holds at most recordEventsMax steps; a failure after them is
// still reported, with no step, and the page says where recording stopped.
func TestRecorderStops(t *testing.T) {
	r := NewRecorder()
	var trace bytes.Buffer
	for i := 0; i < recordEventsMax+10; i++ {
		fmt.Fprintf(&trace, `{"t":%d,"ev":"pause","c":0,"for":5}`+"\n", i)
	}
	trace.WriteString(`{"t":999999999,"ev":"failure","checker":"mutex","detail":"two holders"}` + "\n")
	// In pieces that split lines, as a buffered writer hands them over.
	for b := trace.Bytes(); len(b) > 0; {
		n := min(len(b), 4093)
		_, err := r.Write(b[:n])
		require.NoError(t, err)
		b = b[n:]
	}
	require.Len(t, r.events, recordEventsMax)
	require.NotNil(t, r.failure)
	require.Equal(t, -1, r.failure.Step)
	require.Equal(t, "two holders", r.failure.Detail)
	p, err := r.Page(&sim.Report{Options: sim.NewOptions(1)}, "", "")
	require.NoError(t, err)
	require.Len(t, p.Events, MaxEvents)
	require.Equal(t, -1, p.Failure.Step)
	notes := strings.Join(p.Notes, "\n")
	require.Contains(t, notes, "recording stopped")
	require.Contains(t, notes, fmt.Sprintf("steps 1 to %d of %d", MaxEvents, recordEventsMax))
}
