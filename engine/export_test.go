package engine

// WithEarlyReplies makes a loop answer each turn as soon as it is stepped,
// before its fsync: the mistake TestLoopCrashKeepsAcknowledged must catch.
func WithEarlyReplies(o LoopOptions) LoopOptions {
	o.earlyReplies = true
	return o
}
