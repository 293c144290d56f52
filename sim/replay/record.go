package replay

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bouncer-dlm/bouncer/sim"
	"github.com/bouncer-dlm/bouncer/spec"
)

// Recorder gathers one simulated run for its page. Give Config's result
// to sim.Run (it tees the trace into the recorder, and takes the node's
// states), then build the page with Page.
type Recorder struct {
	partial []byte // the trace's last line, not yet complete
	events  []Event
	states  []State
	last    []byte // the body of the last state recorded
	stopped string // why recording stopped early ("": it did not)
	err     error  // a trace line that did not parse

	clients   []Client
	sessions  map[string]bool // short ids seen
	resources []Resource
	requests  map[reqKey]string // the op of each request sent, for its outcome
	failure   *Failure
}

type reqKey struct {
	s   string
	req int64
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{sessions: map[string]bool{}, requests: map[reqKey]string{}}
}

// Config returns cfg recording into r: the trace goes to r as well as to
// cfg.Trace, and the node's states to r.
func (r *Recorder) Config(cfg sim.Config) sim.Config {
	if cfg.Trace != nil {
		cfg.Trace = io.MultiWriter(cfg.Trace, r)
	} else {
		cfg.Trace = r
	}
	cfg.States = r.State
	return cfg
}

// Write takes the run's NDJSON trace, in pieces of any size.
func (r *Recorder) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			r.partial = append(r.partial, p...)
			break
		}
		line := p[:i]
		if len(r.partial) > 0 {
			line = append(r.partial, line...)
			r.partial = r.partial[:0]
		}
		r.line(line)
		p = p[i+1:]
	}
	return n, nil
}

// traceLine holds the fields of every kind of trace line this page reads
// (sim/trace.go writes them; "res" is a resource or a result by kind).
type traceLine struct {
	T       int64  `json:"t"`
	Ev      string `json:"ev"`
	C       *int   `json:"c"`
	S       string `json:"s"`
	In      string `json:"in"`
	Kind    string `json:"kind"`
	Req     int64  `json:"req"`
	Res     string `json:"res"`
	Mode    string `json:"mode"`
	For     int64  `json:"for"`
	From    int64  `json:"from"`
	To      int64  `json:"to"`
	Until   int64  `json:"until"`
	Token   int64  `json:"token"`
	Applied bool   `json:"applied"`
	Unknown bool   `json:"unknown"`
	Checker string `json:"checker"`
	Detail  string `json:"detail"`
	Replica int64  `json:"replica"`
	ID      int64  `json:"id"`
	Term    int64  `json:"term"`
	E       string `json:"e"`
	Desc    string `json:"desc"`
	Mid     bool   `json:"mid_commit"`
	Add     int64  `json:"add"`
	Remove  int64  `json:"remove"`
}

// skipped are the trace's kinds a reader does not step through: raft's
// messages and entries, the network's drops and losses, turns (the states
// show what they did), and the run's bookkeeping.
var skipped = []string{"raft", "entry", "drop", "lost", "move", "turn", "reply", "client-done",
	"verdict", "end", "options", "layout", "resume", "partition-end"}

