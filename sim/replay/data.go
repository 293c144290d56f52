package replay

import "encoding/json"

// Bounds on the data a page embeds: a browser stays quick with these, and
// a failing run's page keeps the steps around its first violation.
const (
	MaxEvents = 20_000 // steps on the page
	MaxStates = 5_000  // distinct node states on the page
	// recordEventsMax and recordStatesMax bound what a Recorder holds
	// while a run goes on; beyond them it stops recording (a page says so).
	recordEventsMax = 200_000
	recordStatesMax = 20_000
)

// Page is everything the page shows, embedded in it as JSON.
type Page struct {
	Title   string `json:"title"`
	Source  string `json:"source"`  // "sim": a simulated run; "history": a client history
	Summary string `json:"summary"` // the run's one-line outcome
	Options string `json:"options"` // the run's options, one per line
	Replay  string `json:"replay"`  // the command that reproduces the page
	// Porcupine is the (relative) address of Porcupine's visualization
	// of the same history, "" if none was written.
	Porcupine string     `json:"porcupine"`
	Verdicts  []Verdict  `json:"verdicts"`
	Failure   *Failure   `json:"failure"` // the first violation; nil if none
	Resources []Resource `json:"resources"`
	Clients   []Client   `json:"clients"`
	Events    []Event    `json:"events"` // the steps, in order of time
	States    []State    `json:"states"`
	Notes     []string   `json:"notes"` // what was cut, and why
}

// Verdict is one checker's judgement.
type Verdict struct {
	Checker string `json:"checker"`
	OK      bool   `json:"ok"`
	Detail  string `json:"detail"`
}

// Failure is the first violation: when, which checker, its words, and the
// step it happened at (-1 if that step was cut).
type Failure struct {
	T       int64  `json:"t"`
	Checker string `json:"checker"`
	Detail  string `json:"detail"`
	Step    int    `json:"step"`
}

// Resource is one resource of the run: a lock, or a semaphore of Limit
// permits.
type Resource struct {
	Name  string `json:"name"`
	Limit uint32 `json:"limit"`
}

// Client is one simulated client and its sessions (short ids), in order.
type Client struct {
	ID       int      `json:"id"`
	Sessions []string `json:"sessions"`
}

// Event is one step: something a client, the network or the node did at
// time T (nanoseconds of true time from the start).
type Event struct {
	T int64  `json:"t"`
	K string `json:"k"`           // kind: see the legend on the page
	C int    `json:"c"`           // client (-1: the node or the run)
	S string `json:"s,omitempty"` // session, short id
	R string `json:"r,omitempty"` // resource
	// Q is the request id, to pair a queued request with its outcome.
	Q int64  `json:"q,omitempty"`
	D int64  `json:"d,omitempty"` // a span: a pause's or partition's length; a belief's start
	X string `json:"x,omitempty"` // what happened, in words
	// St is the index in Page.States of the node state in force after
	// this step (-1: none recorded yet).
	St  int  `json:"st"`
	Bad bool `json:"bad,omitempty"` // a violation
}

// State is the node's state at time T: Body holds a StateBody, encoded
// once when recorded (equal bodies in a row are recorded once).
type State struct {
	T    int64           `json:"t"`
	Body json.RawMessage `json:"b"`
}

// StateBody is what the page shows of a spec.State.
type StateBody struct {
	TokenMax  uint64     `json:"tokenMax"`
	Resources []ResState `json:"res"`
	Sessions  []SessRef  `json:"sess"`
	// Waits are the wait-for graph's edges (spec.WaitsFor): [from, to].
	Waits [][2]string `json:"waits"`
	// Observed: the queues are what clients observed (a history), not
	// the node's state.
	Observed bool `json:"observed,omitempty"`
}

// ResState is one resource in use.
type ResState struct {
	Name       string   `json:"name"`
	Limit      uint32   `json:"limit"`
	Value      string   `json:"value"` // the value block, readable (quoted or hex)
	ValueValid bool     `json:"valid"`
	DelayUntil int64    `json:"delay"` // lock-delay; 0: none
	Granted    []Lock   `json:"granted"`
	Converting []string `json:"converting"` // sessions, in queue order
	Waiting    []Lock   `json:"waiting"`
}

// Lock is one session's lock, granted or waiting.
type Lock struct {
	S        string `json:"s"`
	Mode     string `json:"mode"`
	Want     string `json:"want,omitempty"` // a queued conversion's wanted mode
	Permits  uint32 `json:"permits,omitempty"`
	Token    uint64 `json:"token,omitempty"`
	Request  int64  `json:"q,omitempty"`
	At       int64  `json:"at"`                 // granted at (held), queued at (waiting)
	Deadline int64  `json:"deadline,omitempty"` // a queued request's timeout
}

// SessRef is one live session and the end of its lease on the node.
type SessRef struct {
	S        string `json:"s"`
	Deadline int64  `json:"deadline"`
}
