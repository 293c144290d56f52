package protocol

import (
	"strings"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// TestAssertions plants each mistake an always-on assertion of the session
// exists to catch, and requires a panic at once (rather than a request
// table out of order, or the outcome of one request given to another).
func TestAssertions(t *testing.T) {
	acquire := spec.Input{Op: spec.OpAcquire, Resource: "r", Mode: spec.EX, NoQueue: true}
	ok := spec.Result{Code: spec.OK}
	for name, plant := range map[string]func(s *Session){
		"reuse a request id": func(s *Session) { s.nextReq--; s.request(0, acquire) },
		"number a request at or below the acknowledged": func(s *Session) {
			s.reqs, s.acked = nil, s.nextReq+1
			s.request(0, acquire)
		},
		"resolve a request that is not tracked": func(s *Session) { s.resolve(7, ok) },
		"resolve a request twice":               func(s *Session) { s.resolve(2, ok); s.resolve(2, ok) },
	} {
		t.Run(name, func(t *testing.T) {
			s, err := NewSession(spec.NamedSession("c1"), Config{TTL: 4 * time.Second}, 0)
			if err != nil {
				t.Fatal(err)
			}
			s.request(0, acquire) // request 1
			s.request(0, acquire) // request 2
			defer func() {
				p, _ := recover().(string)
				if !strings.HasPrefix(p, "client/protocol: assertion failed") {
					t.Fatalf("the session did not assert (recovered %q)", p)
				}
			}()
			plant(s)
		})
	}
}
