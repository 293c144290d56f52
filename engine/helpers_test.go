package engine_test

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
)

// memKV keeps the records of a core's writes in memory: a stand-in for the
// store where a test wants restarts without Pebble.
type memKV map[string][]byte

func (kv memKV) apply(w *engine.Writes) {
	_ = w.Each(func(key, value []byte, del bool) error {
		if del {
			delete(kv, string(key))
		} else {
			kv[string(key)] = append([]byte(nil), value...)
		}
		return nil
	})
}

func (kv memKV) records(f func(key, value []byte) error) error {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := f([]byte(k), kv[k]); err != nil {
			return err
		}
	}
	return nil
}

// diffResults describes how two replies differ, or returns "".
func diffResults(model, eng spec.Result) string {
	if model.Equal(&eng) {
		return ""
	}
	return fmt.Sprintf("model: %#v\nengine: %#v", model, eng)
}

// diffEvents describes how two event sequences differ, or returns "".
func diffEvents(model, eng []spec.Event) string {
	if spec.EventsEqual(model, eng) {
		return ""
	}
	var b strings.Builder
	b.WriteString("model events:\n")
	for _, e := range model {
		fmt.Fprintf(&b, "  %s\n", e.String())
	}
	b.WriteString("engine events:\n")
	for _, e := range eng {
		fmt.Fprintf(&b, "  %s\n", e.String())
	}
	return b.String()
}

// diffStates describes how two states differ, or returns "".
func diffStates(model, eng *spec.State) string {
	if model.Equal(eng) {
		return ""
	}
	a, b := model.String(), eng.String()
	if a == b {
		return fmt.Sprintf("states print alike but differ:\nmodel: %#v\nengine: %#v", model, eng)
	}
	return "model state:\n" + a + "engine state:\n" + b
}
