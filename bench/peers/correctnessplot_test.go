package peers

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

const msNS = int64(1e6)

// plotRow is one synthetic run of a system under a fault: three clients on
// r0 and r1. Under pause-client, client 0's lease count runs out while it
// is paused (0.5 s to 3 s); client 1 takes r0 and writes; client 0 wakes and
// sends the write it had prepared: refused if fenced (tokens), taken and
// stale if not (token 0). overlap adds two clients that both believe they
// hold r1 for 200 ms.
func plotRow(sys, fault string, seed uint64, fenced, overlap bool) CheckRow {
	tok := func(t uint64) uint64 {
		if fenced {
			return t
		}
		return 0
	}
	r := CheckRow{System: sys, Fault: fault, Seed: seed, Linearizable: "ok"}
	r.Beliefs = []Belief{
		{Client: 2, Resource: "r1", Token: tok(1), Start: 50 * msNS, End: 900 * msNS, Release: 900 * msNS},
		{Client: 0, Resource: "r0", Token: tok(2), Start: 100 * msNS, End: 1000 * msNS, Release: 1000 * msNS},
		{Client: 1, Resource: "r0", Token: tok(3), Start: 1200 * msNS, End: 2200 * msNS, Release: 2200 * msNS},
	}
	r.Log = []StoreWrite{
		{At: 200 * msNS, Client: 0, Resource: "r0", Token: tok(2), Grant: 100 * msNS},
		{At: 300 * msNS, Client: 2, Resource: "r1", Token: tok(1), Grant: 50 * msNS},
		{At: 1300 * msNS, Client: 1, Resource: "r0", Token: tok(3), Grant: 1200 * msNS},
		{At: 1400 * msNS, Client: 1, Resource: "r0", Token: tok(3), Grant: 1200 * msNS},
	}
	if fault == "pause-client" {
		r.FaultFrom, r.FaultTo = 500*msNS, 3000*msNS
		r.Beliefs[1].Release = 3000 * msNS
		r.Log = append(r.Log, StoreWrite{At: 3000 * msNS, Client: 0, Resource: "r0", Token: tok(2), Grant: 100 * msNS})
	}
	if overlap {
		r.Beliefs = append(r.Beliefs, Belief{Client: 1, Resource: "r1", Token: tok(4), Start: 700 * msNS, End: 1100 * msNS, Release: 1100 * msNS})
		r.Linearizable = "illegal"
	}
	top := map[string]uint64{} // the fenced store's rule
	for i := range r.Log {
		w := &r.Log[i]
		w.Accepted = w.Token >= top[w.Resource]
		if w.Accepted {
			top[w.Resource] = w.Token
		}
	}
	r.Verdict = Judge(r.Beliefs, r.Log, []string{"r0", "r1"}, 0, 3500*msNS)
	return r
}

// plotRows is 2 systems x 2 faults x 2 seeds: "fenced" (tokens) and
// "unfenced" (none), the latter with an overlap in seed 2.
func plotRows() []CheckRow {
	var rows []CheckRow
	for _, seed := range []uint64{2, 1} { // out of order: the plot picks the lowest
		for _, fault := range []string{"none", "pause-client"} {
			rows = append(rows, plotRow("fenced", fault, seed, true, false))
			rows = append(rows, plotRow("unfenced", fault, seed, false, seed == 2))
		}
	}
	return rows
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s is no PNG: %v", path, err)
	}
	return img
}

// redPixels counts the pixels in the violations' red (stale writes taken,
// their bars, the overlaps' outline).
func redPixels(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 == uint32(cpRed.R) && g>>8 == uint32(cpRed.G) && bl>>8 == uint32(cpRed.B) {
				n++
			}
		}
	}
	return n
}

