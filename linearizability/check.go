package linearizability

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/bouncer-dlm/bouncer/spec"
)

// Result is the verdict of a check.
type Result string

const (
	// Ok: every resource's history is linearizable.
	Ok Result = "Ok"
	// Illegal: some resource's history is not.
	Illegal Result = "Illegal"
	// Unknown: the checker ran out of time. It counts as a failure, never as
	// a pass.
	Unknown Result = "Unknown"
)

// DefaultTimeout bounds a check unless the caller gives another bound.
const DefaultTimeout = time.Minute

// Verdict is the outcome of Check.
type Verdict struct {
	Result     Result
	Operations int      // Porcupine operations checked
	Resources  int      // partitions
	Illegal    []string // resources whose history is not linearizable, sorted
	// Problems are violations found before Porcupine runs, in the history's
	// times alone (an outcome earlier than the rules allow).
	Problems []string

	model porcupine.Model
	ops   []porcupine.Operation
}

// OK reports whether the history passed: Ok, and no problems.
func (v *Verdict) OK() bool { return v.Result == Ok && len(v.Problems) == 0 }

func (v *Verdict) String() string {
	s := fmt.Sprintf("%s: %d operations on %d resources", v.Result, v.Operations, v.Resources)
	if len(v.Illegal) > 0 {
		s += fmt.Sprintf("; not linearizable on %q", v.Illegal)
	}
	for _, p := range v.Problems {
		s += "; " + p
	}
	return s
}

// Check checks h for linearizability against the per-resource model,
// partitioned by resource, within timeout (which must be positive).
func Check(h []Entry, timeout time.Duration) Verdict {
	ops, names, problems := operations(h)
	m := newModel(names)
	v := Verdict{Operations: len(ops), Problems: problems, model: m, ops: ops}
	parts := m.Partition(ops)
	v.Resources = len(parts)
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	v.Result = Result(porcupine.CheckOperationsTimeout(m, ops, timeout))
	if v.Result == Illegal {
		for _, p := range parts {
			if porcupine.CheckOperationsTimeout(m, p, timeout) == porcupine.Illegal {
				v.Illegal = append(v.Illegal, p[0].Input.(*input).resource)
			}
		}
		sort.Strings(v.Illegal)
	}
	if len(problems) > 0 && v.Result == Ok {
		v.Result = Illegal
	}
	return v
}

