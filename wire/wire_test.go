package wire_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unicode"

	pb "github.com/bouncer-dlm/bouncer/api/bouncerv1"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"
)

// Every value crosses the wire as bytes: ToWire, proto.Marshal,
// proto.Unmarshal, FromWire must give back what went in.

func onWire[M proto.Message](t *rapid.T, m M) M {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatalf("marshal %v: %v", m, err)
	}
	out := m.ProtoReflect().New().Interface().(M)
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatalf("unmarshal %v: %v", m, err)
	}
	return out
}

func specCodes() []spec.Code {
	var cs []spec.Code
	for c := spec.Code(0); c.Valid(); c++ {
		cs = append(cs, c)
	}
	return cs
}

func specModes() []spec.Mode {
	var ms []spec.Mode
	for m := spec.Mode(0); m.Valid(); m++ {
		ms = append(ms, m)
	}
	return ms
}

var (
	genMode     = rapid.SampledFrom(specModes())
	genRefusal  = rapid.SampledFrom(specCodes()[1:])
	genDuration = rapid.Custom(func(t *rapid.T) time.Duration {
		return time.Duration(rapid.Int64Range(0, math.MaxInt64).Draw(t, "ns"))
	})
	genSession = rapid.Custom(func(t *rapid.T) spec.SessionID {
		return spec.SessionID(rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "id"))
	})
	genName = rapid.Custom(func(t *rapid.T) string {
		return string(rapid.SliceOfN(rapid.Byte(), 0, 32).Draw(t, "bytes"))
	})
	// genValue keeps every empty value nil, as spec does.
	genValue = rapid.Custom(func(t *rapid.T) []byte {
		return spec.CloneValue(rapid.SliceOfN(rapid.Byte(), 0, 32).Draw(t, "bytes"))
	})
)

// genInput draws an input of any op, with the fields that op carries.
var genInput = rapid.Custom(func(t *rapid.T) spec.Input {
	op := rapid.SampledFrom([]spec.Op{spec.OpOpen, spec.OpKeepAlive, spec.OpClose, spec.OpAcquire,
		spec.OpConvert, spec.OpRelease, spec.OpCancel}).Draw(t, "op")
	in := spec.Input{Op: op}
	if op == spec.OpOpen {
		in.TTL = genDuration.Draw(t, "ttl")
		in.Label = rapid.String().Draw(t, "label")
		return in // the node issues the session
	}
	in.Session = genSession.Draw(t, "session")
	if !op.Mutating() {
		return in
	}
	in.Request = spec.RequestID(rapid.Uint64().Draw(t, "request"))
	in.Acked = spec.RequestID(rapid.Uint64().Draw(t, "acked"))
	in.Resource = genName.Draw(t, "resource")
	if op == spec.OpAcquire || op == spec.OpConvert {
		in.Mode = genMode.Draw(t, "mode")
		in.NoQueue = rapid.Bool().Draw(t, "noqueue")
		in.WaitTimeout = genDuration.Draw(t, "wait")
	}
	if op == spec.OpAcquire {
		in.LockDelay = genDuration.Draw(t, "delay")
		in.Permits = rapid.Uint32().Draw(t, "permits")
		in.Limit = rapid.Uint32().Draw(t, "limit")
	}
	if op == spec.OpConvert || op == spec.OpRelease {
		in.WriteValue = rapid.Bool().Draw(t, "write")
		in.Value = genValue.Draw(t, "value")
	}
	return in
})

func inputRoundTrip(t *rapid.T, in spec.Input) (spec.Input, error) {
	switch in.Op {
	case spec.OpOpen:
		return wire.OpenFromWire(onWire(t, wire.OpenToWire(in)))
	case spec.OpKeepAlive:
		return wire.KeepAliveFromWire(onWire(t, wire.KeepAliveToWire(in)))
	case spec.OpClose:
		return wire.CloseFromWire(onWire(t, wire.CloseToWire(in)))
	}
	req := onWire(t, wire.PipeRequestToWire(7, in))
	if req.Call != 7 {
		t.Fatalf("call %d, want 7", req.Call)
	}
	return wire.PipeRequestFromWire(req)
}

// genAnswer draws an op and a result it may be answered with.
var genAnswer = rapid.Custom(func(t *rapid.T) struct {
	op spec.Op
	r  spec.Result
} {
	op := rapid.SampledFrom([]spec.Op{spec.OpAcquire, spec.OpConvert, spec.OpRelease, spec.OpCancel}).Draw(t, "op")
	grants := op == spec.OpAcquire || op == spec.OpConvert
	kind := rapid.IntRange(0, 2).Draw(t, "kind")
	var r spec.Result
	switch {
	case kind == 0:
		r = spec.Refuse(genRefusal.Draw(t, "code"), rapid.String().Draw(t, "detail"))
	case kind == 1 && grants:
		r = spec.Result{Pending: true}
	case grants:
		r = genGrant.Draw(t, "grant")
	}
	return struct {
		op spec.Op
		r  spec.Result
	}{op, r}
})

