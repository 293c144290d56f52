package engine_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/cockroachdb/datadriven"
)

// TestScenarios runs the datadriven files in testdata/scenarios: each
// command goes to both the spec model and the engine, which must agree
// (reply, events, state) before the engine's output is compared with the
// file. Commands:
//
//	open S [ttl=D]                    keepalive S         close S
//	acquire S R MODE [try] [wait=D] [delay=D] [req=N] [acked=N]
//	convert S R MODE [try] [wait=D] [value=V] [req=N] [acked=N]
//	release S R [value=V] [req=N] [acked=N]
//	cancel S R [req=N] [acked=N]
//	retry S req=N        (send request N of S again, unchanged)
//	advance D            (move the clock; due timers fire)
//	restart [advance=D] [at=T]  (recover from the records written so far,
//	                     with the clock moved on by D or reading T; the node
//	                     resumes from its persisted clock if that is later)
//	failover [now=T] [grace=D]  (a change of leader at instant T, default the
//	                     current one, with grace D, default 0; due timers fire)
//	state                (print the whole state)
//
// Request ids count from 1 per session unless req= is given.
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		sc := newScenario(t)
		datadriven.RunTest(t, path, sc.run)
	})
}

type scenario struct {
	lim   spec.Limits
	now   spec.Time
	model *spec.Model
	core  *engine.Core
	kv    memKV
	next  map[spec.SessionID]spec.RequestID
	sent  map[spec.SessionID]map[spec.RequestID]spec.Input
}

func newScenario(t *testing.T) *scenario {
	lim := spec.DefaultLimits()
	lim.WaitersPerResourceMax = 4
	lim.LocksPerSessionMax = 4
	c, err := engine.New(lim)
	if err != nil {
		t.Fatal(err)
	}
	return &scenario{lim: lim, model: spec.NewModel(lim), core: c, kv: memKV{},
		next: map[spec.SessionID]spec.RequestID{}, sent: map[spec.SessionID]map[spec.RequestID]spec.Input{}}
}

func (sc *scenario) run(t *testing.T, d *datadriven.TestData) string {
	switch d.Cmd {
	case "advance":
		sc.now = sc.now.Add(duration(t, d.CmdArgs[0].Key))
		ev := sc.model.Tick(sc.now)
		sc.core.Tick(sc.now)
		return sc.finish(t, d, "", ev)
	case "restart":
		if d.HasArg("advance") {
			var s string
			d.ScanArgs(t, "advance", &s)
			sc.now = sc.now.Add(duration(t, s))
		}
		if d.HasArg("at") { // the machine's clock at the restart, maybe behind the node's
			var s string
			d.ScanArgs(t, "at", &s)
			sc.now = spec.Time(duration(t, s))
		}
		sc.model.Recover(sc.now)
		c, err := engine.Restore(sc.lim, sc.now, sc.kv.records)
		if err != nil {
			t.Fatal(err)
		}
		sc.core = c
		sc.now = c.Now() // the clock never goes back
		ev := sc.model.Tick(sc.now)
		sc.core.Tick(sc.now)
		return sc.finish(t, d, "", ev)
	case "failover":
		var grace time.Duration
		if d.HasArg("now") {
			var s string
			d.ScanArgs(t, "now", &s)
			sc.now = spec.Time(duration(t, s))
		}
		if d.HasArg("grace") {
			var s string
			d.ScanArgs(t, "grace", &s)
			grace = duration(t, s)
		}
		sc.model.Failover(sc.now, grace)
		sc.core.Failover(sc.now, grace)
		sc.now = sc.core.Now() // the clock never goes back
		ev := sc.model.Tick(sc.now)
		sc.core.Tick(sc.now)
		return sc.finish(t, d, "", ev)
	case "state":
		st := sc.core.State()
		return st.String()
	}
	in := sc.input(t, d)
	mr, ev := sc.model.Step(sc.now, in)
	er := sc.core.Step(sc.now, &in)
	if diff := diffResults(mr, er); diff != "" {
		t.Fatalf("%s: replies differ\n%s", d.Pos, diff)
	}
	return sc.finish(t, d, "reply: "+er.String()+"\n", ev)
}

