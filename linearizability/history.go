package linearizability

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// Never is the return time of an outcome the client never learned and that
// nothing bounds: like Porcupine's, it may have taken effect at any time
// after its call, or never.
const Never = spec.Time(math.MaxInt64)

// Entry is one line of a history: what one client observed of one request,
// of its session's close, or of its session's expiry. Times are the true
// times of the observer (in a simulation, simulated true time), in
// nanoseconds. Like a Porcupine operation, it is an input, its call, and its
// output with its return; Pending and Resources are what a lock service
// adds.
//
// A request (Input.Op is OpAcquire, OpConvert, OpRelease or OpCancel, with
// Input.Session, Request, Resource and the request's options) was called at
// Call. If the client learned it was queued, Queued is set and Pending is
// when. If the client learned the final outcome, Known is set, Output is
// that outcome and Return is when the client learned it. Otherwise the
// outcome is unknown: the request may have taken effect at any time after
// Call, or never, and not after Return (the client learned its session had
// ended by then; Never if nothing bounds it).
//
// Close (Input.Op is OpClose): Call, and the answer (Known, Return, Output)
// or unknown, as for a request.
//
// Expiry (Input.Op is zero: no client called it): the session's lease ran
// out and the node ended it, at some time no earlier than Call (the send
// time of its last answered keepalive plus the TTL) and no later than
// Return (when the client learned it, if Known; else Never). Output is not
// used.
type Entry struct {
	Client    int        // zero-based, for the visualization
	Input     spec.Input // what was called; Op is zero for an expiry
	Resources []string   // close and expiry: every resource the session named

	Call    spec.Time
	Queued  bool      // the client learned the request was queued,
	Pending spec.Time // at this time
	Known   bool      // the client learned Output,
	Return  spec.Time // at this time; if not Known, the latest the outcome can have taken effect
	Output  spec.Result
}

// Expiry reports whether e is a session's expiry rather than a call.
func (e *Entry) Expiry() bool { return e.Input.Op == 0 }

// request reports whether e is a request on one resource.
func (e *Entry) request() bool { return e.Input.Op.Mutating() }

// opName is the name of e's operation in the history format.
func (e *Entry) opName() string {
	if e.Expiry() {
		return "expire"
	}
	return e.Input.Op.String()
}

func parseOp(s string) (spec.Op, bool) {
	if s == "expire" {
		return 0, true
	}
	for _, op := range []spec.Op{spec.OpAcquire, spec.OpConvert, spec.OpRelease, spec.OpCancel, spec.OpClose} {
		if op.String() == s {
			return op, true
		}
	}
	return 0, false
}

// entryJSON is the wire form of an Entry: one JSON object per line.
type entryJSON struct {
	Client      int         `json:"client"`
	Session     string      `json:"session"`
	Op          string      `json:"op"`
	Resource    string      `json:"resource,omitempty"`
	Resources   []string    `json:"resources,omitempty"`
	Request     uint64      `json:"request,omitempty"`
	Mode        string      `json:"mode,omitempty"`
	NoQueue     bool        `json:"no_queue,omitempty"`
	WaitTimeout int64       `json:"wait_timeout,omitempty"`
	LockDelay   int64       `json:"lock_delay,omitempty"`
	Permits     uint32      `json:"permits,omitempty"`
	Limit       uint32      `json:"limit,omitempty"`
	WriteValue  bool        `json:"write_value,omitempty"`
	Value       []byte      `json:"value,omitempty"`
	Call        int64       `json:"call"`
	Pending     *int64      `json:"pending,omitempty"`
	Return      *int64      `json:"return,omitempty"`
	Result      *resultJSON `json:"result,omitempty"`
	Until       *int64      `json:"until,omitempty"`
}

type resultJSON struct {
	Code       string `json:"code"`
	Mode       string `json:"mode,omitempty"`
	Token      uint64 `json:"token,omitempty"`
	Value      []byte `json:"value,omitempty"`
	ValueValid bool   `json:"value_valid,omitempty"`
}

func ptr(t spec.Time) *int64 {
	v := int64(t)
	return &v
}

