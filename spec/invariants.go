package spec

import (
	"bytes"
	"fmt"
	"slices"
)

// CheckInvariants checks every property that must hold of a lock service's
// state between steps. The model, the engine (under the invariants build
// tag), the tests and the simulator all call it on the canonical State, so
// one statement of the invariants serves them all.
func CheckInvariants(st *State, lim *Limits) error {
	if err := checkSessions(st, lim); err != nil {
		return err
	}
	pending := map[sessionRequest]bool{}   // the queued requests
	locks := make([]int, len(st.Sessions)) // by the session's index in st.Sessions
	for i := range st.Resources {
		r := &st.Resources[i]
		if i > 0 && st.Resources[i-1].Name >= r.Name {
			return fmt.Errorf("resources not sorted or duplicated at %q", r.Name)
		}
		if err := checkResource(st, lim, r, pending, locks); err != nil {
			return fmt.Errorf("resource %q: %w", r.Name, err)
		}
	}
	if len(st.Resources) > lim.ResourcesMax {
		return fmt.Errorf("%d resources exceed ResourcesMax %d", len(st.Resources), lim.ResourcesMax)
	}
	for i, s := range st.Sessions {
		if locks[i] > lim.LocksPerSessionMax {
			return fmt.Errorf("session %s: %d locks exceed LocksPerSessionMax", ShortID(s.ID), locks[i])
		}
		for _, r := range s.Replies {
			if queued := pending[sessionRequest{s.ID, r.Request}]; r.Result.Pending != queued {
				return fmt.Errorf("session %s: reply %d pending=%v but queued=%v",
					ShortID(s.ID), r.Request, r.Result.Pending, queued)
			}
		}
	}
	if c := FindCycle(WaitsFor(st)); c != nil {
		return fmt.Errorf("wait-for graph has a cycle: %v", shortIDs(c))
	}
	if stuck := stuck(st, true); len(stuck) > 0 {
		return fmt.Errorf("deadlock: the request of %s on %q can never be granted (%d stuck)",
			ShortID(stuck[0].Session), stuck[0].Resource, len(stuck))
	}
	return nil
}

// sessionRequest names a request of a session.
type sessionRequest struct {
	session SessionID
	request RequestID
}

// liveSession returns the index in st.Sessions of the live session id, or
// -1: a binary search, once checkSessions has found the sessions sorted.
func liveSession(st *State, id SessionID) int {
	if i, ok := slices.BinarySearchFunc(st.Sessions, id, func(s SessionState, id SessionID) int { return compareIDs(s.ID, id) }); ok {
		return i
	}
	return -1
}

func checkSessions(st *State, lim *Limits) error {
	if len(st.Sessions) > lim.SessionsMax {
		return fmt.Errorf("%d sessions exceed SessionsMax %d", len(st.Sessions), lim.SessionsMax)
	}
	for i := range st.Sessions {
		s := &st.Sessions[i]
		if i > 0 && bytes.Compare(st.Sessions[i-1].ID[:], s.ID[:]) >= 0 {
			return fmt.Errorf("sessions not sorted or duplicated at %s", ShortID(s.ID))
		}
		if s.Deadline <= st.Now {
			return fmt.Errorf("session %s is live past its deadline %v (now %v)", ShortID(s.ID), s.Deadline, st.Now)
		}
		if s.TTL < lim.TTLMin || s.TTL > lim.TTLMax {
			return fmt.Errorf("session %s: ttl %v outside limits", ShortID(s.ID), s.TTL)
		}
		if len(s.Replies) > lim.RepliesPerSessionMax {
			return fmt.Errorf("session %s: %d replies exceed RepliesPerSessionMax", ShortID(s.ID), len(s.Replies))
		}
		for j, r := range s.Replies {
			if j > 0 && s.Replies[j-1].Request >= r.Request {
				return fmt.Errorf("session %s: replies not sorted", ShortID(s.ID))
			}
		}
	}
	if len(st.Tombstones) > lim.TombstonesMax {
		return fmt.Errorf("%d tombstones exceed TombstonesMax", len(st.Tombstones))
	}
	dead := make(map[SessionID]bool, len(st.Tombstones))
	for _, t := range st.Tombstones {
		if liveSession(st, t.Session) >= 0 || dead[t.Session] {
			return fmt.Errorf("tombstone %s names a live or twice-ended session", ShortID(t.Session))
		}
		dead[t.Session] = true
	}
	return nil
}

