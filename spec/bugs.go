package spec

// Planted bugs prove that the checks can fail. A checker that has never been
// seen to fail proves nothing: so the exhaustive checker's own tests (in
// package spec, the only code that can set Model.bugs) plant each of these
// semantic bugs in the model, one at a time, and require a counterexample.
// The TLA+ model in tla/ plants the same bugs through its Bug constant.
//
// Every model outside those tests has bugs == 0, and each hook in model.go
// is a single flag test next to the rule it breaks, so the cost is one
// predictable branch and the rule stays readable.
type bugs uint16

const (
	// bugNewIgnoreConversions: new requests are granted (at once, or from the
	// wait queue) while up-conversions still wait: the conversion queue is no
	// longer served first. Breaks QueueDiscipline.
	bugNewIgnoreConversions bugs = 1 << iota
	// bugOvertake: a new request compatible with the granted modes is granted
	// at once even when others wait ahead of it (no strict FIFO). Breaks
	// QueueDiscipline.
	bugOvertake
	// bugExpiryKeepsValue: the expiry of a PW or EX holder leaves the value
	// block marked valid, though the holder's writes may never have reached
	// it. Breaks ValueValidity.
	bugExpiryKeepsValue
	// bugUpConvertKeepsToken: an up-conversion granted in place keeps its old
	// fencing token. Breaks TokensIncrease.
	bugUpConvertKeepsToken
	// bugConvertIgnoresHolders: an up-conversion is granted in place (with a
	// new token) without checking the other holders' modes. Breaks
	// CompatibleGrants.
	bugConvertIgnoresHolders
	// bugNoDeadlockCheck: a new request queues without the wait-for cycle
	// check. Breaks the acyclic wait-for graph (a deadlock goes unrefused).
	bugNoDeadlockCheck
	// bugTokenMaxFromLocks: recovery rebuilds the token counter from the
	// tokens of the locks still held, forgetting tokens returned for locks
	// since released. Breaks TokensIncrease across crashes.
	bugTokenMaxFromLocks
	// bugExpiryKeepsWaiters: an expired session's queued new requests stay in
	// the wait queue, where they block everyone behind them, and may even be
	// granted to the dead session. Breaks "every lock belongs to a live
	// session" here, and EventuallyServed (liveness) in the TLA+ model.
	bugExpiryKeepsWaiters

	// bugDeadlockAheadEdges: the wait-for graph of before: a new request
	// waits for every request queued ahead of it, compatible or not, and
	// for every conversion; a conversion only for the holders it conflicts
	// with. Compatible waiters then seem to wait for each other, and a
	// request that would be granted with them is refused as a deadlock.
	// Caught by the deadlock oracle (stuck.go), which does not use the graph.
	bugDeadlockAheadEdges
	// bugConversionOvertakes: settle grants the first grantable queued
	// conversion instead of only the head, so conversions overtake one
	// another. Breaks QueueDiscipline.
	bugConversionOvertakes
	// bugFailoverNoGrace: a failover moves the clock but leaves every
	// session's deadline as it was, so a lease the old leader promised may
	// run out on the new one while its client still believes in it. Caught
	// by the checker's failover check (explore.go).
	bugFailoverNoGrace
	// bugSemaphoreOverLimit: a semaphore's request fits when its permits
	// fit in the limit plus one, so one permit too many may be granted.
	// Breaks the semaphore's limit (checkSemaphore).
	bugSemaphoreOverLimit

	bugsEnd // one past the last bug
)

var bugNames = map[bugs]string{
	bugNewIgnoreConversions:  "NewIgnoreConversions",
	bugOvertake:              "Overtake",
	bugExpiryKeepsValue:      "ExpiryKeepsValue",
	bugUpConvertKeepsToken:   "UpConvertKeepsToken",
	bugConvertIgnoresHolders: "ConvertIgnoresHolders",
	bugNoDeadlockCheck:       "NoDeadlockCheck",
	bugTokenMaxFromLocks:     "TokenMaxFromLocks",
	bugExpiryKeepsWaiters:    "ExpiryKeepsWaiters",
	bugDeadlockAheadEdges:    "DeadlockAheadEdges",
	bugConversionOvertakes:   "ConversionOvertakes",
	bugFailoverNoGrace:       "FailoverNoGrace",
	bugSemaphoreOverLimit:    "SemaphoreOverLimit",
}

func (b bugs) has(bug bugs) bool { return b&bug != 0 }

func (b bugs) String() string {
	if name, ok := bugNames[b]; ok {
		return name
	}
	return "bugs(mixed)"
}

// highestHeldToken is what bugTokenMaxFromLocks rebuilds the counter from.
func (m *Model) highestHeldToken() Token {
	var t Token
	for _, r := range m.resources {
		// map order: a maximum does not depend on it.
		for _, l := range r.granted {
			t = max(t, l.token)
		}
	}
	return t
}