// MarshalJSON writes e in the history format (see the package docs).
func (e Entry) MarshalJSON() ([]byte, error) {
	in := &e.Input
	j := entryJSON{Client: e.Client, Session: in.Session.String(), Op: e.opName(),
		Resource: in.Resource, Resources: e.Resources, Request: uint64(in.Request),
		NoQueue: in.NoQueue, WaitTimeout: int64(in.WaitTimeout), LockDelay: int64(in.LockDelay),
		Permits: in.Permits, Limit: in.Limit, WriteValue: in.WriteValue, Value: in.Value, Call: int64(e.Call)}
	if in.Op == spec.OpAcquire || in.Op == spec.OpConvert {
		j.Mode = in.Mode.String()
	}
	if e.Queued {
		j.Pending = ptr(e.Pending)
	}
	switch {
	case e.Known:
		j.Return = ptr(e.Return)
		if !e.Expiry() {
			r := e.Output
			j.Result = &resultJSON{Code: r.Code.String(), Token: uint64(r.Token), Value: r.Value, ValueValid: r.ValueValid}
			if r.Code == spec.OK && r.Token != 0 {
				j.Result.Mode = r.Mode.String()
			}
		}
	case e.Return != Never:
		j.Until = ptr(e.Return)
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads one entry of the history format.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var j entryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	id, err := spec.ParseSessionID(j.Session)
	if err != nil {
		return err
	}
	op, ok := parseOp(j.Op)
	if !ok {
		return fmt.Errorf("op %q: want acquire, convert, release, cancel, close or expire", j.Op)
	}
	*e = Entry{Client: j.Client, Resources: j.Resources, Call: spec.Time(j.Call), Return: Never,
		Input: spec.Input{Op: op, Session: id, Resource: j.Resource, Request: spec.RequestID(j.Request),
			NoQueue: j.NoQueue, WaitTimeout: time.Duration(j.WaitTimeout), LockDelay: time.Duration(j.LockDelay),
			Permits: j.Permits, Limit: j.Limit, WriteValue: j.WriteValue, Value: spec.CloneValue(j.Value)}}
	if j.Mode != "" {
		if e.Input.Mode, err = spec.ParseMode(j.Mode); err != nil {
			return err
		}
	}
	if j.Pending != nil {
		e.Queued, e.Pending = true, spec.Time(*j.Pending)
	}
	switch {
	case j.Return != nil && j.Until != nil:
		return fmt.Errorf("both a return and an until")
	case j.Return != nil:
		e.Known, e.Return = true, spec.Time(*j.Return)
		if j.Result == nil && op != 0 {
			return fmt.Errorf("return without a result")
		}
	case j.Until != nil:
		e.Return = spec.Time(*j.Until)
	}
	if j.Result != nil {
		if !e.Known {
			return fmt.Errorf("result without a return time")
		}
		r := &e.Output
		if r.Code, ok = spec.ParseCode(j.Result.Code); !ok {
			return fmt.Errorf("result code %q is unknown", j.Result.Code)
		}
		if j.Result.Mode != "" {
			if r.Mode, err = spec.ParseMode(j.Result.Mode); err != nil {
				return err
			}
		}
		r.Token, r.Value, r.ValueValid = spec.Token(j.Result.Token), spec.CloneValue(j.Result.Value), j.Result.ValueValid
	}
	return e.validate()
}

// validate checks what the checker relies on. A request's outcome, known
// or bounded, comes no earlier than its call (an expiry's may: its call is
// the earliest the lease could have run out, which the node may have
// passed before the client learned it). A zero Return on an unknown
// outcome, where Never was meant, fails here.
func (e *Entry) validate() error {
	in := &e.Input
	switch {
	case e.request() && (in.Resource == "" || in.Request == 0):
		return fmt.Errorf("%s: resource and request are required", e.opName())
	case !e.request() && in.Op != spec.OpClose && !e.Expiry():
		return fmt.Errorf("op %v is not recorded in a history", in.Op)
	case !e.request() && len(e.Resources) == 0:
		return fmt.Errorf("%s: resources are required", e.opName())
	case e.Return < e.Call && !e.Expiry():
		return fmt.Errorf("%s of request %d returns before its call", e.opName(), in.Request)
	case e.Queued && e.Pending < e.Call:
		return fmt.Errorf("%s of request %d is queued before its call", e.opName(), in.Request)
	case e.Client < 0:
		return fmt.Errorf("client must not be negative")
	}
	return nil
}

// WriteHistory writes h as JSON lines.
func WriteHistory(w io.Writer, h []Entry) error {
	bw := bufio.NewWriter(w)
	for i := range h {
		b, err := json.Marshal(h[i])
		if err != nil {
			return err
		}
		bw.Write(b)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// ReadHistory reads JSON lines written by WriteHistory (blank lines and
// lines starting with # are skipped).
func ReadHistory(r io.Reader) ([]Entry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var h []Entry
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		var e Entry
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("history line %d: %w", line, err)
		}
		h = append(h, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return h, nil
}
