package peers

import (
	"fmt"
	"strings"
	"time"

	"github.com/bouncer-dlm/bouncer/bench"
)

// FloorSample is what this machine gives at best, measured once per run in
// the load generator's process just before the systems take their turns:
// a raw length-prefixed TCP ping-pong and a gRPC bidirectional-stream
// ping-pong over FloorConns loopback connections (the CPU one round trip
// costs, both ends counted), the latency of one gRPC stream round trip on
// a single connection, and the median write+fdatasync of 4 KiB in the
// servers' work directory. A lock cycle is two round trips.
type FloorSample struct {
	TCP, GRPC bench.Floor
	OneRT     time.Duration // one gRPC stream round trip, one connection
	Fsync     time.Duration
}

// FloorConns is the connections of the floor's ping-pongs: the clients of
// the targets' cells, one connection each.
const FloorConns = targetClients

// floorTime is how long each ping-pong of the floor runs.
const floorTime = time.Second

// MeasureFloor measures the floor; dir is where the servers keep their data.
func MeasureFloor(dir string) (FloorSample, error) {
	var f FloorSample
	var err error
	if f.TCP, err = bench.TCPFloor(FloorConns, floorTime); err != nil {
		return f, fmt.Errorf("tcp floor: %w", err)
	}
	if f.GRPC, err = bench.GRPCStreamFloor(FloorConns, floorTime); err != nil {
		return f, fmt.Errorf("grpc floor: %w", err)
	}
	one, err := bench.GRPCStreamFloor(1, floorTime/2)
	if err != nil {
		return f, fmt.Errorf("grpc floor, one connection: %w", err)
	}
	if one.RoundTrips > 0 {
		f.OneRT = one.Elapsed / time.Duration(one.RoundTrips)
	}
	if f.Fsync, err = bench.FsyncLatency(dir, 200); err != nil {
		return f, fmt.Errorf("fsync: %w", err)
	}
	return f, nil
}

func (f FloorSample) String() string {
	return fmt.Sprintf("tcp %v/rt, grpc %v/rt (cpu, %d conns), grpc one conn %v/rt, fsync p50 %v",
		f.TCP.CPUPer(), f.GRPC.CPUPer(), FloorConns, f.OneRT, f.Fsync)
}

// Floor is the median of the runs' floors, field by field.
func (r *Results) Floor() (FloorSample, bool) {
	if len(r.Floors) == 0 {
		return FloorSample{}, false
	}
	med := func(f func(FloorSample) time.Duration) time.Duration {
		v := make([]time.Duration, len(r.Floors))
		for i, s := range r.Floors {
			v[i] = f(s)
		}
		return medianDuration(v)
	}
	floor := func(f func(FloorSample) bench.Floor) bench.Floor {
		// A Floor whose CPUPer and PerSecond are the medians.
		per := med(func(s FloorSample) time.Duration { return f(s).CPUPer() })
		rate := med(func(s FloorSample) time.Duration { return time.Duration(f(s).PerSecond()) })
		return bench.Floor{RoundTrips: int(rate), Elapsed: time.Second, CPU: per * time.Duration(rate)}
	}
	return FloorSample{
		TCP:   floor(func(s FloorSample) bench.Floor { return s.TCP }),
		GRPC:  floor(func(s FloorSample) bench.Floor { return s.GRPC }),
		OneRT: med(func(s FloorSample) time.Duration { return s.OneRT }),
		Fsync: med(func(s FloorSample) time.Duration { return s.Fsync }),
	}, true
}