func TestCorrectnessPlotDraws(t *testing.T) {
	rows := plotRows()
	// The synthetic runs show what the plot is for.
	for _, r := range rows {
		if r.System == "unfenced" && r.Fault == "pause-client" && r.StaleAccepted != 1 {
			t.Fatalf("unfenced pause-client seed %d: %d stale writes taken, want 1", r.Seed, r.StaleAccepted)
		}
		if r.System == "fenced" && r.Fault == "pause-client" && (r.StaleRefused != 1 || r.StaleAccepted != 0) {
			t.Fatalf("fenced pause-client: %d refused, %d taken, want 1 and 0", r.StaleRefused, r.StaleAccepted)
		}
		if want := r.System == "unfenced" && r.Seed == 2; (len(r.Overlaps) > 0) != want {
			t.Fatalf("%s %s seed %d: %d overlaps", r.System, r.Fault, r.Seed, len(r.Overlaps))
		}
	}
	path := filepath.Join(t.TempDir(), "correctness.png")
	ok, err := WriteCorrectnessPlot(path, rows, []string{"fenced", "unfenced"}, []string{"none", "pause-client"})
	if err != nil || !ok {
		t.Fatalf("WriteCorrectnessPlot = %v, %v; want true", ok, err)
	}
	img := decodePNG(t, path)
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	if w < 1200 || w > 1600 || h < 600 || h > 2400 {
		t.Fatalf("image is %dx%d, want 1200-1600 wide and 600-2400 high", w, h)
	}

	// The fenced system alone took no stale write and had no overlap: only
	// the legend is red. With the unfenced one, its stale writes are drawn.
	clean := filepath.Join(t.TempDir(), "clean.png")
	if ok, err := WriteCorrectnessPlot(clean, rows, []string{"fenced"}, []string{"none", "pause-client"}); err != nil || !ok {
		t.Fatalf("WriteCorrectnessPlot(fenced) = %v, %v; want true", ok, err)
	}
	if n, legend := redPixels(img), redPixels(decodePNG(t, clean)); n < legend+200 {
		t.Fatalf("%d pixels in the violations' red, %d without a violation: want the stale writes and their bars drawn", n, legend)
	}
}