// WriteHTML writes Porcupine's visualization of the history: for each
// resource, the longest linearizable prefixes and where they fail.
func (v *Verdict) WriteHTML(w io.Writer, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	_, info := porcupine.CheckOperationsVerbose(v.model, v.ops, timeout)
	var buf bytes.Buffer
	if err := porcupine.Visualize(v.model, info, &buf); err != nil {
		return fmt.Errorf("linearizability: visualize: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// newModel is the Porcupine model over inputs and outputs of this package.
func newModel(names []string) porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: partition,
		Init:      func() []any { return []any{initState()} },
		Step: func(st, in, out any) []any {
			next := step(st.(*state), in.(*input), out.(*output))
			res := make([]any, len(next))
			for i, s := range next {
				res[i] = s
			}
			return res
		},
		Equal: func(a, b any) bool { return a.(*state).canonical() == b.(*state).canonical() },
		Hash:  func(st any) uint64 { return st.(*state).hash() },
		DescribeOperation: func(in, out any) string {
			return describeOp(in.(*input), out.(*output))
		},
		DescribeState: func(st any) string { return st.(*state).describe(names) },
	}
	return nm.ToModel()
}

func partition(ops []porcupine.Operation) [][]porcupine.Operation {
	by := map[string][]porcupine.Operation{}
	var names []string
	for _, op := range ops {
		r := op.Input.(*input).resource
		if _, ok := by[r]; !ok {
			names = append(names, r)
		}
		by[r] = append(by[r], op)
	}
	sort.Strings(names)
	parts := make([][]porcupine.Operation, len(names))
	for i, n := range names {
		parts[i] = by[n]
	}
	return parts
}

func describeOp(in *input, out *output) string {
	var s string
	switch in.kind {
	case opApply:
		s = fmt.Sprintf("%s %v", in.name, in.op)
		if in.op == spec.OpAcquire || in.op == spec.OpConvert {
			s += " " + in.mode.String()
			if in.noQueue {
				s += " try"
			}
		}
		if in.writeValue {
			s += fmt.Sprintf(" value=%q", in.value)
		}
		s += fmt.Sprintf(" #%d", in.request)
	case opOutcome:
		s = fmt.Sprintf("%s outcome #%d", in.name, in.request)
	case opClose:
		s = in.name + " close"
	case opExpire:
		s = in.name + " expires"
		return s
	}
	switch {
	case out.pending:
		return s + " → Pending"
	case out.known:
		return s + " → " + out.res.String()
	}
	return s + " → ?"
}

// infinity is the return time of an operation whose outcome is unknown and
// unbounded.
const infinity = math.MaxInt64

// immediateOnly reports whether a code can only be the node's immediate
// answer to a request, never the later outcome of a queued one.
func immediateOnly(c spec.Code) bool {
	switch c {
	case spec.OK, spec.Timeout, spec.Cancelled, spec.Deadlock, spec.SessionExpired:
		return false
	}
	return true
}

// operations turns a history into Porcupine operations (see Entry and the
// model), with the sessions' names, and any problem visible from the times
// alone.
func operations(h []Entry) ([]porcupine.Operation, []string, []string) {
	sessions := map[spec.SessionID]int32{}
	var names, problems []string
	var ops []porcupine.Operation
	add := func(e *Entry, in *input, out *output, call, ret int64) {
		if ret < call {
			ret = call
		}
		ops = append(ops, porcupine.Operation{ClientId: e.Client, Input: in, Output: out, Call: call, Return: ret})
	}
	for i := range h {
		e := &h[i]
		id, ok := sessions[e.Session]
		if !ok {
			id = int32(len(names))
			sessions[e.Session] = id
			names = append(names, fmt.Sprintf("c%d/%s", e.Client, spec.ShortID(e.Session)[:min(6, len(spec.ShortID(e.Session)))]))
		}
		end := int64(infinity)
		switch {
		case e.Known:
			end = int64(e.Return)
		case e.Bounded:
			end = int64(e.Until)
		}
		switch e.Kind {
		case Close, Expire:
			kind, out := opClose, &output{known: e.Known, res: e.Result}
			if e.Kind == Expire {
				kind, out = opExpire, &output{}
				if end < int64(e.Call) {
					problems = append(problems, fmt.Sprintf("session %s ended by %v, before its lease could have run out at %v",
						names[id], spec.Time(end), e.Call))
				}
			}
			for _, r := range e.Resources {
				add(e, &input{kind: kind, session: id, resource: r, name: names[id]}, out, int64(e.Call), end)
			}
			continue
		}
		in := &input{kind: opApply, session: id, request: e.Request, op: e.Kind.op(), mode: e.Mode,
			noQueue: e.NoQueue, lockDelay: e.LockDelay > 0, writeValue: e.WriteValue, value: string(e.Value),
			resource: e.Resource, name: names[id]}
		waits := e.Kind == Acquire || e.Kind == Convert
		switch {
		case !waits && e.Known, waits && !e.HasPending && e.Known && immediateOnly(e.Result.Code):
			add(e, in, &output{known: true, res: e.Result}, int64(e.Call), end)
			continue
		case !waits:
			add(e, in, &output{}, int64(e.Call), end)
			continue
		case e.HasPending:
			add(e, in, &output{pending: true, final: e.Known, res: e.Result}, int64(e.Call), int64(e.Pending))
		default:
			add(e, in, &output{final: e.Known, res: e.Result}, int64(e.Call), end)
		}
		oc := *in
		oc.kind = opOutcome
		call := int64(e.Call)
		if !e.Known {
			// Whatever the outcome was, the model needs it no earlier than
			// a timeout could have come; a grant or a cancel it recorded
			// before waits for it.
			call = min(int64(e.Call.Add(e.WaitTimeout)), end)
		}
		if e.Known && e.Result.Code == spec.Timeout {
			// The node timed the request out no earlier than WaitTimeout
			// after it received it, which was after the call.
			call = int64(e.Call.Add(e.WaitTimeout))
			if call > end {
				problems = append(problems, fmt.Sprintf("%s request %d on %q timed out by %v, before its wait timeout %v ran out",
					names[id], e.Request, e.Resource, spec.Time(end), e.WaitTimeout))
			}
		}
		add(e, &oc, &output{known: e.Known, res: e.Result}, call, end)
	}
	return ops, names, problems
}

func (k Kind) op() spec.Op {
	switch k {
	case Acquire:
		return spec.OpAcquire
	case Convert:
		return spec.OpConvert
	case Release:
		return spec.OpRelease
	case Cancel:
		return spec.OpCancel
	}
	return 0
}
