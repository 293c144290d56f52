package sim

import (
	"fmt"
	"testing"
	"time"
)

// benchOptions: 16 clients on one node or a group of replicas, over 8 resources, a workload of
// lock users (think and hold up to a second, all six modes, conversions,
// writes to the fenced resources), TTL 4s; with faults, the swarm's faults
// at their usual rates.
func benchOptions(seed uint64, nodes int, faults bool) Options {
	o := NewOptions(seed)
	o.Nodes, o.SkewMax, o.RaftPartitionEvery = nodes, 0, 0
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
		o.SkewMax, o.RaftPartitionEvery = 50*time.Millisecond, 5*time.Second
	}
	o.LivenessBound = o.livenessBound()
	return o
}

// BenchmarkSim reports simulated seconds per wall second (x-real-time),
// per second of CPU used by the process, Pebble's goroutines included
// (x-real-time/cpu: what one core gives a campaign), and simulator events
// per wall second, over seeds 1, 2, ...: 16 clients, without and with
// faults, with every check (checks=all) or with the whole-state comparison
// and invariant walks off (checks=outputs: replies and events are still
// compared with the model at every turn).
//
//	GOGC=400 go test ./sim -run - -bench Sim -benchtime 20x
func BenchmarkSim(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		for _, faults := range []bool{false, true} {
			for _, checks := range []string{"all", "outputs"} {
				b.Run(fmt.Sprintf("nodes=%d/clients=16/faults=%v/checks=%s", nodes, faults, checks), func(b *testing.B) {
					var simTime time.Duration
					events := 0
					seed := uint64(0)
					cpu0 := cpuTime()
					for b.Loop() {
						seed++
						o := benchOptions(seed, nodes, faults)
						if checks == "outputs" {
							o.CheckEvery = 1 << 30
						}
						rep := Run(o, Config{})
						if rep.Failed() {
							b.Fatalf("%s: %v", rep.Summary(), rep.FailedCheckers())
						}
						simTime += rep.Stats.SimTime
						events += rep.Stats.Events
					}
					wall := b.Elapsed().Seconds()
					b.ReportMetric(simTime.Seconds()/wall, "x-real-time")
					if cpu := cpuTime() - cpu0; cpu > 0 {
						b.ReportMetric(simTime.Seconds()/cpu.Seconds(), "x-real-time/cpu")
					}
					b.ReportMetric(float64(events)/wall, "events/s")
				})
			}
		}
	}
}