func (r *Recorder) line(b []byte) {
	if r.err != nil || r.stopped != "" && !bytes.Contains(b, []byte(`failure"`)) {
		return // once stopped, only a failure is still worth reading
	}
	if bytes.HasPrefix(b, []byte(`{"t":`)) && bytes.Contains(b[:min(len(b), 40)], []byte(`"ev":"raft"`)) {
		return // most of a cluster's trace: skip it before parsing
	}
	var l traceLine
	if err := json.Unmarshal(b, &l); err != nil {
		r.err = fmt.Errorf("replay: a trace line does not parse: %v: %.80s", err, b)
		return
	}
	if slices.Contains(skipped, l.Ev) {
		return
	}
	e := Event{T: l.T, C: -1, S: l.S}
	if l.C != nil {
		e.C = *l.C
	}
	switch l.Ev {
	case "session":
		r.session(e.C, l.S)
		e.K, e.X = "session", "client "+strconv.Itoa(e.C)+" opens session "+l.S
	case "send":
		r.send(&e, l.In)
	case "update":
		r.update(&e, &l)
	case "holds":
		e.K, e.R = "holds", l.Res
		e.X = fmt.Sprintf("believes it holds %q %s (lease until %s)", l.Res, l.Mode, fmtTime(l.Until))
	case "held":
		e.K, e.R, e.D = "held", l.Res, l.From
		e.X = fmt.Sprintf("stops believing it holds %q %s (held from %s)", l.Res, l.Mode, fmtTime(l.From))
	case "write":
		e.K, e.R, e.Q = "write", l.Res, l.Token
		verdict := "accepted"
		if !l.Applied {
			verdict = "refused: a higher token wrote first"
		}
		e.X = fmt.Sprintf("fenced write to %q with token %d: %s", l.Res, l.Token, verdict)
	case "pause":
		e.K, e.D, e.X = "pause", l.For, "client "+strconv.Itoa(e.C)+" pauses for "+fmtTime(l.For)
	case "partition":
		e.K, e.D, e.X = "partition", l.For, "client "+strconv.Itoa(e.C)+" is cut off from the node for "+fmtTime(l.For)
	case "reset":
		e.K, e.X = "reset", "client "+strconv.Itoa(e.C)+"'s connection is reset"
	case "crash":
		e.K, e.X = "crash", "the node crashes"+replicaOf(l.Replica)
		if l.Mid {
			e.X += ", in the middle of a commit"
		}
	case "restart":
		e.K, e.X = "restart", "the node restarts"+replicaOf(l.Replica)
	case "disk-fault":
		e.K, e.X = "crash", "a disk write fails"+replicaOf(l.Replica)+": the node stops"
	case "leader":
		e.K, e.X = "cluster", fmt.Sprintf("replica %d leads term %d", l.ID, l.Term)
	case "transfer":
		e.K, e.X = "cluster", fmt.Sprintf("leadership moves from replica %d to %d", l.From, l.To)
	case "members":
		e.K, e.X = "cluster", fmt.Sprintf("membership change: add %d, remove %d", l.Add, l.Remove)
	case "removed":
		e.K, e.X = "cluster", fmt.Sprintf("replica %d leaves the group", l.Replica)
	case "event":
		e.K, e.X = "node", "node event: "+shortenIDs(l.E)
	case "heal", "drain":
		e.K = "phase"
		e.X = map[string]string{"heal": "faults stop: the calm phase begins",
			"drain": "the drain begins: clients release and close"}[l.Ev]
	case "failure", "crash-failure":
		checker := l.Checker
		if l.Ev == "crash-failure" {
			checker = "crash"
		}
		e.K, e.Bad, e.X = "failure", true, checker+": "+l.Detail
		if r.failure == nil {
			r.failure = &Failure{T: l.T, Checker: checker, Detail: l.Detail, Step: len(r.events)}
			if r.stopped != "" {
				r.failure.Step = -1 // after the steps recorded
			}
		}
	default:
		return // a kind this page does not know: the trace grew, the page may follow
	}
	r.event(e)
}

func (r *Recorder) event(e Event) {
	if len(r.events) >= recordEventsMax {
		if r.stopped == "" {
			r.stopped = fmt.Sprintf("recording stopped at %s after %d steps", fmtTime(e.T), recordEventsMax)
		}
		return
	}
	r.events = append(r.events, e)
}

func replicaOf(id int64) string {
	if id == 0 {
		return ""
	}
	return " (replica " + strconv.FormatInt(id, 10) + ")"
}

func (r *Recorder) session(c int, s string) {
	if c < 0 || s == "" || r.sessions[s] {
		return
	}
	r.sessions[s] = true
	for len(r.clients) <= c {
		r.clients = append(r.clients, Client{ID: len(r.clients)})
	}
	r.clients[c].Sessions = append(r.clients[c].Sessions, s)
}

func (r *Recorder) resource(name string, limit uint32) {
	i := slices.IndexFunc(r.resources, func(x Resource) bool { return x.Name == name })
	if i < 0 {
		r.resources = append(r.resources, Resource{Name: name, Limit: limit})
		return
	}
	if limit > 0 {
		r.resources[i].Limit = limit
	}
}

// send reads a request as the trace describes it (sim's describeInput):
// "acquire <session> #3 \"r2\" EX 1/5 permits".
func (r *Recorder) send(e *Event, in string) {
	fields := strings.Fields(in)
	if len(fields) == 0 {
		return
	}
	e.K = fields[0]
	r.session(e.C, e.S)
	desc := shortenIDs(in)
	if len(fields) > 2 && strings.HasPrefix(fields[2], "#") {
		e.Q, _ = strconv.ParseInt(fields[2][1:], 10, 64)
		rest := strings.Join(fields[3:], " ")
		if q, err := strconv.QuotedPrefix(rest); err == nil {
			e.R, _ = strconv.Unquote(q)
			r.resource(e.R, 0)
		}
		r.requests[reqKey{e.S, e.Q}] = e.K
	}
	e.X = "sends " + desc
}