func checkResource(st *State, lim *Limits, r *ResourceState, pending map[sessionRequest]bool, locks []int) error {
	delayed := r.DelayUntil > st.Now
	if len(r.Granted) == 0 && len(r.Waiting) == 0 && !delayed {
		return fmt.Errorf("kept though unused")
	}
	if err := checkSemaphore(r); err != nil {
		return err
	}
	if len(r.Name) == 0 || len(r.Name) > lim.NameBytesMax || len(r.Value) > lim.ValueBytesMax {
		return fmt.Errorf("name or value out of bounds")
	}
	if len(r.Converting)+len(r.Waiting) > lim.WaitersPerResourceMax {
		return fmt.Errorf("%d queued exceed WaitersPerResourceMax", len(r.Converting)+len(r.Waiting))
	}
	holders := make(map[SessionID]*LockState, len(r.Granted)+len(r.Waiting))
	queued := func(l *LockState) error {
		if l.Request == 0 || l.Deadline <= st.Now || l.QueuedAt > st.Now {
			return fmt.Errorf("%s: queued request %d queued at %v with deadline %v (now %v)",
				ShortID(l.Session), l.Request, l.QueuedAt, l.Deadline, st.Now)
		}
		pending[sessionRequest{l.Session, l.Request}] = true
		return nil
	}
	seen := func(l *LockState) error {
		i := liveSession(st, l.Session)
		if i < 0 {
			return fmt.Errorf("lock of %s, which is not a live session", ShortID(l.Session))
		}
		if l.Label != st.Sessions[i].Label {
			return fmt.Errorf("lock of %s labelled %q, its session %q", ShortID(l.Session), l.Label, st.Sessions[i].Label)
		}
		locks[i]++
		if holders[l.Session] != nil {
			return fmt.Errorf("%s has two locks", ShortID(l.Session))
		}
		holders[l.Session] = l
		return nil
	}
	for i := range r.Granted {
		h := &r.Granted[i]
		if err := seen(h); err != nil {
			return err
		}
		shared := slices.ContainsFunc(r.Granted[:i], func(o LockState) bool { return o.Token == h.Token })
		if h.GrantedAt > st.Now {
			return fmt.Errorf("%s: granted at %v, after now %v", ShortID(h.Session), h.GrantedAt, st.Now)
		}
		if h.Token == 0 || h.Token > st.TokenMax || shared {
			return fmt.Errorf("%s: token %d is zero, above token-max %d or shared", ShortID(h.Session), h.Token, st.TokenMax)
		}
		if int(h.Notified) >= ModeCount || h.Notified < -1 {
			return fmt.Errorf("%s: notified %d is not a mode", ShortID(h.Session), h.Notified)
		}
		for _, o := range r.Granted[:i] {
			if !Compatible(o.Mode, h.Mode) {
				return fmt.Errorf("granted modes conflict: %s %v and %s %v", ShortID(o.Session), o.Mode, ShortID(h.Session), h.Mode)
			}
		}
	}
	converting := make(map[SessionID]bool, len(r.Converting))
	for _, id := range r.Converting {
		h := holders[id]
		if h == nil || converting[id] || h.Request == 0 || Weaker(h.Want, h.Mode) {
			return fmt.Errorf("conversion queue names %s, which has no queued up-conversion", ShortID(id))
		}
		if err := queued(h); err != nil {
			return err
		}
		converting[id] = true
	}
	for _, h := range r.Granted {
		if !converting[h.Session] && (h.Request != 0 || h.Want != h.Mode || h.QueuedAt != 0) {
			return fmt.Errorf("%s: queued conversion missing from the conversion queue", ShortID(h.Session))
		}
	}
	for i := range r.Waiting {
		w := &r.Waiting[i]
		if err := seen(w); err != nil {
			return err
		}
		if w.Token != 0 || w.Want != w.Mode || w.GrantedAt != 0 {
			return fmt.Errorf("waiting %s has a token, a grant instant or a conversion", ShortID(w.Session))
		}
		if err := queued(w); err != nil {
			return err
		}
	}
	return checkSettled(r, delayed)
}

