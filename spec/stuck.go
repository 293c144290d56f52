package spec

import (
	"fmt"
	"slices"
)

// The deadlock oracle: deadlock defined by its meaning, not by the
// wait-for graph. The graph (graph.go) is how the model, the engine and the
// TLA+ model decide to refuse a request; a mistake in it would be the same
// mistake in all three, so the checkers also judge every Deadlock refusal,
// and every state, by this definition, which shares no code with the graph.
//
// A session with nothing queued is free: it can release its locks. A
// session with a queued request is blocked: it waits. Let every free
// session release all its locks, grant whatever the DLM's rules then grant,
// let the sessions that this leaves with nothing queued release theirs,
// and so on until nothing changes. The queued requests left are stuck: no
// order in which free holders let go can ever grant them (letting go of
// more never blocks a grant). Lock-delays and wait timeouts are ignored:
// the first end by themselves, the second are what a deadlock would
// otherwise cost.
//
// A state is deadlocked when it has a stuck request. The checks are:
//   - no state ever is (CheckInvariants): a request that queued never ends
//     up stuck, where a semaphore's waiter counts as grantable once no
//     holder it conflicts with (graph.go) is left: the graph does not see
//     a waiter held up only by the sum of several holders (it waits for any
//     of them), so the invariant cannot promise more (wait timeouts end
//     such a deadlock);
//   - a Deadlock refusal is correct only if the state in which the request
//     had been queued (or granted in place) instead would be deadlocked
//     (CheckDeadlockRefusal).

// StuckRequest is a queued request that can never be granted.
type StuckRequest struct {
	Session  SessionID
	Resource string
}

type oracleLock struct {
	session SessionID
	mode    Mode
	permits uint32
}

type oracleResource struct {
	name       string
	limit      uint32 // a semaphore's; 0: a lock resource
	pairwise   bool   // a semaphore's waiter fits beside holders it does not conflict with
	holders    []oracleLock
	converting []oracleLock // the mode is the one wanted; the holder keeps its own until granted
	waiting    []oracleLock
}

// Stuck returns the stuck requests of st, by resource and queue order.
func Stuck(st *State) []StuckRequest { return stuck(st, false) }

// stuck is Stuck, with pairwise the weaker fit on semaphores that the
// invariant uses.
func stuck(st *State, pairwise bool) []StuckRequest {
	var rs []oracleResource
	for _, r := range st.Resources {
		if len(r.Converting) == 0 && len(r.Waiting) == 0 {
			// Nothing queued here: nothing to be stuck, and its holders
			// block nothing (a lock blocks only requests on its resource).
			continue
		}
		o := oracleResource{name: r.Name, limit: r.Limit, pairwise: pairwise, holders: make([]oracleLock, 0, len(r.Granted)+len(r.Waiting)),
			converting: make([]oracleLock, 0, len(r.Converting)), waiting: make([]oracleLock, 0, len(r.Waiting))}
		for _, l := range r.Granted {
			o.holders = append(o.holders, oracleLock{l.Session, l.Mode, l.Permits})
		}
		for _, id := range r.Converting {
			if l := lockIn(r.Granted, id); l != nil {
				o.converting = append(o.converting, oracleLock{id, l.Want, l.Permits})
			}
		}
		for _, l := range r.Waiting {
			o.waiting = append(o.waiting, oracleLock{l.Session, l.Mode, l.Permits})
		}
		rs = append(rs, o)
	}
	blocked := map[SessionID]bool{}
	for changed := true; changed; {
		changed = false
		clear(blocked)
		for _, r := range rs {
			for _, queue := range [][]oracleLock{r.converting, r.waiting} {
				for _, l := range queue {
					blocked[l.session] = true
				}
			}
		}
		for i := range rs {
			r := &rs[i]
			n := len(r.holders)
			r.holders = slices.DeleteFunc(r.holders, func(l oracleLock) bool { return !blocked[l.session] })
			changed = changed || len(r.holders) != n
			changed = r.grant() || changed
		}
	}
	var out []StuckRequest
	for _, r := range rs {
		for _, l := range append(r.converting, r.waiting...) {
			out = append(out, StuckRequest{l.session, r.name})
		}
	}
	return out
}

