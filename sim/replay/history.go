package replay

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/bouncer-dlm/bouncer/linearizability"
	"github.com/bouncer-dlm/bouncer/spec"
)

// FromHistory builds the page of a client history (bouncer check): each
// request's call, wait and outcome on its session's timeline, and the
// queues as the clients observed them (a lock from the grant's answer to
// the release's call, a wait from the queued notice to the outcome),
// since a history holds no state of the node. v is the history's check.
func FromHistory(title string, h []linearizability.Entry, v *linearizability.Report, porcupine, replay string) (*Page, error) {
	p := &Page{Title: title, Source: "history", Summary: v.String(), Porcupine: porcupine, Replay: replay,
		Options: fmt.Sprintf("a client history of %d entries", len(h))}
	p.Verdicts = []Verdict{{Checker: "linearizability", OK: v.OK(), Detail: v.String()}}
	r := NewRecorder()
	for i := range h {
		e := &h[i]
		s := Short(e.Input.Session)
		r.session(e.Client, s)
		if e.Input.Op.Mutating() {
			r.resource(e.Input.Resource, e.Input.Limit)
		}
	}
	p.Clients, p.Resources = r.clients, r.resources
	sortResources(p.Resources)
	events := historyEvents(h)
	states, err := observedStates(events, h)
	if err != nil {
		return nil, err
	}
	p.Events, p.States = events, states
	if !v.OK() {
		last := int64(0)
		if n := len(p.Events); n > 0 {
			last = p.Events[n-1].T
		}
		detail := v.String() + "\n(Porcupine's page shows, for each resource, the longest linearizable prefix and where it fails.)"
		p.Events = append(p.Events, Event{T: last, K: "failure", C: -1, Bad: true, X: "linearizability: " + v.String()})
		p.Failure = &Failure{T: last, Checker: "linearizability", Detail: detail, Step: len(p.Events) - 1}
	}
	p.bound()
	return p, nil
}

// hEvent is a history event with the entry it came from, for the sweep.
type hEvent struct {
	Event
	entry int
}

// historyEvents lists each entry's call, queued notice and known outcome,
// in order of time (ties: the history's order).
func historyEvents(h []linearizability.Entry) []Event {
	var evs []hEvent
	for i := range h {
		e := &h[i]
		s := Short(e.Input.Session)
		base := Event{C: e.Client, S: s, R: e.Input.Resource, Q: int64(e.Input.Request)}
		if e.Expiry() {
			if e.Known {
				x := base
				x.T, x.K, x.R, x.X = int64(e.Return), "lost", "", "the client learns its session ended"
				evs = append(evs, hEvent{x, i})
			}
			continue
		}
		call := base
		call.T, call.K = int64(e.Call), e.Input.Op.String()
		call.X = "calls " + describe(&e.Input)
		if e.Input.Op == spec.OpClose {
			call.R = ""
		}
		evs = append(evs, hEvent{call, i})
		if e.Queued {
			q := base
			q.T, q.K, q.X = int64(e.Pending), "queued", fmt.Sprintf("request #%d waits in a queue", e.Input.Request)
			evs = append(evs, hEvent{q, i})
		}
		if e.Known {
			o := base
			o.T = int64(e.Return)
			o.X = e.Input.Op.String() + ": " + shortenIDs(e.Output.String())
			switch {
			case e.Output.Code == spec.OK && e.Output.Token != 0:
				o.K = "granted"
			case e.Output.Code == spec.OK:
				o.K = "done"
			default:
				o.K = "refused"
			}
			if e.Input.Op == spec.OpClose {
				o.K, o.R = "closed", ""
			}
			evs = append(evs, hEvent{o, i})
		}
	}
	slices.SortStableFunc(evs, func(a, b hEvent) int { return cmpInt(a.T, b.T) })
	out := make([]Event, len(evs))
	for i := range evs {
		out[i] = evs[i].Event
	}
	return out
}

func describe(in *spec.Input) string {
	s := in.Op.String()
	if in.Op.Mutating() {
		s += fmt.Sprintf(" #%d %q", in.Request, in.Resource)
	}
	if in.Op == spec.OpAcquire || in.Op == spec.OpConvert {
		s += " " + in.Mode.String()
	}
	if in.Permits != 0 {
		s += fmt.Sprintf(" %d/%d permits", in.Permits, in.Limit)
	}
	return s
}

// observedStates sweeps the events and records the queues as the clients
// saw them after each event that changed them.
func observedStates(events []Event, h []linearizability.Entry) ([]State, error) {
	modes := map[reqKey]*spec.Input{}
	for i := range h {
		if h[i].Input.Op.Mutating() {
			modes[reqKey{Short(h[i].Input.Session), int64(h[i].Input.Request)}] = &h[i].Input
		}
	}
	var res []ResState // in order of first use
	find := func(name string) *ResState {
		for i := range res {
			if res[i].Name == name {
				return &res[i]
			}
		}
		res = append(res, ResState{Name: name, Granted: []Lock{}, Converting: []string{}, Waiting: []Lock{}})
		return &res[len(res)-1]
	}
	drop := func(ls []Lock, s string) []Lock {
		return slices.DeleteFunc(ls, func(l Lock) bool { return l.S == s })
	}
	var states []State
	var last []byte
	var tokenMax uint64 // the highest token a client was granted so far
	for i := range events {
		e := &events[i]
		in := modes[reqKey{e.S, e.Q}]
		switch {
		case e.K == "queued" && in != nil:
			r := find(in.Resource)
			r.Limit = max(r.Limit, in.Limit)
			r.Waiting = append(drop(r.Waiting, e.S), Lock{S: e.S, Mode: in.Mode.String(), Permits: in.Permits, Request: e.Q, At: e.T})
		case e.K == "granted" && in != nil:
			r := find(in.Resource)
			r.Limit = max(r.Limit, in.Limit)
			r.Waiting = drop(r.Waiting, e.S)
			r.Granted = append(drop(r.Granted, e.S), Lock{S: e.S, Mode: in.Mode.String(), Permits: in.Permits, At: e.T, Token: tokenOf(e.X)})
			tokenMax = max(tokenMax, tokenOf(e.X))
		case e.K == "refused" && in != nil:
			r := find(in.Resource)
			r.Waiting = drop(r.Waiting, e.S)
		case e.K == "release" && in != nil:
			r := find(in.Resource)
			r.Granted = drop(r.Granted, e.S)
		case e.K == "closed", e.K == "lost":
			for j := range res {
				res[j].Granted, res[j].Waiting = drop(res[j].Granted, e.S), drop(res[j].Waiting, e.S)
			}
		default:
			continue
		}
		body := StateBody{TokenMax: tokenMax, Resources: []ResState{}, Sessions: []SessRef{}, Waits: [][2]string{}, Observed: true}
		for _, r := range res {
			if len(r.Granted)+len(r.Waiting) > 0 {
				r.ValueValid, r.Value = true, "(not in a history)"
				body.Resources = append(body.Resources, r)
			}
		}
		slices.SortFunc(body.Resources, func(a, b ResState) int { return strings.Compare(a.Name, b.Name) })
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		if string(b) == string(last) {
			continue
		}
		last = b
		states = append(states, State{T: e.T, Body: b})
	}
	return states, nil
}

// tokenOf reads the token of a grant's description ("... token=7 ...").
func tokenOf(x string) uint64 {
	_, after, ok := strings.Cut(x, "token=")
	if !ok {
		return 0
	}
	var t uint64
	for _, c := range after {
		if c < '0' || c > '9' {
			break
		}
		t = 10*t + uint64(c-'0')
	}
	return t
}
