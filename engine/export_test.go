package engine

// WithEarlyReplies makes a loop answer each turn as soon as it is stepped,
// before its fsync: the mistake TestLoopCrashKeepsAcknowledged must catch.
func WithEarlyReplies(o LoopOptions) LoopOptions {
	o.earlyReplies = true
	return o
}

// InvariantsOn says the core checks every invariant after every step
// (-tags invariants, -race): a test of 100,000 steps would take hours.
const InvariantsOn = invariantsOn