// grant applies the DLM's grant order once to r: the head of the conversion
// queue while it fits, then, with no conversion left, the head of the wait
// queue while it fits. It reports whether it granted anything.
func (r *oracleResource) grant() bool {
	fits := func(l oracleLock) bool {
		held := uint64(l.permits)
		for _, h := range r.holders {
			if h.session == l.session {
				continue
			}
			if r.limit == 0 && !Compatible(h.mode, l.mode) ||
				r.limit != 0 && r.pairwise && uint64(h.permits)+uint64(l.permits) > uint64(r.limit) {
				return false
			}
			held += uint64(h.permits)
		}
		return r.limit == 0 || r.pairwise || held <= uint64(r.limit)
	}
	granted := false
	for len(r.converting) > 0 && fits(r.converting[0]) {
		c := r.converting[0]
		for i := range r.holders {
			if r.holders[i].session == c.session {
				r.holders[i].mode = c.mode
			}
		}
		r.converting, granted = r.converting[1:], true
	}
	for len(r.converting) == 0 && len(r.waiting) > 0 && fits(r.waiting[0]) {
		r.holders = append(r.holders, r.waiting[0])
		r.waiting, granted = r.waiting[1:], true
	}
	return granted
}

// CheckDeadlockRefusal checks a Deadlock refusal of in, an Acquire or a
// Convert of a live session, given the state st just before it: the state
// in which it had been queued (or, for a conversion granted in place,
// granted) instead must be deadlocked. A queued sideways conversion
// (PR<->CW) may also be taken as cancelled: the wait-for graph counts the
// holder's granted mode against the requests queued behind it, since the
// conversion may time out or be cancelled (see graph.go), so a refusal is
// also correct if such a cancellation would leave a deadlock.
func CheckDeadlockRefusal(st *State, in Input, detail string) error {
	instead, err := deadlockAlternative(st, in, detail)
	if err != nil {
		return err
	}
	sideways := sidewaysConversions(&instead)
	for subset := 0; subset < 1<<len(sideways); subset++ {
		alt := cloneState(&instead)
		for i, sc := range sideways {
			if subset&(1<<i) != 0 {
				cancelConversion(&alt, sc)
			}
		}
		if len(Stuck(&alt)) > 0 {
			return nil
		}
	}
	return fmt.Errorf("%v %q %v of %s refused as Deadlock (%s), but had it been let through no request would be stuck",
		in.Op, in.Resource, in.Mode, ShortID(in.Session), detail)
}

// deadlockAlternative returns st with the refused request let through.
func deadlockAlternative(st *State, in Input, detail string) (State, error) {
	alt := cloneState(st)
	ri := slices.IndexFunc(alt.Resources, func(r ResourceState) bool { return r.Name == in.Resource })
	switch {
	case in.Op == OpAcquire && detail == DetailDeadlockQueue:
		if ri < 0 {
			return alt, fmt.Errorf("Deadlock refusal of an acquire on %q, a resource with nothing to wait for", in.Resource)
		}
		alt.Resources[ri].Waiting = append(alt.Resources[ri].Waiting,
			LockState{Session: in.Session, Mode: in.Mode, Want: in.Mode, Permits: in.Permits, Request: in.Request})
		return alt, nil
	case in.Op == OpConvert && ri >= 0:
		r := &alt.Resources[ri]
		l := lockIn(r.Granted, in.Session)
		if l == nil {
			break
		}
		if detail == DetailDeadlockQueue {
			l.Want, l.Request = in.Mode, in.Request
			r.Converting = append(r.Converting, in.Session)
		} else {
			l.Mode, l.Want = in.Mode, in.Mode
		}
		return alt, nil
	}
	return alt, fmt.Errorf("Deadlock refusal (%s) of %v %q by %s, which holds nothing there", detail, in.Op, in.Resource, ShortID(in.Session))
}

type sidewaysConversion struct {
	resource int
	session  SessionID
}

func sidewaysConversions(st *State) []sidewaysConversion {
	var out []sidewaysConversion
	for i, r := range st.Resources {
		for _, id := range r.Converting {
			if l := lockIn(r.Granted, id); l != nil && !Weaker(l.Mode, l.Want) && !Weaker(l.Want, l.Mode) {
				out = append(out, sidewaysConversion{i, id})
			}
		}
	}
	return out[:min(len(out), 8)] // a bound on the subsets tried
}

func cancelConversion(st *State, sc sidewaysConversion) {
	r := &st.Resources[sc.resource]
	r.Converting = slices.DeleteFunc(r.Converting, func(id SessionID) bool { return id == sc.session })
	if l := lockIn(r.Granted, sc.session); l != nil {
		l.Want, l.Request = l.Mode, 0
	}
}

// cloneState copies what Stuck and the refusal check read of st.
func cloneState(st *State) State {
	c := *st
	c.Resources = slices.Clone(st.Resources)
	for i := range c.Resources {
		r := &c.Resources[i]
		r.Granted, r.Converting, r.Waiting = slices.Clone(r.Granted), slices.Clone(r.Converting), slices.Clone(r.Waiting)
	}
	return c
}