// checkSemaphore: a lock resource's locks have no permits; a semaphore's
// are PR locks of 1 to limit permits, never converting, and the permits
// granted never exceed the limit.
func checkSemaphore(r *ResourceState) error {
	if r.Limit > PermitsMax {
		return fmt.Errorf("semaphore limit %d exceeds PermitsMax", r.Limit)
	}
	var held uint64
	for _, queue := range [][]LockState{r.Granted, r.Waiting} {
		for _, l := range queue {
			if r.Limit == 0 && l.Permits != 0 {
				return fmt.Errorf("%s has %d permits of a lock resource", ShortID(l.Session), l.Permits)
			}
			if r.Limit != 0 && (l.Permits == 0 || l.Permits > r.Limit || l.Mode != PR || l.Want != PR) {
				return fmt.Errorf("%s: %d permits in %v->%v of a semaphore of %d", ShortID(l.Session), l.Permits, l.Mode, l.Want, r.Limit)
			}
		}
	}
	for _, h := range r.Granted {
		held += uint64(h.Permits)
	}
	if r.Limit != 0 && held > uint64(r.Limit) {
		return fmt.Errorf("semaphore over its limit: %d of %d permits granted", held, r.Limit)
	}
	return nil
}

// checkSettled: after a step nothing that the rules would grant is left
// queued, and every holder blocking a queued request of another session
// has been told about the highest such mode.
func checkSettled(r *ResourceState, delayed bool) error {
	compatibleExcept := func(mode Mode, self SessionID) bool {
		for _, h := range r.Granted {
			if h.Session != self && !Compatible(h.Mode, mode) {
				return false
			}
		}
		return true
	}
	if r.Limit != 0 && !delayed && len(r.Waiting) > 0 {
		held := uint64(r.Waiting[0].Permits)
		for _, h := range r.Granted {
			held += uint64(h.Permits)
		}
		if held <= uint64(r.Limit) {
			return fmt.Errorf("head of the wait queue %s fits in the semaphore but is queued", ShortID(r.Waiting[0].Session))
		}
		return nil
	}
	if !delayed {
		if len(r.Converting) > 0 {
			id := r.Converting[0]
			if h := lockIn(r.Granted, id); h != nil && compatibleExcept(h.Want, id) {
				return fmt.Errorf("conversion of %s to %v heads its queue, is grantable, but queued", ShortID(id), h.Want)
			}
		}
		if len(r.Converting) == 0 && len(r.Waiting) > 0 && compatibleExcept(r.Waiting[0].Mode, SessionID{}) {
			return fmt.Errorf("head of the wait queue %s is grantable but queued", ShortID(r.Waiting[0].Session))
		}
	}
	for _, h := range r.Granted {
		for _, queue := range [][]LockState{r.Granted, r.Waiting} {
			for _, p := range queue {
				if p.Session != h.Session && p.Request != 0 && !Compatible(h.Mode, p.Want) && int8(p.Want) > h.Notified {
					return fmt.Errorf("%s blocks %s wanting %v but was not told", ShortID(h.Session), ShortID(p.Session), p.Want)
				}
			}
		}
	}
	return nil
}