var genGrant = rapid.Custom(func(t *rapid.T) spec.Result {
	return spec.Result{Code: spec.OK, Mode: genMode.Draw(t, "mode"), Token: spec.Token(rapid.Uint64().Draw(t, "token")),
		Value: genValue.Draw(t, "value"), ValueValid: rapid.Bool().Draw(t, "valid")}
})

var genEvent = rapid.Custom(func(t *rapid.T) spec.Event {
	e := spec.Event{Kind: rapid.SampledFrom([]spec.EventKind{spec.Completed, spec.Blocking, spec.Expired}).Draw(t, "kind"),
		Session: genSession.Draw(t, "session")}
	switch e.Kind {
	case spec.Completed:
		e.Request = spec.RequestID(rapid.Uint64().Draw(t, "request"))
		e.Resource = genName.Draw(t, "resource")
		if rapid.Bool().Draw(t, "granted") {
			e.Result = genGrant.Draw(t, "grant")
		} else {
			e.Result = spec.Refuse(genRefusal.Draw(t, "code"), rapid.String().Draw(t, "detail"))
		}
	case spec.Blocking:
		e.Resource = genName.Draw(t, "resource")
		e.Mode = genMode.Draw(t, "mode")
	}
	return e
})

func TestRoundTrip(t *testing.T) {
	t.Run("input", rapid.MakeCheck(func(t *rapid.T) {
		in := genInput.Draw(t, "input")
		got, err := inputRoundTrip(t, in)
		if err != nil || !equal(got, in) {
			t.Fatalf("%+v came back as %+v (%v)", in, got, err)
		}
	}))
	t.Run("opened", rapid.MakeCheck(func(t *rapid.T) {
		id := genSession.Draw(t, "id")
		ttl := time.Duration(rapid.Int64Range(1, math.MaxInt64).Draw(t, "ttl"))
		gotID, gotTTL, err := wire.OpenedFromWire(onWire(t, wire.OpenedToWire(id, ttl)))
		if err != nil || gotID != id || gotTTL != ttl {
			t.Fatalf("%x %v came back as %x %v (%v)", id, ttl, gotID, gotTTL, err)
		}
	}))
	t.Run("result", rapid.MakeCheck(func(t *rapid.T) {
		a := genAnswer.Draw(t, "answer")
		reply := onWire(t, wire.PipeReplyToWire(9, a.op, a.r))
		got, err := wire.PipeReplyFromWire(reply)
		if err != nil || reply.Call != 9 || !equal(got, a.r) {
			t.Fatalf("%v answered %+v came back as %+v (call %d, %v)", a.op, a.r, got, reply.Call, err)
		}
		if a.r.Code == spec.OK {
			return
		}
		// A refusal also travels in a status error and a keepalive answer.
		if got, ok := wire.ResultFromStatus(wire.StatusError(a.r)); !ok || !equal(got, a.r) {
			t.Fatalf("refusal %+v came back from a status as %+v (%v)", a.r, got, ok)
		}
		got, err = wire.KeepAliveResponseFromWire(onWire(t, wire.KeepAliveResponseToWire(nil, a.r)))
		if err != nil || !equal(got, a.r) {
			t.Fatalf("refusal %+v came back from a keepalive as %+v (%v)", a.r, got, err)
		}
	}))
	t.Run("event", rapid.MakeCheck(func(t *rapid.T) {
		e := genEvent.Draw(t, "event")
		got, ok, err := wire.EventFromWire(e.Session, onWire(t, wire.EventToWire(e)))
		if err != nil || !ok || !equal(got, e) {
			t.Fatalf("%+v came back as %+v (%v %v)", e, got, ok, err)
		}
	}))
}

// equal compares values of spec's plain structs (an empty and a nil
// value are the same value).
func equal[T any](a, b T) bool { return assert.ObjectsAreEqual(a, b) }

