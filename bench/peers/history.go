package peers

// The history writer of the correctness run: every client, whatever the
// system, records what it observed in the format `bouncer check` reads
// (linearizability/doc.go), one JSON line per request, close or expiry.

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/bouncer-dlm/bouncer/linearizability"
	"github.com/bouncer-dlm/bouncer/spec"
)

// Recorder writes one client's history. Times are nanoseconds since Epoch,
// the same for every client of a run (they share the machine's clock), so
// that the merged histories compare.
type Recorder struct {
	Client int
	Epoch  time.Time

	mu   sync.Mutex
	w    *bufio.Writer
	err  error
	reqs map[spec.SessionID]spec.RequestID
}

// NewRecorder writes client's history to w, a line at a time (flushed after
// each, so that a client killed mid-run leaves whole lines).
func NewRecorder(w io.Writer, client int, epoch time.Time) *Recorder {
	return &Recorder{Client: client, Epoch: epoch, w: bufio.NewWriter(w), reqs: map[spec.SessionID]spec.RequestID{}}
}

// At is t as a history time.
func (r *Recorder) At(t time.Time) spec.Time { return spec.Time(t.Sub(r.Epoch)) }

// Err is the first write error, if any.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *Recorder) write(e linearizability.Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.Client = r.Client
	if e.Input.Op.Mutating() {
		r.reqs[e.Input.Session]++
		e.Input.Request = r.reqs[e.Input.Session]
	}
	b, err := json.Marshal(e)
	if err == nil {
		_, _ = r.w.Write(b)
		_ = r.w.WriteByte('\n')
		err = r.w.Flush()
	}
	if err != nil && r.err == nil {
		r.err = err
	}
}

// Outcome is what a client learned of a request: Known with Code (and for
// a grant Token and Value), or not (the request may or may not have taken
// effect).
type Outcome struct {
	Known      bool
	Code       spec.Code
	Token      uint64
	Value      []byte
	ValueValid bool
}

// Granted is a grant with token, of a resource without a value block
// (etcd, Redis): as Bouncer's empty, valid block that nobody wrote.
func Granted(token uint64) Outcome {
	return Outcome{Known: true, Code: spec.OK, Token: token, ValueValid: true}
}

// Refused is a known outcome other than a grant.
func Refused(code spec.Code) Outcome { return Outcome{Known: true, Code: code} }

// Unknown is an outcome the client never learned.
var Unknown = Outcome{}

// Acquire records an exclusive acquire of resource on session s that may
// queue for wait, called at call and answered at ret (ignored if the
// outcome is unknown).
func (r *Recorder) Acquire(s spec.SessionID, resource string, wait time.Duration, call, ret time.Time, o Outcome) {
	e := linearizability.Entry{Input: spec.Input{Op: spec.OpAcquire, Session: s, Resource: resource,
		Mode: spec.EX, WaitTimeout: wait}, Call: r.At(call)}
	r.settle(&e, ret, o)
	if e.Known && o.Code == spec.OK {
		e.Output.Mode = spec.EX
	}
	r.write(e)
}

// Release records the release of resource on session s.
func (r *Recorder) Release(s spec.SessionID, resource string, call, ret time.Time, o Outcome) {
	e := linearizability.Entry{Input: spec.Input{Op: spec.OpRelease, Session: s, Resource: resource}, Call: r.At(call)}
	r.settle(&e, ret, o)
	r.write(e)
}

// Close records the end of session s by its client, naming every resource
// it used.
func (r *Recorder) Close(s spec.SessionID, resources []string, call, ret time.Time, o Outcome) {
	if len(resources) == 0 {
		return
	}
	e := linearizability.Entry{Input: spec.Input{Op: spec.OpClose, Session: s}, Resources: resources, Call: r.At(call)}
	r.settle(&e, ret, o)
	r.write(e)
}

// Expire records that session s's lease ran out at from or later: learned
// is when the client learned the server had ended it, or zero if it never
// did (it only knows its own count of the lease ran out, and stopped
// renewing it, so the server ends it at some time after from).
func (r *Recorder) Expire(s spec.SessionID, resources []string, from, learned time.Time) {
	if len(resources) == 0 {
		return
	}
	e := linearizability.Entry{Input: spec.Input{Session: s}, Resources: resources, Call: r.At(from),
		Return: linearizability.Never}
	if !learned.IsZero() {
		e.Known, e.Return = true, r.At(learned)
	}
	r.write(e)
}

func (r *Recorder) settle(e *linearizability.Entry, ret time.Time, o Outcome) {
	e.Return = linearizability.Never
	if !o.Known {
		return
	}
	e.Known, e.Return = true, r.At(ret)
	e.Output = spec.Result{Code: o.Code, Token: spec.Token(o.Token), Value: o.Value, ValueValid: o.ValueValid}
}

// SessionOf makes a history session id from a system's own: etcd's lease
// id or Redis's random lock value, with the client's index, so that ids
// from different clients never collide.
func SessionOf(client int, id uint64, salt uint64) spec.SessionID {
	var s spec.SessionID
	binary.BigEndian.PutUint32(s[0:4], uint32(client)+1)
	binary.BigEndian.PutUint64(s[4:12], id)
	binary.BigEndian.PutUint32(s[12:16], uint32(salt))
	return s
}