func (sc *scenario) finish(t *testing.T, d *datadriven.TestData, out string, modelEvents []spec.Event) string {
	rd := sc.core.Ready()
	if diff := diffEvents(modelEvents, rd.Events); diff != "" {
		t.Fatalf("%s: events differ\n%s", d.Pos, diff)
	}
	var b strings.Builder
	b.WriteString(out)
	for _, e := range rd.Events {
		b.WriteString(e.String() + "\n")
	}
	sc.kv.apply(rd.Writes)
	sc.core.Advance()
	ms, es := sc.model.State(), sc.core.State()
	if diff := diffStates(&ms, &es); diff != "" {
		t.Fatalf("%s: states differ\n%s", d.Pos, diff)
	}
	if err := sc.core.CheckInvariants(); err != nil {
		t.Fatalf("%s: %v", d.Pos, err)
	}
	if b.Len() == 0 {
		return "ok\n"
	}
	return b.String()
}

func (sc *scenario) input(t *testing.T, d *datadriven.TestData) spec.Input {
	if len(d.CmdArgs) == 0 {
		t.Fatalf("%s: %s needs a session", d.Pos, d.Cmd)
	}
	s := spec.NamedSession(d.CmdArgs[0].Key)
	in := spec.Input{Session: s}
	switch d.Cmd {
	case "open":
		in.Op, in.TTL = spec.OpOpen, 10*time.Second
	case "keepalive":
		in.Op = spec.OpKeepAlive
	case "close":
		in.Op = spec.OpClose
	case "acquire":
		in.Op = spec.OpAcquire
	case "convert":
		in.Op = spec.OpConvert
	case "release":
		in.Op = spec.OpRelease
	case "cancel":
		in.Op = spec.OpCancel
	case "retry":
		var req uint64
		d.ScanArgs(t, "req", &req)
		prev, ok := sc.sent[s][spec.RequestID(req)]
		if !ok {
			t.Fatalf("%s: no request %d of %s to retry", d.Pos, req, d.CmdArgs[0].Key)
		}
		return prev
	default:
		t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	}
	if in.Op.Mutating() {
		sc.next[s]++
		in.Request = sc.next[s]
		in.WaitTimeout = time.Minute
		if len(d.CmdArgs) < 2 {
			t.Fatalf("%s: %s needs a resource", d.Pos, d.Cmd)
		}
		in.Resource = d.CmdArgs[1].Key
	}
	if in.Op == spec.OpAcquire || in.Op == spec.OpConvert {
		if len(d.CmdArgs) < 3 {
			t.Fatalf("%s: %s needs a mode", d.Pos, d.Cmd)
		}
		m, err := spec.ParseMode(d.CmdArgs[2].Key)
		if err != nil {
			t.Fatal(err)
		}
		in.Mode = m
	}
	for _, a := range d.CmdArgs[1:] {
		sc.option(t, &in, a)
	}
	if in.Op.Mutating() {
		if sc.sent[s] == nil {
			sc.sent[s] = map[spec.RequestID]spec.Input{}
		}
		if _, ok := sc.sent[s][in.Request]; !ok {
			sc.sent[s][in.Request] = in // a retry resends the first request with this id
		}
	}
	return in
}

func (sc *scenario) option(t *testing.T, in *spec.Input, a datadriven.CmdArg) {
	val := ""
	if len(a.Vals) > 0 {
		val = a.Vals[0]
	}
	switch a.Key {
	case "try":
		in.NoQueue, in.WaitTimeout = true, 0
	case "wait":
		in.WaitTimeout = duration(t, val)
	case "delay":
		in.LockDelay = duration(t, val)
	case "ttl":
		in.TTL = duration(t, val)
	case "value":
		in.WriteValue, in.Value = true, []byte(val)
	case "req":
		in.Request = spec.RequestID(number(t, val))
		sc.next[in.Session] = max(sc.next[in.Session], in.Request)
	case "acked":
		in.Acked = spec.RequestID(number(t, val))
	case "permits":
		in.Permits = uint32(number(t, val))
	case "limit":
		in.Limit = uint32(number(t, val))
	}
}

func duration(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func number(t *testing.T, s string) uint64 {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(fmt.Errorf("%q: %w", s, err))
	}
	return n
}
