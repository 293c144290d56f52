package linearizability

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// Kind is the kind of an Entry.
type Kind uint8

const (
	Acquire Kind = iota + 1 // a request (spec.OpAcquire) on Resource
	Convert                 // a request (spec.OpConvert)
	Release                 // a request (spec.OpRelease)
	Cancel                  // a request (spec.OpCancel)
	Close                   // the session's close, for each of Resources
	Expire                  // the session's expiry, for each of Resources
)

var kindNames = [...]string{"", "acquire", "convert", "release", "cancel", "close", "expire"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

func parseKind(s string) (Kind, bool) {
	for k, name := range kindNames {
		if name == s && k != 0 {
			return Kind(k), true
		}
	}
	return 0, false
}

// Entry is one line of a history: what one client observed of one request,
// of its session's close, or of its session's expiry. Times are the true
// times of the observer (in a simulation, simulated true time), in
// nanoseconds.
//
// A request (Acquire, Convert, Release, Cancel) was called at Call. If the
// client learned it was queued, Pending is set with the time it learned
// so. If it learned the final outcome, Known is set with Return and Result.
// Otherwise the outcome is unknown: the request may have taken effect at any
// time after Call, or never; if Bounded, not after Until (the client learned
// its session had ended by then).
//
// Close: Call, and the answer (Known, Return, Result) or unknown.
//
// Expire: the session's lease ran out and the node ended it, at some time no
// earlier than Call (the send time of its last answered keepalive plus the
// TTL) and, if Known, no later than Return (when the client learned it).
// Result is not used.
type Entry struct {
	Client    int // zero-based, for the visualization
	Session   spec.SessionID
	Kind      Kind
	Resource  string   // requests
	Resources []string // Close, Expire: every resource the session ever named
	Request   spec.RequestID

	Mode        spec.Mode
	NoQueue     bool
	WaitTimeout time.Duration
	LockDelay   time.Duration
	WriteValue  bool
	Value       []byte

	Call       spec.Time
	HasPending bool
	Pending    spec.Time
	Known      bool
	Return     spec.Time
	Result     spec.Result
	Bounded    bool
	Until      spec.Time
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
	j := entryJSON{Client: e.Client, Session: e.Session.String(), Op: e.Kind.String(),
		Resource: e.Resource, Resources: e.Resources, Request: uint64(e.Request),
		NoQueue: e.NoQueue, WaitTimeout: int64(e.WaitTimeout), LockDelay: int64(e.LockDelay),
		WriteValue: e.WriteValue, Value: e.Value, Call: int64(e.Call)}
	if e.Kind == Acquire || e.Kind == Convert {
		j.Mode = e.Mode.String()
	}
	if e.HasPending {
		j.Pending = ptr(e.Pending)
	}
	if e.Known {
		j.Return = ptr(e.Return)
		if e.Kind != Expire {
			r := e.Result
			j.Result = &resultJSON{Code: r.Code.String(), Token: uint64(r.Token), Value: r.Value, ValueValid: r.ValueValid}
			if r.Code == spec.OK && r.Token != 0 {
				j.Result.Mode = r.Mode.String()
			}
		}
	}
	if e.Bounded {
		j.Until = ptr(e.Until)
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
	kind, ok := parseKind(j.Op)
	if !ok {
		return fmt.Errorf("op %q: want acquire, convert, release, cancel, close or expire", j.Op)
	}
	*e = Entry{Client: j.Client, Session: id, Kind: kind, Resource: j.Resource, Resources: j.Resources,
		Request: spec.RequestID(j.Request), NoQueue: j.NoQueue, WaitTimeout: time.Duration(j.WaitTimeout),
		LockDelay: time.Duration(j.LockDelay), WriteValue: j.WriteValue, Value: spec.CloneValue(j.Value),
		Call: spec.Time(j.Call)}
	if j.Mode != "" {
		if e.Mode, err = spec.ParseMode(j.Mode); err != nil {
			return err
		}
	}
	if j.Pending != nil {
		e.HasPending, e.Pending = true, spec.Time(*j.Pending)
	}
	if j.Until != nil {
		e.Bounded, e.Until = true, spec.Time(*j.Until)
	}
	if j.Return != nil {
		e.Known, e.Return = true, spec.Time(*j.Return)
		if j.Result == nil && kind != Expire {
			return fmt.Errorf("return without a result")
		}
	}
	if j.Result != nil {
		if !e.Known {
			return fmt.Errorf("result without a return time")
		}
		r := &e.Result
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

func (e *Entry) validate() error {
	switch {
	case e.Kind <= Cancel && (e.Resource == "" || e.Request == 0):
		return fmt.Errorf("%v: resource and request are required", e.Kind)
	case e.Kind > Cancel && len(e.Resources) == 0:
		return fmt.Errorf("%v: resources are required", e.Kind)
	case e.Known && e.Return < e.Call && e.Kind != Expire:
		return fmt.Errorf("%v of request %d returns before its call", e.Kind, e.Request)
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