// floorTable writes the floor and Bouncer's figures as ratios to it, with
// the targets stated against the floor.
func (rep Report) floorTable(b *strings.Builder) {
	f, ok := rep.Results.Floor()
	if !ok {
		return
	}
	fmt.Fprintf(b, "Measured in each run in the load generator's process, just before the systems' turns (medians over %d runs); a lock cycle is two round trips.\n\n",
		len(rep.Results.Floors))
	b.WriteString("| floor | round trips/s | CPU per round trip (both ends) | latency |\n|---|--:|--:|--:|\n")
	fmt.Fprintf(b, "| raw TCP ping-pong, length-prefixed, %d connections | %s | %s | |\n", FloorConns, commas(int64(f.TCP.PerSecond())), us(f.TCP.CPUPer()))
	fmt.Fprintf(b, "| gRPC bidirectional-stream ping-pong, %d connections | %s | %s | |\n", FloorConns, commas(int64(f.GRPC.PerSecond())), us(f.GRPC.CPUPer()))
	fmt.Fprintf(b, "| gRPC stream round trip, one connection | | | %s |\n", us(f.OneRT))
	fmt.Fprintf(b, "| write 4 KiB + fdatasync in the servers' work directory (p50) | | | %s |\n", us(f.Fsync))

	b.WriteString("\n| Bouncer against the floor | wanted | measured | |\n|---|--:|--:|---|\n")
	verdict := func(what, want string, got, limit float64, atMost bool, shown string) {
		switch {
		case atMost && got <= limit || !atMost && got >= limit:
			fmt.Fprintf(b, "| %s | %s | %s | met |\n", what, want, shown)
		case atMost:
			fmt.Fprintf(b, "| %s | %s | %s | **missed**: %.2fx over the target |\n", what, want, shown, got/limit)
		default:
			fmt.Fprintf(b, "| %s | %s | %s | **missed**: at %.0f%% of the target |\n", what, want, shown, 100*got/limit)
		}
	}
	twoGRPC := 2 * f.GRPC.CPUPer()
	for _, sys := range []string{"bouncer", fmt.Sprintf("bouncer-%d", GroupSize)} {
		row, ok := rep.Results.Median(Key{Uncontended, targetClients, sys})
		if !ok || twoGRPC == 0 {
			continue
		}
		cpu := row.ServerCPUPerOp + row.ClientCPUPerOp
		x := float64(cpu) / float64(twoGRPC)
		verdict(fmt.Sprintf("%s, uncontended, %d clients: CPU per cycle, server and clients (%s) ÷ two gRPC-stream round trips (%s)", sys, targetClients, us(cpu), us(twoGRPC)),
			"≤ 3x", x, 3, true, fmt.Sprintf("%.2fx (%.1fx two raw TCP round trips)", x, float64(cpu)/float64(2*f.TCP.CPUPer())))
	}
	if mine, ok := rep.Results.Median(Key{Uncontended, targetClients, "bouncer"}); ok {
		if redis, ok := rep.Results.Median(Key{Uncontended, targetClients, "redis-always"}); ok && redis.ServerCPUPerOp > 0 {
			x := float64(mine.ServerCPUPerOp) / float64(redis.ServerCPUPerOp)
			verdict(fmt.Sprintf("server CPU per cycle, uncontended, %d clients: bouncer (%s) ÷ redis-always (%s)", targetClients, us(mine.ServerCPUPerOp), us(redis.ServerCPUPerOp)),
				"≤ 2x", x, 2, true, fmt.Sprintf("%.2fx", x))
		}
	}
	if one, ok := rep.Results.Median(Key{Uncontended, 1, "bouncer"}); ok {
		limit := f.Fsync + 100*time.Microsecond
		verdict(fmt.Sprintf("one client: acquire p50 (%s) ÷ (fsync p50 + 100 µs = %s)", us(one.P50), us(limit)),
			"≤ 1x", float64(one.P50)/float64(limit), 1, true, fmt.Sprintf("%.2fx", float64(one.P50)/float64(limit)))
	}
	if c, ok := rep.Results.Median(Key{Contended, targetClients, "bouncer"}); ok && f.Fsync+f.OneRT > 0 {
		bound := float64(time.Second) / float64(f.Fsync+f.OneRT)
		x := c.Rate / bound
		verdict(fmt.Sprintf("contended, %d clients: cycles/s (%s) ÷ 1/(fsync p50 + one round trip) (%s/s)", targetClients, commas(int64(c.Rate)), commas(int64(bound))),
			"≥ 0.5x", x, 0.5, false, fmt.Sprintf("%.2fx", x))
	}
}

// us shows d in microseconds, or milliseconds from 10 ms.
func us(d time.Duration) string {
	if d >= 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}