// TestCorrectnessPlotManySystems: six systems under four faults (two of
// them never run by one system) still make one image of a readable size.
func TestCorrectnessPlotManySystems(t *testing.T) {
	systems := []string{"bouncer", "etcd", "redis-default", "redis-always", "bouncer-3", "etcd-3"}
	faults := []string{"none", "pause-client", "kill-server", "pause-server"}
	var rows []CheckRow
	for i, sys := range systems {
		for _, f := range faults {
			if sys == "etcd-3" && f == "pause-server" {
				continue // not run: the panel says so
			}
			rows = append(rows, plotRow(sys, f, 1, i < 2 || i > 3, f == "kill-server" && i == 2))
		}
	}
	path := filepath.Join(t.TempDir(), "many.png")
	ok, err := WriteCorrectnessPlot(path, rows, systems, faults)
	if err != nil || !ok {
		t.Fatalf("WriteCorrectnessPlot = %v, %v; want true", ok, err)
	}
	b := decodePNG(t, path).Bounds()
	if b.Dx() < 1200 || b.Dx() > 1600 || b.Dy() > 3200 {
		t.Fatalf("image is %dx%d, want 1200-1600 wide, at most 3200 high", b.Dx(), b.Dy())
	}
	if out := os.Getenv("CORRECTNESS_PLOT_KEEP"); out != "" { // to look at it
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCorrectnessPlotNothingToDraw(t *testing.T) {
	empty := []CheckRow{
		{System: "fenced", Fault: "none", Seed: 1, Linearizable: "ok"},
		{System: "fenced", Fault: "pause-client", Seed: 1, Linearizable: "ok", FaultFrom: msNS, FaultTo: 2 * msNS},
	}
	for name, c := range map[string]struct {
		rows            []CheckRow
		systems, faults []string
	}{
		"no rows":            {nil, []string{"fenced"}, []string{"none"}},
		"no beliefs, writes": {empty, []string{"fenced"}, []string{"none", "pause-client"}},
		"other systems":      {plotRows(), []string{"etcd"}, []string{"none", "pause-client"}},
		"other faults":       {plotRows(), []string{"fenced"}, []string{"kill-server"}},
	} {
		path := filepath.Join(t.TempDir(), "none.png")
		ok, err := WriteCorrectnessPlot(path, c.rows, c.systems, c.faults)
		if err != nil || ok {
			t.Errorf("%s: WriteCorrectnessPlot = %v, %v; want false, nil", name, ok, err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s: wrote %s (%v)", name, path, err)
		}
	}
}

// TestCorrectnessPlotTimelineRun: the timelines show pause-client, else the
// first other fault, else none; with the lowest seed.
func TestCorrectnessPlotTimelineRun(t *testing.T) {
	rows := plotRows()
	for _, c := range []struct {
		faults []string
		fault  string
	}{
		{[]string{"none", "pause-client"}, "pause-client"},
		{[]string{"none", "kill-server", "pause-client"}, "pause-client"},
		{[]string{"none"}, "none"},
	} {
		f, seed, ok := timelineRun(rows, []string{"fenced", "unfenced"}, c.faults)
		if !ok || f != c.fault || seed != 1 {
			t.Errorf("timelineRun(%v) = %q, %d, %v; want %q, 1", c.faults, f, seed, ok, c.fault)
		}
	}
	rows = append(rows, plotRow("fenced", "kill-server", 7, true, false))
	if f, seed, ok := timelineRun(rows, []string{"fenced"}, []string{"none", "kill-server"}); !ok || f != "kill-server" || seed != 7 {
		t.Errorf("timelineRun(none, kill-server) = %q, %d, %v; want kill-server, 7", f, seed, ok)
	}
}

// TestCorrectnessPlotClassifyWrites: a write whose grant is older than that
// of a write taken before on its resource is stale; taken, it is a
// violation; refused, the fence at work. A refused write moves nothing.
func TestCorrectnessPlotClassifyWrites(t *testing.T) {
	log := []StoreWrite{
		{At: 1, Client: 0, Resource: "r0", Grant: 10, Accepted: true},  // taken
		{At: 2, Client: 1, Resource: "r1", Grant: 5, Accepted: true},   // taken: another resource
		{At: 3, Client: 1, Resource: "r0", Grant: 20, Accepted: true},  // taken: a later grant
		{At: 4, Client: 0, Resource: "r0", Grant: 10, Accepted: true},  // stale, taken
		{At: 5, Client: 0, Resource: "r0", Grant: 10, Accepted: false}, // stale, refused
		{At: 6, Client: 2, Resource: "r1", Grant: 30, Accepted: false}, // refused (a broken writer)
		{At: 7, Client: 1, Resource: "r1", Grant: 5, Accepted: true},   // in order: the refused write moved nothing
		{At: 8, Client: 1, Resource: "r0", Grant: 20, Accepted: true},  // in order: the same grant again
	}
	want := []WriteKind{WriteTaken, WriteTaken, WriteTaken, WriteStaleTaken, WriteRefused, WriteRefused, WriteTaken, WriteTaken}
	got := ClassifyWrites(log)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("write %d (%+v): %v, want %v", i, log[i], got[i], want[i])
		}
	}
	// The same rule as Judge's.
	counts := map[WriteKind]int{}
	stale := StaleWrites(log)
	staleRefused := 0
	for i, k := range got {
		counts[k]++
		if k == WriteRefused && stale[i] {
			staleRefused++
		}
	}
	v := Judge(nil, log, []string{"r0", "r1"}, 0, 10)
	if counts[WriteStaleTaken] != v.StaleAccepted || staleRefused != v.StaleRefused {
		t.Errorf("stale taken %d, stale refused %d; Judge says %d and %d", counts[WriteStaleTaken], staleRefused, v.StaleAccepted, v.StaleRefused)
	}
	if s := fmt.Sprint(WriteStaleTaken); s != "stale taken" {
		t.Errorf("WriteStaleTaken prints %q", s)
	}
}
