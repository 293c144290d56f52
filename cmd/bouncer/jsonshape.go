package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"time"
	"unicode/utf8"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The one JSON shape of `status --json`, `status NAME --json`,
// `status --session TAG --json` and `watch --json` (the README's "JSON
// output" documents it). It is written for jq and scripts, not for the
// wire: names and values are strings (base64 only when they are not
// UTF-8, with a flag saying so), modes are spec's names ("EX"), tokens
// and permits are numbers, tags are hex, and every duration is a whole
// number of milliseconds in a field whose name ends in _ms. A list is
// never null: an empty node is [].

// jsonLock is a holder, a conversion or a waiter of a resource.
type jsonLock struct {
	Tag          string `json:"tag"`   // the session's tag, hex (16 digits)
	Label        string `json:"label"` // the session's label as its client gave it ("" if none)
	Mode         string `json:"mode"`  // held (a holder) or wanted (a waiter)
	ConvertingTo string `json:"converting_to,omitempty"`
	Token        uint64 `json:"token"`     // the fencing token; 0 for a waiter
	Permits      uint32 `json:"permits"`   // of a semaphore; 0 on a lock
	HeldMs       *int64 `json:"held_ms"`   // since the grant; null for a waiter
	WaitedMs     *int64 `json:"waited_ms"` // since it was queued; null unless queued
}

// jsonResource is one resource in use.
type jsonResource struct {
	Name        string     `json:"name"`
	NameBase64  bool       `json:"name_base64,omitempty"` // name is base64: the bytes are not UTF-8
	Value       string     `json:"value"`
	ValueBase64 bool       `json:"value_base64,omitempty"` // value is base64: the bytes are not UTF-8
	ValueValid  bool       `json:"value_valid"`
	LockDelayMs int64      `json:"lock_delay_ms"` // lock-delay left; 0 if none
	Limit       uint32     `json:"limit"`         // a semaphore's permits; 0 for a lock
	Holders     []jsonLock `json:"holders"`       // in grant order
	Converting  []jsonLock `json:"converting"`    // the conversion queue, in order
	Waiting     []jsonLock `json:"waiting"`       // the wait queue, in order
}

// jsonWatchLine is one line of `watch --json`: the resource as `status
// NAME --json` prints it ([] when not in use), and when it was seen.
type jsonWatchLine struct {
	Time      string         `json:"time"` // RFC 3339, UTC, nanoseconds
	Resources []jsonResource `json:"resources"`
}

// jsonText is b as a JSON string: itself when it is UTF-8, else its
// base64 (and true).
func jsonText(b []byte) (string, bool) {
	if utf8.Valid(b) {
		return string(b), false
	}
	return base64.StdEncoding.EncodeToString(b), true
}

func millis(d *durationpb.Duration) *int64 {
	ms := d.AsDuration().Milliseconds() // nil reads as 0: the node omits a zero duration
	return &ms
}

// jsonLockOf is l in the JSON shape; queued says it waits (a waiter or a
// conversion), held that it holds a grant.
func jsonLockOf(l *pb.Lock, held, queued bool) jsonLock {
	j := jsonLock{Tag: hex.EncodeToString(l.SessionTag), Label: l.Label, Mode: modeName(l.Mode), Token: l.Token, Permits: l.Permits}
	if l.ConvertingTo != pb.Mode_MODE_UNSPECIFIED {
		j.ConvertingTo = modeName(l.ConvertingTo)
		queued = true
	}
	if held {
		j.HeldMs = millis(l.HeldFor)
	}
	if queued {
		j.WaitedMs = millis(l.WaitedFor)
	}
	return j
}

func jsonLocks(ls []*pb.Lock, held, queued bool) []jsonLock {
	out := make([]jsonLock, 0, len(ls))
	for _, l := range ls {
		out = append(out, jsonLockOf(l, held, queued))
	}
	return out
}

func jsonResourceOf(r *pb.Resource) jsonResource {
	j := jsonResource{ValueValid: r.ValueValid, Limit: r.Limit, LockDelayMs: *millis(r.DelayRemaining),
		Holders: jsonLocks(r.Holders, true, false), Converting: jsonLocks(r.Converting, true, true),
		Waiting: jsonLocks(r.Waiting, false, true)}
	j.Name, j.NameBase64 = jsonText(r.Name)
	j.Value, j.ValueBase64 = jsonText(r.Value)
	return j
}