// CheckTransition checks what must hold between consecutive states: tokens
// only grow, every new token exceeds every earlier one, and a lock that goes
// up (or sideways) in mode gets a new token; a queue keeps its order, and no
// lock is newly granted while a conversion queued before it, or a request
// queued ahead of it, stays queued (conversions first, then strict FIFO).
func CheckTransition(before, after *State) error {
	if after.TokenMax < before.TokenMax {
		return fmt.Errorf("token-max went down from %d to %d", before.TokenMax, after.TokenMax)
	}
	prior := make(map[string]*ResourceState, len(before.Resources))
	for i := range before.Resources {
		prior[before.Resources[i].Name] = &before.Resources[i]
	}
	for i := range after.Resources {
		r := &after.Resources[i]
		var old map[SessionID]LockState
		if p := prior[r.Name]; p != nil {
			old = make(map[SessionID]LockState, len(p.Granted))
			for _, l := range p.Granted {
				old[l.Session] = l
			}
			if err := checkFIFO(p, r); err != nil {
				return fmt.Errorf("resource %q: %w", r.Name, err)
			}
		}
		for _, l := range r.Granted {
			o, held := old[l.Session]
			if (!held || o.Token != l.Token) && l.Token <= before.TokenMax {
				return fmt.Errorf("resource %q: new token %d for %s is not above the earlier maximum %d",
					r.Name, l.Token, ShortID(l.Session), before.TokenMax)
			}
			if (!held || o.Token != l.Token) && (l.GrantedAt < before.Now || l.GrantedAt > after.Now) {
				return fmt.Errorf("resource %q: %s got token %d between %v and %v but its grant instant says %v",
					r.Name, ShortID(l.Session), l.Token, before.Now, after.Now, l.GrantedAt)
			}
			if held && !Weaker(l.Mode, o.Mode) && o.Token == l.Token {
				return fmt.Errorf("resource %q: %s converted up from %v to %v but kept token %d",
					r.Name, ShortID(l.Session), o.Mode, l.Mode, l.Token)
			}
		}
	}
	return nil
}

func checkFIFO(before, after *ResourceState) error {
	stillWaiting := make(map[SessionID]RequestID, len(after.Waiting))
	for _, w := range after.Waiting {
		stillWaiting[w.Session] = w.Request
	}
	wasHeld := make(map[SessionID]bool, len(before.Granted))
	for _, l := range before.Granted {
		wasHeld[l.Session] = true
	}
	// A conversion that was queued before and still is, with the same request.
	var convWaits SessionID
	for _, id := range before.Converting {
		if b, a := lockIn(before.Granted, id), lockIn(after.Granted, id); a != nil &&
			slices.Contains(after.Converting, id) && a.Request == b.Request {
			convWaits = id
			break
		}
	}
	// Queued conversions are served in order: none is granted while one
	// queued ahead of it still waits with the same request.
	for i, id := range before.Converting {
		b, a := lockIn(before.Granted, id), lockIn(after.Granted, id)
		if a == nil || slices.Contains(after.Converting, id) || a.Mode != b.Want || a.Token == b.Token {
			continue // not granted its conversion in this step
		}
		for _, ahead := range before.Converting[:i] {
			if bh, ah := lockIn(before.Granted, ahead), lockIn(after.Granted, ahead); ah != nil &&
				slices.Contains(after.Converting, ahead) && ah.Request == bh.Request {
				return fmt.Errorf("the conversion of %s overtook the conversion of %s, queued ahead of it",
					ShortID(id), ShortID(ahead))
			}
		}
	}
	// ahead[s] is set when a request queued before s's (or before any new
	// request, for sessions not in the wait queue) still waits.
	blocked, ahead := false, make(map[SessionID]bool, len(before.Waiting))
	for _, w := range before.Waiting {
		ahead[w.Session] = blocked
		if req, ok := stillWaiting[w.Session]; ok && req == w.Request {
			blocked = true
		}
	}
	for _, l := range after.Granted {
		if wasHeld[l.Session] {
			continue
		}
		if !convWaits.IsZero() {
			return fmt.Errorf("%s was granted while the conversion of %s, queued before, still waits",
				ShortID(l.Session), ShortID(convWaits))
		}
		waited, inQueue := ahead[l.Session]
		if inQueue && waited || !inQueue && blocked {
			return fmt.Errorf("%s was granted while a request queued ahead of it still waits", ShortID(l.Session))
		}
	}
	// The survivors keep their relative order.
	idx := make(map[SessionID]int, len(after.Waiting))
	for i, w := range after.Waiting {
		idx[w.Session] = i
	}
	last := -1
	for _, w := range before.Waiting {
		if i, ok := idx[w.Session]; ok && after.Waiting[i].Request == w.Request {
			if i < last {
				return fmt.Errorf("wait queue order changed at %s", ShortID(w.Session))
			}
			last = i
		}
	}
	return nil
}

func lockIn(ls []LockState, id SessionID) *LockState {
	for i := range ls {
		if ls[i].Session == id {
			return &ls[i]
		}
	}
	return nil
}

func shortIDs(ids []SessionID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = ShortID(id)
	}
	return out
}
