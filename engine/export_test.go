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

// ReplyChan is Replies on a channel, for tests; it must have room for every
// reply outstanding on it: Put panics on a full channel rather than block
// the loop.
type ReplyChan chan Reply

// Put sends r on the channel.
func (c ReplyChan) Put(r Reply) {
	select {
	case c <- r:
	default:
		panic("engine: an Enqueue reply channel is full: the loop would block on it")
	}
}