// TestEnums: every code and mode has the same name on both sides, and the
// same number (a mode one more on the wire, whose zero is UNSPECIFIED);
// every value of the wire enums is one of spec's; anything else is an error.
func TestEnums(t *testing.T) {
	for _, c := range specCodes() {
		w := wire.CodeToWire(c)
		require.Equal(t, int32(c), int32(w), "number of %v", c)
		require.Equal(t, "CODE_"+screaming(c.String()), w.String(), "name of %v", c)
		back, err := wire.CodeFromWire(w)
		require.NoError(t, err)
		require.Equal(t, c, back)
	}
	for _, m := range specModes() {
		w := wire.ModeToWire(m)
		require.Equal(t, int32(m)+1, int32(w), "number of %v", m)
		require.Equal(t, "MODE_"+m.String(), w.String(), "name of %v", m)
		back, err := wire.ModeFromWire(w)
		require.NoError(t, err)
		require.Equal(t, m, back)
	}
	require.Len(t, pb.Code_name, len(specCodes()), "the wire has codes spec lacks, or the reverse")
	require.Len(t, pb.Mode_name, len(specModes())+1, "the wire has modes spec lacks, or the reverse")
	for n := range pb.Code_name {
		c, err := wire.CodeFromWire(pb.Code(n))
		require.NoError(t, err, "wire code %d", n)
		require.Equal(t, pb.Code(n), wire.CodeToWire(c))
	}
	for n := range pb.Mode_name {
		m, err := wire.ModeFromWire(pb.Mode(n))
		if pb.Mode(n) == pb.Mode_MODE_UNSPECIFIED {
			require.Error(t, err, "UNSPECIFIED is no mode")
			continue
		}
		require.NoError(t, err, "wire mode %d", n)
		require.Equal(t, pb.Mode(n), wire.ModeToWire(m))
	}
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.Int32().Draw(t, "n")
		if _, known := pb.Code_name[n]; !known {
			if c, err := wire.CodeFromWire(pb.Code(n)); err == nil {
				t.Fatalf("unknown wire code %d read as %v", n, c)
			}
		}
		if _, known := pb.Mode_name[n]; !known {
			if m, err := wire.ModeFromWire(pb.Mode(n)); err == nil {
				t.Fatalf("unknown wire mode %d read as %v", n, m)
			}
		}
	})
}

// screaming spells a spec name (WouldBlock) as protobuf does (WOULD_BLOCK).
func screaming(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && unicode.IsUpper(r) && unicode.IsLower(rune(s[i-1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// TestMalformed: what no ToWire writes is an error naming its field,
// never a default.
func TestMalformed(t *testing.T) {
	id := make([]byte, 16)
	for _, tc := range []struct {
		name  string
		err   error
		field string
	}{
		{"mode unspecified", second(wire.AcquireFromWire(&pb.AcquireRequest{SessionId: id})), "mode"},
		{"mode unknown", second(wire.ConvertFromWire(&pb.ConvertRequest{SessionId: id, Mode: 42})), "mode"},
		{"short session", second(wire.ReleaseFromWire(&pb.ReleaseRequest{SessionId: id[:3]})), "session_id"},
		{"no op", second(wire.PipeRequestFromWire(&pb.PipeRequest{Call: 1})), "op"},
		{"open with a session", second(wire.OpenFromWire(&pb.OpenSessionRequest{SessionId: id})), "session_id"},
		{"code unknown", second(wire.PipeReplyFromWire(&pb.PipeReply{Code: 99})), "code"},
		{"grant mode unknown", second(wire.PipeReplyFromWire(&pb.PipeReply{Lock: &pb.LockResponse{Mode: 9}})), "mode"},
		{"blocking mode unspecified", third(wire.EventFromWire(spec.SessionID{}, &pb.Event{Kind: &pb.Event_Blocking{Blocking: &pb.Blocking{}}})), "mode"},
		{"no event", third(wire.EventFromWire(spec.SessionID{}, &pb.Event{})), "kind"},
	} {
		var e *spec.Error
		require.ErrorAs(t, tc.err, &e, tc.name)
		require.Equal(t, spec.InvalidArgument, e.Code, tc.name)
		require.True(t, strings.HasPrefix(e.Detail, tc.field+":"), "%s: %q names no %s", tc.name, e.Detail, tc.field)
	}
	// A status whose ErrorInfo holds a code this side lacks is no answer.
	st, err := status.New(codes.NotFound, "x").WithDetails(&pb.ErrorInfo{Code: 99})
	require.NoError(t, err)
	_, ok := wire.ResultFromStatus(st.Err())
	require.False(t, ok, "an ErrorInfo with an unknown code")
	_, ok = wire.ResultFromStatus(status.Error(codes.NotFound, "x"))
	require.False(t, ok, "a status with no ErrorInfo")
}

func second[A any](_ A, err error) error        { return err }
func third[A, B any](_ A, _ B, err error) error { return err }

func TestLeaderHint(t *testing.T) {
	for _, leader := range []string{"", "10.0.0.2:7400"} {
		got, ok := wire.LeaderHint(wire.NotLeaderError(leader))
		if !ok || got != leader {
			t.Fatalf("LeaderHint(NotLeaderError(%q)) = %q, %v", leader, got, ok)
		}
	}
	for _, err := range []error{nil, errors.New("x"), status.Error(codes.Unavailable, "not the leader"),
		wire.StatusError(spec.Refuse(spec.Unavailable, "disk full"))} {
		if _, ok := wire.LeaderHint(err); ok {
			t.Fatalf("LeaderHint(%v) is a hint", err)
		}
	}
}
