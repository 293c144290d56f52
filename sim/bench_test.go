package sim

import (
	"fmt"
	"testing"
	"time"
)

// benchOptions: 16 clients on one node over 8 resources, a workload of
// lock users (think and hold up to a second, all six modes, conversions,
// writes to the fenced resources), TTL 4s; with faults, the swarm's faults
// at their usual rates.
func benchOptions(seed uint64, faults bool) Options {
	o := NewOptions(seed)
	o.Clients, o.Resources = 16, 8
	o.Safety, o.Calm = 30*time.Second, 3*time.Second
	o.Modes = [6]int{1, 2, 2, 2, 2, 2}
	o.ThinkMax, o.HoldMax = time.Second, time.Second
	o.WaitMin, o.WaitMax = 10*time.Millisecond, time.Second
	o.TryPercent, o.MultiPercent, o.ConvertPercent, o.WritePercent, o.ValuePercent = 20, 10, 20, 60, 50
	o.TTL = 4 * time.Second
	o.DelayMin, o.DelayMax, o.SlowPercent, o.SlowMax = 50*time.Microsecond, time.Millisecond, 1, 50*time.Millisecond
	o.CommitMin, o.CommitMax = 20*time.Microsecond, time.Millisecond
	o.DropPercent, o.DupPercent = 0, 0
	o.PartitionEvery, o.ResetEvery, o.PauseEvery, o.CrashEvery, o.DiskFaultEvery = 0, 0, 0, 0, 0
	if faults {
		o.DropPercent, o.DupPercent = 2, 2
		o.PartitionEvery, o.PartitionMax = 5*time.Second, 2*o.TTL
		o.ResetEvery = 5 * time.Second
		o.PauseEvery, o.PauseMax, o.PauseOnWritePercent = 5*time.Second, 2*o.TTL, 20
		o.CrashEvery, o.DownMax, o.MidCommitPercent = 5*time.Second, time.Second, 30
		o.DiskFaultEvery = 8 * time.Second
	}
	o.LivenessBound = o.livenessBound()
	return o
}

// BenchmarkSim reports simulated seconds per wall second (x-real-time) and
// simulator events per wall second, over seeds 1, 2, ...
//
//	go test ./sim -run - -bench Sim -benchtime 20x
func BenchmarkSim(b *testing.B) {
	for _, faults := range []bool{false, true} {
		b.Run(fmt.Sprintf("clients=16/faults=%v", faults), func(b *testing.B) {
			var simTime time.Duration
			events := 0
			seed := uint64(0)
			for b.Loop() {
				seed++
				rep := Run(benchOptions(seed, faults), Config{})
				if rep.Failed() {
					b.Fatalf("%s: %v", rep.Summary(), rep.FailedCheckers())
				}
				simTime += rep.Stats.SimTime
				events += rep.Stats.Events
			}
			wall := b.Elapsed().Seconds()
			b.ReportMetric(simTime.Seconds()/wall, "x-real-time")
			b.ReportMetric(float64(events)/wall, "events/s")
		})
	}
}