// update reads what a session's client core learned.
func (r *Recorder) update(e *Event, l *traceLine) {
	e.Q = l.Req
	switch l.Kind {
	case "queued":
		e.K, e.X = "queued", fmt.Sprintf("request #%d waits in a queue", l.Req)
	case "blocking":
		e.K, e.X = "blocking", "is told it blocks another's request"
	case "opened":
		e.K, e.X = "opened", "session opened"
	case "closed":
		e.K, e.X = "closed", "session closed: "+l.Res
	case "lost":
		e.K, e.X = "lost", "session lost: "+l.Res
	case "done":
		op := r.requests[reqKey{l.S, l.Req}]
		e.X = fmt.Sprintf("%s #%d: %s", op, l.Req, shortenIDs(l.Res))
		switch {
		case strings.HasPrefix(l.Res, "OK") && strings.Contains(l.Res, "token="):
			e.K = "granted"
		case strings.HasPrefix(l.Res, "OK"):
			e.K = "done"
		default:
			e.K = "refused"
		}
		if l.Unknown {
			e.K, e.X = "done", e.X+" (the outcome is unknown to the client)"
		}
	default:
		e.K, e.X = "update", l.Kind
	}
}

// State takes the node's state at true time at (sim.Config.States).
func (r *Recorder) State(at spec.Time, st *spec.State) {
	if r.stopped != "" {
		return
	}
	if len(r.states) >= recordStatesMax {
		r.stopped = fmt.Sprintf("recording stopped at %s after %d node states", fmtTime(int64(at)), recordStatesMax)
		return
	}
	body := Body(st)
	for _, rs := range body.Resources {
		r.resource(rs.Name, rs.Limit)
	}
	b, err := json.Marshal(body)
	if err != nil {
		r.err = err
		return
	}
	if bytes.Equal(b, r.last) {
		return
	}
	r.last = b
	r.states = append(r.states, State{T: int64(at), Body: b})
}

// Body is what the page shows of st.
func Body(st *spec.State) StateBody {
	b := StateBody{TokenMax: uint64(st.TokenMax), Resources: []ResState{}, Sessions: []SessRef{}, Waits: [][2]string{}}
	for i := range st.Resources {
		rs := &st.Resources[i]
		out := ResState{Name: rs.Name, Limit: rs.Limit, Value: readable(rs.Value), ValueValid: rs.ValueValid,
			DelayUntil: int64(rs.DelayUntil), Granted: []Lock{}, Converting: []string{}, Waiting: []Lock{}}
		for _, l := range rs.Granted {
			out.Granted = append(out.Granted, lock(&l, int64(l.GrantedAt)))
		}
		for _, s := range rs.Converting {
			out.Converting = append(out.Converting, Short(s))
		}
		for _, l := range rs.Waiting {
			out.Waiting = append(out.Waiting, lock(&l, int64(l.QueuedAt)))
		}
		b.Resources = append(b.Resources, out)
	}
	for _, s := range st.Sessions {
		b.Sessions = append(b.Sessions, SessRef{S: Short(s.ID), Deadline: int64(s.Deadline)})
	}
	g := spec.WaitsFor(st)
	from := make([]spec.SessionID, 0, len(g))
	for id := range g {
		from = append(from, id)
	}
	slices.SortFunc(from, func(a, b spec.SessionID) int { return bytes.Compare(a[:], b[:]) })
	for _, f := range from {
		for _, t := range g[f] {
			b.Waits = append(b.Waits, [2]string{Short(f), Short(t)})
		}
	}
	return b
}

func lock(l *spec.LockState, at int64) Lock {
	out := Lock{S: Short(l.Session), Mode: l.Mode.String(), Permits: l.Permits, Token: uint64(l.Token),
		Request: int64(l.Request), At: at, Deadline: int64(l.Deadline)}
	if l.Want != l.Mode {
		out.Want = l.Want.String()
	}
	return out
}

// Short is a session's short id, as the trace writes it.
func Short(id spec.SessionID) string { return id.String()[:8] }

// valueShown bounds the bytes of a value block the page shows.
const valueShown = 64

// readable shows a value block: quoted if it is text, else in hex.
func readable(v []byte) string {
	cut := ""
	if len(v) > valueShown {
		v, cut = v[:valueShown], fmt.Sprintf("… (%d bytes)", len(v))
	}
	if utf8.Valid(v) {
		return strconv.Quote(string(v)) + cut
	}
	return "0x" + hex.EncodeToString(v) + cut
}

// shortenIDs shortens every full session id (32 hex digits) in s to the
// short id the rest of the page uses.
func shortenIDs(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && isHex(s[j]) {
			j++
		}
		if j-i == 2*len(spec.SessionID{}) {
			b.WriteString(s[i : i+8])
			i = j
			continue
		}
		if j == i {
			j++
		}
		b.WriteString(s[i:j])
		i = j
	}
	return b.String()
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// fmtTime shows a true time or a span in seconds, to the microsecond.
func fmtTime(ns int64) string {
	return strconv.FormatFloat(float64(ns)/1e9, 'f', 6, 64) + "s"
}
