package replica

import (
	"reflect"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// TestEntryRoundTrip: every field of every input survives the log, and the
// stamp can be read without decoding the rest.
func TestEntryRoundTrip(t *testing.T) {
	for _, e := range []entry{
		{kind: kindTick, at: 12345, proposer: 3, seq: 7},
		{kind: kindFailover, at: 12346, proposer: 2, seq: 1},
		{kind: kindTurn, at: spec.Time(time.Hour), proposer: 1, seq: 1 << 40, inputs: []spec.Input{
			{Op: spec.OpOpen, Session: spec.NamedSession("s"), TTL: time.Minute, Label: "host/42/prog"},
			{Op: spec.OpAcquire, Session: spec.NamedSession("t"), Request: 9, Acked: 8, Resource: "row/1",
				Mode: spec.PW, NoQueue: true, WaitTimeout: -1, LockDelay: time.Second},
			{Op: spec.OpRelease, Session: spec.NamedSession("t"), Request: 10, Resource: "row/1",
				WriteValue: true, Value: []byte{0, 1, 2}},
			{Op: spec.OpAcquire, Session: spec.NamedSession("u"), Request: 11, Resource: "pool", Mode: spec.PR,
				WaitTimeout: time.Second, Permits: 2, Limit: 3},
		}},
	} {
		// Every field of spec.Input is set in some input here, so that a
		// field added to Input but not to the log fails the round trip.
		for i := 0; i < reflect.TypeOf(spec.Input{}).NumField() && e.kind == kindTurn; i++ {
			set := false
			for _, in := range e.inputs {
				set = set || !reflect.ValueOf(in).Field(i).IsZero()
			}
			if !set {
				t.Errorf("no input sets spec.Input.%s", reflect.TypeOf(spec.Input{}).Field(i).Name)
			}
		}
		data := appendEntry(nil, &e)
		if got := entryTime(data); got != e.at {
			t.Errorf("entryTime = %v, want %v", got, e.at)
		}
		var got entry
		decodeEntry(data, &got)
		if got.kind != e.kind || got.at != e.at || got.proposer != e.proposer || got.seq != e.seq ||
			len(got.inputs) != len(e.inputs) || len(e.inputs) > 0 && !reflect.DeepEqual(got.inputs, e.inputs) {
			t.Errorf("decoded %+v, want %+v", got, e)
		}
	}
}

// TestEntryMalformed: bytes that no replica wrote are a programmer error.
func TestEntryMalformed(t *testing.T) {
	good := appendEntry(nil, &entry{kind: kindTurn, at: 1, proposer: 1, seq: 1,
		inputs: []spec.Input{{Op: spec.OpKeepAlive, Session: spec.NamedSession("s")}}})
	for name, data := range map[string][]byte{
		"version":  append([]byte{9}, good[1:]...),
		"kind":     append([]byte{entryVersion, 7}, good[2:]...),
		"short":    good[:len(good)-3],
		"trailing": append(append([]byte(nil), good...), 0),
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: decoded without a panic", name)
				}
			}()
			var e entry
			decodeEntry(data, &e)
		}()
	}
}