func jsonResources(rs []*pb.Resource) []jsonResource {
	out := make([]jsonResource, 0, len(rs))
	for _, r := range rs {
		out = append(out, jsonResourceOf(r))
	}
	return out
}

// writeJSON writes v as one line. HTML characters stay as they are
// (this is no web page); control characters are escaped, as JSON does.
func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeWatchLine writes the state of one watched resource, seen at t.
func writeWatchLine(out io.Writer, t time.Time, rs []*pb.Resource) error {
	return writeJSON(out, jsonWatchLine{Time: t.UTC().Format(time.RFC3339Nano), Resources: jsonResources(rs)})
}

// The JSON of `status --waits --json`: the node's wait-for graph in the
// same conventions (names as strings, modes by name, tags in hex, numbers
// as numbers, milliseconds).
type jsonWaitGraph struct {
	Waiters   []jsonWaiter  `json:"waiters"` // by resource name, then in serving order
	Edges     []jsonEdge    `json:"edges"`
	Holders   []jsonHolding `json:"holders"`   // the holders the edges name
	Truncated bool          `json:"truncated"` // more requests wait than listed
}

// jsonWaiter is a queued acquire or conversion.
type jsonWaiter struct {
	Tag        string `json:"tag"`
	Name       string `json:"name"`
	NameBase64 bool   `json:"name_base64,omitempty"`
	Mode       string `json:"mode"`       // the mode it waits for
	Conversion bool   `json:"conversion"` // a conversion: held is the mode it holds meanwhile
	Held       string `json:"held,omitempty"`
	Permits    uint32 `json:"permits"`
	WaitedMs   *int64 `json:"waited_ms"` // null when the node cannot tell
}

// jsonEdge: waiter waits for blocker on the resource name.
type jsonEdge struct {
	Waiter     string `json:"waiter"`
	Blocker    string `json:"blocker"`
	Name       string `json:"name"`
	NameBase64 bool   `json:"name_base64,omitempty"`
	Reason     string `json:"reason"`   // "holder" or "ahead"
	Wanted     string `json:"wanted"`   // the waiter's mode
	Blocking   string `json:"blocking"` // holder: the mode held; ahead: the mode it waits for
	Permits    uint32 `json:"permits"`  // on a semaphore, the blocker's permits
}

// jsonHolding is a granted lock an edge names.
type jsonHolding struct {
	Tag        string `json:"tag"`
	Name       string `json:"name"`
	NameBase64 bool   `json:"name_base64,omitempty"`
	Mode       string `json:"mode"`
	Token      uint64 `json:"token"`
	Permits    uint32 `json:"permits"`
}

func jsonWaitGraphOf(g *pb.WaitGraphResponse) jsonWaitGraph {
	j := jsonWaitGraph{Waiters: []jsonWaiter{}, Edges: []jsonEdge{}, Holders: []jsonHolding{}, Truncated: g.Truncated}
	for _, w := range g.Waiters {
		x := jsonWaiter{Tag: hex.EncodeToString(w.SessionTag), Mode: modeName(w.Mode), Conversion: w.Conversion, Permits: w.Permits}
		x.Name, x.NameBase64 = jsonText(w.Resource)
		if w.Conversion {
			x.Held = modeName(w.Held)
		}
		if w.Waited != nil {
			x.WaitedMs = millis(w.Waited)
		}
		j.Waiters = append(j.Waiters, x)
	}
	for _, e := range g.Edges {
		x := jsonEdge{Waiter: hex.EncodeToString(e.WaiterTag), Blocker: hex.EncodeToString(e.BlockerTag), Reason: "ahead",
			Wanted: modeName(e.Wanted), Blocking: modeName(e.Blocking), Permits: e.Permits}
		if e.Reason == pb.WaitReason_WAIT_REASON_HOLDER {
			x.Reason = "holder"
		}
		x.Name, x.NameBase64 = jsonText(e.Resource)
		j.Edges = append(j.Edges, x)
	}
	for _, h := range g.Holders {
		x := jsonHolding{Tag: hex.EncodeToString(h.SessionTag), Mode: modeName(h.Mode), Token: h.Token, Permits: h.Permits}
		x.Name, x.NameBase64 = jsonText(h.Resource)
		j.Holders = append(j.Holders, x)
	}
	return j
}
