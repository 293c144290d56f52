package peers

// Planted faults: each checker of the correctness run is shown failing on
// a fault planted in a real run's records, in the same run, so that a
// clean verdict means something.

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/bouncer-dlm/bouncer/linearizability"
	"github.com/bouncer-dlm/bouncer/spec"
)

// PlantedCheck is one checker run on a record with a planted fault.
type PlantedCheck struct {
	Checker, Plant, Source string
	Caught                 bool
	Detail                 string
}

// Plant takes the first Bouncer run with a client pause (else the first
// Bouncer run) and plants, in copies of its records, one fault per checker.
func Plant(cfg CorrectnessConfig, rows []CheckRow) ([]PlantedCheck, error) {
	var src *CheckRow
	for i := range rows {
		if rows[i].System == "bouncer" && (src == nil || rows[i].Fault == "pause-client" && src.Fault != "pause-client") {
			src = &rows[i]
		}
	}
	if src == nil {
		return nil, nil
	}
	name := fmt.Sprintf("%s %s seed %d", src.System, src.Fault, src.Seed)
	var out []PlantedCheck

	h, ok := PlantDoubleGrant(src.History)
	pc := PlantedCheck{Checker: "linearizability (as bouncer check)", Source: name,
		Plant: "a later grant of a resource moved to just after an earlier grant, before its release: a node that granted twice"}
	if ok {
		path := filepath.Join(src.Dir, "planted-history.jsonl")
		if err := writeHistoryFile(path, h); err != nil {
			return nil, err
		}
		lin, line, err := checkHistory(cfg.Bouncer, path, cfg.CheckTimeout)
		if err != nil {
			return nil, err
		}
		pc.Caught, pc.Detail = lin == "illegal", line
	} else {
		pc.Detail = "no two grants of one resource to plant on"
	}
	out = append(out, pc)

	bs := append([]Belief(nil), src.Beliefs...)
	for i := range bs {
		bs[i].End = max(bs[i].End, bs[i].Release) // a client that ignores its lease
	}
	v := Judge(bs, src.Log, resourcesOf(src.Beliefs), 0, int64(cfg.Duration))
	out = append(out, PlantedCheck{Checker: "client-view mutual exclusion", Source: name,
		Plant:  "beliefs that last until the release call, ignoring the client's count of the lease",
		Caught: len(v.Overlaps) > 0, Detail: fmt.Sprintf("%d overlaps, %v in all", len(v.Overlaps), v.OverlapTime)})

	unfenced := NewFencedStore(time.Time{}) // its own log is not used
	var log []StoreWrite
	for _, w := range src.Log {
		w.Accepted = unfenced.Write(w.Client, w.Resource, 0, w.Grant)
		log = append(log, w)
	}
	v = Judge(src.Beliefs, log, resourcesOf(src.Beliefs), 0, int64(cfg.Duration))
	out = append(out, PlantedCheck{Checker: "stale writes at the store", Source: name,
		Plant:  "the same writes replayed without tokens (an unfenced store)",
		Caught: v.StaleAccepted > 0, Detail: fmt.Sprintf("%d stale writes taken", v.StaleAccepted)})

	bs = append([]Belief(nil), src.Beliefs...)
	for i := range bs {
		if bs[i].Checked != 0 {
			bs[i].Held = false // the service forgot a grant it acknowledged
			break
		}
	}
	v = Judge(bs, src.Log, resourcesOf(src.Beliefs), 0, int64(cfg.Duration))
	out = append(out, PlantedCheck{Checker: "lost acknowledged grants", Source: name,
		Plant:  "the first hold read in time answered as no longer held (a service that forgot a grant it acknowledged)",
		Caught: v.Lost > 0, Detail: fmt.Sprintf("%d lost of %d holds read", v.Lost, v.Checks)})

	// Tokens that go back: every grant after the run's middle gets a
	// token below the first grant's, as from a counter that restarted.
	mid := int64(cfg.Duration) / 2
	reset := NewFencedStore(time.Time{})
	log = nil
	for _, w := range src.Log {
		if w.Grant > mid {
			w.Token = 1
		}
		w.Accepted = reset.Write(w.Client, w.Resource, w.Token, w.Grant)
		log = append(log, w)
	}
	v = Judge(src.Beliefs, log, resourcesOf(src.Beliefs), 0, int64(cfg.Duration))
	out = append(out, PlantedCheck{Checker: "writes of the newest grant refused", Source: name,
		Plant:  "the tokens of the grants after the run's middle set to 1 (a token counter that restarted)",
		Caught: v.NewestRefused > 0, Detail: fmt.Sprintf("%d writes of the newest grant refused", v.NewestRefused)})

	log = append([]StoreWrite(nil), src.Log...)
	for i := range log {
		log[i].Accepted = true // a fence that lets everything through
	}
	v = Judge(src.Beliefs, log, resourcesOf(src.Beliefs), 0, int64(cfg.Duration))
	out = append(out, PlantedCheck{Checker: "token order at the store", Source: name,
		Plant:  "every refused write marked taken (a broken fence)",
		Caught: v.OutOfOrder > 0, Detail: fmt.Sprintf("%d writes taken out of token order", v.OutOfOrder)})
	return out, nil
}

func resourcesOf(bs []Belief) []string {
	var rs []string
	for _, b := range bs {
		if !contains(rs, b.Resource) {
			rs = append(rs, b.Resource)
		}
	}
	return rs
}

// PlantDoubleGrant copies h and moves the grant that followed the first
// release of some resource to just after the grant before it, while that
// one was still held: what a node that granted twice would show.
func PlantDoubleGrant(h []linearizability.Entry) ([]linearizability.Entry, bool) {
	out := append([]linearizability.Entry(nil), h...)
	granted := func(e *linearizability.Entry) bool {
		return e.Input.Op == spec.OpAcquire && e.Known && e.Output.Code == spec.OK
	}
	for i := range out {
		a := &out[i]
		if !granted(a) {
			continue
		}
		rel := -1
		for j := range out {
			r := &out[j]
			if r.Input.Op == spec.OpRelease && r.Known && r.Output.Code == spec.OK && r.Input.Session == a.Input.Session &&
				r.Input.Resource == a.Input.Resource && r.Call > a.Return {
				if rel < 0 || r.Call < out[rel].Call {
					rel = j
				}
			}
		}
		if rel < 0 || out[rel].Call <= a.Return+2 {
			continue
		}
		next := -1
		for j := range out {
			b := &out[j]
			if granted(b) && b.Input.Resource == a.Input.Resource && b.Input.Session != a.Input.Session &&
				b.Call > out[rel].Return && (next < 0 || b.Return < out[next].Return) {
				next = j
			}
		}
		if next < 0 {
			continue
		}
		b := &out[next]
		b.Call, b.Return, b.Queued = a.Return+1, a.Return+2, false
		return out, true
	}
	return nil, false
}
