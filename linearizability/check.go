package linearizability

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/bouncer-dlm/bouncer/spec"
)

// Verdict is what a check concludes.
type Verdict string

const (
	// Ok: every resource's history is linearizable.
	Ok Verdict = "Ok"
	// Illegal: some resource's history is not.
	Illegal Verdict = "Illegal"
	// Unknown: the checker ran out of time. It counts as a failure, never as
	// a pass.
	Unknown Verdict = "Unknown"
)

// DefaultTimeout bounds a check unless the caller gives another bound.
const DefaultTimeout = time.Minute

// Report is the outcome of Check.
type Report struct {
	Verdict    Verdict
	Operations int      // Porcupine operations checked
	Resources  int      // partitions
	Illegal    []string // resources whose history is not linearizable, sorted
	// Problems are violations found before Porcupine runs, in the history's
	// times alone (an outcome earlier than the rules allow), and entries
	// that are not well formed.
	Problems []string

	model porcupine.Model
	ops   []porcupine.Operation
}

// OK reports whether the history passed: Ok, and no problems.
func (v *Report) OK() bool { return v.Verdict == Ok && len(v.Problems) == 0 }

func (v *Report) String() string {
	s := fmt.Sprintf("%s: %d operations on %d resources", v.Verdict, v.Operations, v.Resources)
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
func Check(h []Entry, timeout time.Duration) Report {
	ops, names, problems := operations(h)
	m := newModel(names)
	v := Report{Operations: len(ops), Problems: problems, model: m, ops: ops}
	parts := m.Partition(ops)
	v.Resources = len(parts)
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	v.Verdict = Verdict(porcupine.CheckOperationsTimeout(m, ops, timeout))
	if v.Verdict == Illegal {
		for _, p := range parts {
			if porcupine.CheckOperationsTimeout(m, p, timeout) == porcupine.Illegal {
				v.Illegal = append(v.Illegal, p[0].Input.(*input).resource)
			}
		}
		sort.Strings(v.Illegal)
	}
	if len(problems) > 0 && v.Verdict == Ok {
		v.Verdict = Illegal
	}
	return v
}

// WriteHTML writes Porcupine's visualization of the history: for each
// resource, the longest linearizable prefixes and where they fail.
func (v *Report) WriteHTML(w io.Writer, timeout time.Duration) error {
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
		if err := e.validate(); err != nil {
			problems = append(problems, fmt.Sprintf("entry %d: %v", i, err))
			continue
		}
		id, ok := sessions[e.Input.Session]
		if !ok {
			id = int32(len(names))
			sessions[e.Input.Session] = id
			short := spec.ShortID(e.Input.Session)
			names = append(names, fmt.Sprintf("c%d/%s", e.Client, short[:min(6, len(short))]))
		}
		end := int64(e.Return) // Never for an unbounded unknown outcome
		if !e.request() {
			kind, out := opClose, &output{known: e.Known, res: e.Output}
			if e.Expiry() {
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
		r := &e.Input
		in := &input{kind: opApply, session: id, request: r.Request, op: r.Op, mode: r.Mode,
			noQueue: r.NoQueue, lockDelay: r.LockDelay > 0, writeValue: r.WriteValue, value: string(r.Value),
			permits: r.Permits, limit: r.Limit,
			resource: r.Resource, name: names[id]}
		waits := r.Op == spec.OpAcquire || r.Op == spec.OpConvert
		switch {
		case !waits && e.Known, waits && !e.Queued && e.Known && immediateOnly(e.Output.Code):
			add(e, in, &output{known: true, res: e.Output}, int64(e.Call), end)
			continue
		case !waits:
			add(e, in, &output{}, int64(e.Call), end)
			continue
		case e.Queued:
			add(e, in, &output{pending: true, final: e.Known, res: e.Output}, int64(e.Call), int64(e.Pending))
		default:
			add(e, in, &output{final: e.Known, res: e.Output}, int64(e.Call), end)
		}
		oc := *in
		oc.kind = opOutcome
		call := int64(e.Call)
		if !e.Known {
			// Whatever the outcome was, the model needs it no earlier than
			// a timeout could have come; a grant or a cancel it recorded
			// before waits for it.
			call = min(int64(e.Call.Add(r.WaitTimeout)), end)
		}
		if e.Known && e.Output.Code == spec.Timeout {
			// The node timed the request out no earlier than WaitTimeout
			// after it received it, which was after the call.
			call = int64(e.Call.Add(r.WaitTimeout))
			if call > end {
				problems = append(problems, fmt.Sprintf("%s request %d on %q timed out by %v, before its wait timeout %v ran out",
					names[id], r.Request, r.Resource, spec.Time(end), r.WaitTimeout))
			}
		}
		add(e, &oc, &output{known: e.Known, res: e.Output}, call, end)
	}
	return ops, names, problems
}
