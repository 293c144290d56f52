package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// The node's soft memory limit (--memory-limit). Go's collector by default
// lets the heap grow to twice the live heap before it collects (GOGC=100);
// a lock service's live heap is mostly its long-lived lock table, so half
// of what the node holds would be garbage waiting. A soft limit makes the
// collector work harder instead once the process's Go memory nears it.
//
// A fixed limit alone would make a node whose live heap outgrows it collect
// without end (up to half the CPU, Go's cap). So the node never holds the
// limit below its live heap plus half again (plus the runtime's own memory,
// stacks and metadata): past the floor it collects as under GOGC=50, at
// most twice as often as Go's default, never in a loop.

// defaultMemoryLimit is the limit when neither --memory-limit nor
// GOMEMLIMIT names one: the node's own needs and some 100,000 held locks;
// a larger table raises it (see above).
const defaultMemoryLimit = "64MiB"

// memoryHeadroom: the limit is never below live heap × (1 + 1/memoryHeadroom).
const memoryHeadroom = 2

// memoryLimitEvery is how often the node looks at its live heap.
const memoryLimitEvery = time.Second

// parseBytes reads a size: a number of bytes, or one with a suffix KiB,
// MiB, GiB (or KB, MB, GB: the same powers of two, as GOMEMLIMIT takes
// them), or "off" (no limit, 0).
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "off") {
		return 0, nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q: want bytes, e.g. 64MiB, 1GiB, or off", s)
	}
	return n * mult, nil
}

// memoryLimit returns the limit to hold: the flag's if given, else
// GOMEMLIMIT's (which the runtime parsed already), else the flag's
// default. 0: none.
func memoryLimit(flag string, given bool) (int64, error) {
	if !given && os.Getenv("GOMEMLIMIT") != "" {
		if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
			return l, nil
		}
		return 0, nil
	}
	return parseBytes(flag)
}

// holdMemoryLimit sets the soft memory limit to limit (0: none) and, until
// ctx ends, raises it while the live heap needs more (see above).
func holdMemoryLimit(ctx context.Context, limit int64, log *slog.Logger) {
	if limit <= 0 {
		debug.SetMemoryLimit(math.MaxInt64)
		return
	}
	debug.SetMemoryLimit(limit)
	log.Info("memory limit", "bytes", limit)
	go func() {
		samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/total:bytes"},
			{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"},
			{Name: "/memory/classes/heap/free:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
		current := limit
		t := time.NewTicker(memoryLimitEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			metrics.Read(samples)
			v := func(i int) int64 { return int64(samples[i].Value.Uint64()) }
			live, runtime := v(0), v(1)-v(2)-v(3)-v(4)-v(5)
			want := max(limit, live+live/memoryHeadroom+runtime)
			// Lower it only by more than an eighth, so that it does not
			// move with every collection.
			if want > current || want < current-current/8 || (want == limit && current != limit) {
				debug.SetMemoryLimit(want)
				if want > limit || current > limit {
					log.Debug("memory limit follows the live heap", "bytes", want, "live_heap", live)
				}
				current = want
			}
		}
	}()
}
