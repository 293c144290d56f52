package sim

import (
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
)

// PlainOptions are the options of seed with swarm testing off: one fixed
// configuration, the same for every seed, in which the seed decides only
// what happens (delays, losses, when each fault strikes, what clients do),
// never which faults are on. Every fault kind and every workload feature is
// on at a middle value of the range NewOptions draws from, so that a bug
// caught here needed no lucky mix, and one caught only by swarm seeds
// needed one. It is one node; a zoo bug of a group sets its own size.
func PlainOptions(seed uint64) Options {
	o := Options{Seed: seed, CheckEvery: 1}
	o.Clients, o.Resources = 6, 3
	o.Safety, o.Calm = 12*time.Second, 3*time.Second
	o.TTL = 2 * time.Second
	o.DriftPPM = 1000

	o.Modes = [spec.ModeCount]int{1, 2, 2, 2, 2, 2} // the full DLM set
	o.ThinkMax, o.HoldMax = 100*time.Millisecond, 200*time.Millisecond
	o.WaitMin, o.WaitMax = 10*time.Millisecond, time.Second
	o.TryPercent, o.MultiPercent, o.ConvertPercent = 20, 10, 20
	o.WritePercent, o.ValuePercent, o.LockDelayPercent = 60, 50, 10
	o.CancelPercent, o.ClosePercent, o.YieldPercent = 10, 3, 50
	o.Semaphores, o.SemaphoreLimit = 1, 3

	o.DelayMin, o.DelayMax = 100*time.Microsecond, 5*time.Millisecond
	o.SlowPercent, o.SlowMax = 2, 100*time.Millisecond
	o.DropPercent, o.DupPercent = 5, 1
	o.PartitionEvery, o.PartitionMax = 5*time.Second, o.TTL
	o.ResetEvery = 5 * time.Second
	o.PauseEvery, o.PauseMax, o.PauseOnWritePercent = 6*time.Second, o.TTL, 30

	o.CommitMin, o.CommitMax = 20*time.Microsecond, time.Millisecond
	o.CrashEvery, o.DownMax, o.MidCommitPercent = 3*time.Second, o.TTL/2, 30
	o.DiskFaultEvery = 5 * time.Second

	o.Nodes = 1
	o.SkewMax = 50 * time.Millisecond
	o.RaftPartitionEvery = 3 * time.Second
	o.TransferEvery, o.MemberEvery, o.ReadEvery = 5*time.Second, 4*time.Second, 100*time.Millisecond
	o.LivenessBound = o.livenessBound()
	return o
}
