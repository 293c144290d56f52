package peers

// The correctness run's plot: what the clients believed and what the
// store took, on a timeline, for one faulty run of each system; and the
// violations of every run, summed over the seeds, by fault and system.
// The table says how many; the timeline shows why (a paused client's late
// write after a later holder's, taken or refused).

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WriteKind is what became of one write at the fenced store.
type WriteKind int

const (
	// WriteTaken: the store took it, in grant order.
	WriteTaken WriteKind = iota
	// WriteRefused: the fence refused it (its token was lower than one
	// taken before).
	WriteRefused
	// WriteStaleTaken: the store took it although a write of a later grant
	// of the resource had been taken before: the resource is corrupted.
	WriteStaleTaken
)

func (k WriteKind) String() string {
	switch k {
	case WriteTaken:
		return "taken"
	case WriteRefused:
		return "refused"
	case WriteStaleTaken:
		return "stale taken"
	}
	return "WriteKind(" + strconv.Itoa(int(k)) + ")"
}

// StaleWrites tells, for each write of a store's log (in the order the
// store applied it), whether it is stale: its grant is older than the grant
// of a write the store took before on its resource. Only taken writes move
// that mark: a refused write changed nothing at the store. This is Judge's
// rule, in one place, for the plot and the verdict alike.
func StaleWrites(log []StoreWrite) []bool {
	stale := make([]bool, len(log))
	grant := map[string]int64{}
	for i, w := range log {
		stale[i] = w.Grant < grant[w.Resource]
		if w.Accepted {
			grant[w.Resource] = max(grant[w.Resource], w.Grant)
		}
	}
	return stale
}

// ClassifyWrites is what became of each write of a store's log: taken in
// order, refused by the fence, or stale and taken (see StaleWrites).
func ClassifyWrites(log []StoreWrite) []WriteKind {
	stale := StaleWrites(log)
	kinds := make([]WriteKind, len(log))
	for i, w := range log {
		switch {
		case !w.Accepted:
			kinds[i] = WriteRefused
		case stale[i]:
			kinds[i] = WriteStaleTaken
		default:
			kinds[i] = WriteTaken
		}
	}
	return kinds
}

// The plot's sizes (at 96 dots per inch: about 1340 pixels wide) and
// colours: red only for violations.
const (
	cpDPI        = 96
	cpWidth      = 14 * vg.Inch
	cpLegendW    = 3 * vg.Inch
	cpHeaderH    = 0.4 * vg.Inch
	cpLaneH      = 0.3 * vg.Inch
	cpPanelExtra = 0.8 * vg.Inch // a timeline panel's title and axis
	cpSummaryH   = 3 * vg.Inch
	cpMaxLanes   = 40 // lanes drawn per timeline panel, at most
)

var (
	cpHold     = color.NRGBA{R: 70, G: 110, B: 170, A: 255}
	cpLate     = color.NRGBA{R: 70, G: 110, B: 170, A: 150}
	cpFault    = color.NRGBA{R: 255, G: 190, B: 60, A: 90}
	cpOverlap  = color.NRGBA{R: 220, G: 30, B: 30, A: 110}
	cpRed      = color.NRGBA{R: 214, G: 39, B: 40, A: 255}
	cpWrite    = color.NRGBA{R: 40, G: 40, B: 40, A: 255}
	cpRefused  = color.NRGBA{R: 0, G: 0, B: 0, A: 255}
	cpSeparate = color.NRGBA{R: 120, G: 120, B: 120, A: 255}
)

// cpMetric is one bar of the summary: a count per run of a system under a
// fault, summed over the seeds.
type cpMetric struct {
	name  string
	color color.Color
	count func(r *CheckRow) int
}

var cpMetrics = []cpMetric{
	{"stale writes taken", cpRed, func(r *CheckRow) int { return r.StaleAccepted }},
	{"client-view overlaps", color.NRGBA{R: 255, G: 127, B: 14, A: 255}, func(r *CheckRow) int { return len(r.Overlaps) }},
	{"runs not linearizable", color.NRGBA{R: 148, G: 103, B: 189, A: 255}, func(r *CheckRow) int {
		if r.Linearizable != "" && r.Linearizable != "ok" { // "": not checked
			return 1
		}
		return 0
	}},
	{"lost acknowledged grants", color.NRGBA{R: 140, G: 86, B: 75, A: 255}, func(r *CheckRow) int { return r.Lost }},
	{"runs whose tokens went back", color.NRGBA{R: 127, G: 127, B: 127, A: 255}, func(r *CheckRow) int {
		if r.NewestRefused > 0 {
			return 1
		}
		return 0
	}},
	{"writes refused by the fence (no violation)", color.NRGBA{R: 44, G: 160, B: 44, A: 255}, func(r *CheckRow) int { return r.StaleRefused }},
}

// WriteCorrectnessPlot draws, as one PNG at path: for one faulty run of
// each system (pause-client, else the first fault other than none, with
// the lowest seed) a timeline of the clients' holds, the fault and the
// store's writes; and per fault, per system, the violations summed over
// the seeds, with the writes the fence refused beside them. It writes
// nothing, and says so, if no run of systems under faults recorded a
// belief or a write.
func WriteCorrectnessPlot(path string, rows []CheckRow, systems, faults []string) (bool, error) {
	fault, seed, ok := timelineRun(rows, systems, faults)
	if !ok {
		return false, nil
	}
	var timelines []*plot.Plot
	lanes := lanesOf(rows, systems, fault, seed)
	xmax := timelineEnd(rows, systems, fault, seed)
	for _, sys := range systems {
		r := findRow(rows, sys, fault, seed)
		if r == nil {
			continue
		}
		p, err := timelinePanel(r, lanes, xmax)
		if err != nil {
			return false, err
		}
		timelines = append(timelines, p)
	}
	var summaries []*plot.Plot
	ran := systemsRun(rows, systems, faults) // a system never run is no group of zeros
	ymax := summaryMax(rows, ran, faults)
	cols := summaryCols(faultsRun(rows, ran, faults))
	for _, f := range faults {
		if p, err := summaryPanel(rows, ran, f, ymax, cols); err != nil {
			return false, err
		} else if p != nil {
			summaries = append(summaries, p)
		}
	}
	srows := (len(summaries) + cols - 1) / cols
	panelH := cpPanelExtra + vg.Length(len(lanes))*cpLaneH
	timelineH := vg.Length(len(timelines)) * panelH
	h := cpHeaderH + timelineH + cpHeaderH + vg.Length(srows)*cpSummaryH
	img := vgimg.NewWith(vgimg.UseWH(cpWidth, h), vgimg.UseDPI(cpDPI))
	dc := draw.New(img)
	dc.Canvas.SetColor(color.White)
	dc.Canvas.Fill(dc.Rectangle.Path())

	plotW := cpWidth - cpLegendW
	top := h
	heading(dc, top, fmt.Sprintf("One run of each system under %s (seed %d): who believed it held which lock, and what the store took", fault, seed))
	top -= cpHeaderH
	area := region(dc, 0, plotW, top-timelineH, top)
	tiles := draw.Tiles{Rows: len(timelines), Cols: 1, PadY: vg.Millimeter * 3, PadLeft: vg.Millimeter * 2,
		PadRight: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2}
	tl := make([][]*plot.Plot, len(timelines))
	for i, p := range timelines {
		tl[i] = []*plot.Plot{p}
	}
	for i, cs := range plot.Align(tl, tiles, area) {
		timelines[i].Draw(cs[0])
	}
	legend(region(dc, plotW, cpWidth, top-timelineH, top), timelineLegend(fault))
	top -= timelineH

	heading(dc, top, fmt.Sprintf("Every run, summed over the seeds (%s): violations, and the writes fencing refused", seedList(rows, systems, faults)))
	top -= cpHeaderH
	area = region(dc, 0, plotW, 0, top)
	tiles = draw.Tiles{Rows: srows, Cols: cols, PadX: vg.Millimeter * 6, PadY: vg.Millimeter * 4,
		PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2}
	grid := make([][]*plot.Plot, srows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
		for j := range grid[i] {
			if k := i*cols + j; k < len(summaries) {
				grid[i][j] = summaries[k]
			}
		}
	}
	for i, cs := range plot.Align(grid, tiles, area) {
		for j := range cs {
			if grid[i][j] != nil {
				grid[i][j].Draw(cs[j])
			}
		}
	}
	legend(region(dc, plotW, cpWidth, 0, top), summaryLegend())

	return true, writePNG(path, img)
}

// timelineRun picks the run the timelines show: pause-client, else the
// first fault after none, else none; the lowest seed with records.
func timelineRun(rows []CheckRow, systems, faults []string) (string, uint64, bool) {
	order := []string{}
	if slices.Contains(faults, "pause-client") {
		order = append(order, "pause-client")
	}
	for _, f := range faults {
		if f != "none" && f != "pause-client" {
			order = append(order, f)
		}
	}
	if slices.Contains(faults, "none") {
		order = append(order, "none")
	}
	for _, f := range order {
		var seeds []uint64
		for i := range rows {
			r := &rows[i]
			if r.Fault == f && slices.Contains(systems, r.System) && (len(r.Beliefs) > 0 || len(r.Log) > 0) {
				seeds = append(seeds, r.Seed)
			}
		}
		if len(seeds) > 0 {
			return f, slices.Min(seeds), true
		}
	}
	return "", 0, false
}

func findRow(rows []CheckRow, sys, fault string, seed uint64) *CheckRow {
	for i := range rows {
		if rows[i].System == sys && rows[i].Fault == fault && rows[i].Seed == seed {
			return &rows[i]
		}
	}
	return nil
}

// lane is one line of a timeline: one client's holds of one resource.
type lane struct {
	resource string
	client   int
}

// lanesOf is every (resource, client) the shown runs recorded, the same
// for every panel so that they read alike, sorted.
func lanesOf(rows []CheckRow, systems []string, fault string, seed uint64) []lane {
	seen := map[lane]bool{}
	for _, sys := range systems {
		r := findRow(rows, sys, fault, seed)
		if r == nil {
			continue
		}
		for _, b := range r.Beliefs {
			seen[lane{b.Resource, b.Client}] = true
		}
		for _, w := range r.Log {
			seen[lane{w.Resource, w.Client}] = true
		}
	}
	var ls []lane
	for l := range seen {
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool {
		if ls[i].resource != ls[j].resource {
			return ls[i].resource < ls[j].resource
		}
		return ls[i].client < ls[j].client
	})
	if len(ls) > cpMaxLanes {
		ls = ls[:cpMaxLanes]
	}
	return ls
}

// timelineEnd is the last moment any shown run recorded, in seconds.
func timelineEnd(rows []CheckRow, systems []string, fault string, seed uint64) float64 {
	var end int64
	for _, sys := range systems {
		r := findRow(rows, sys, fault, seed)
		if r == nil {
			continue
		}
		for _, b := range r.Beliefs {
			end = max(end, b.End, b.Release)
		}
		for _, w := range r.Log {
			end = max(end, w.At)
		}
		end = max(end, r.FaultTo)
	}
	return math.Max(1, math.Ceil(secs(end)+0.25)) // room for a last marker
}

func secs(ns int64) float64 { return float64(ns) / 1e9 }

// timelinePanel draws one run: a lane per (resource, client), top down.
func timelinePanel(r *CheckRow, lanes []lane, xmax float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = timelineTitle(r)
	p.Title.TextStyle.Font.Size = vg.Points(12)
	p.X.Label.Text = "seconds since the run's start"
	p.X.Tick.Marker = secondTicks{}
	y := map[lane]float64{}
	var ticks []plot.Tick
	for i, l := range lanes {
		y[l] = float64(len(lanes) - 1 - i)
		ticks = append(ticks, plot.Tick{Value: y[l], Label: fmt.Sprintf("%s  client %d", l.resource, l.client)})
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	g := plotter.NewGrid()
	g.Horizontal.Color = nil
	p.Add(g)

	if r.FaultTo > r.FaultFrom {
		p.Add(&spans{fill: cpFault, rects: []span{{secs(r.FaultFrom), secs(r.FaultTo), -0.5, float64(len(lanes)) - 0.5}}})
	}
	for i := 1; i < len(lanes); i++ { // a line between resources
		if lanes[i].resource != lanes[i-1].resource {
			yy := y[lanes[i]] + 0.5
			p.Add(&spans{line: draw.LineStyle{Color: cpSeparate, Width: vg.Points(1)}, rects: []span{{0, xmax, yy, yy}}})
		}
	}
	holds, late := &spans{fill: cpHold}, &spans{fill: cpLate}
	for _, b := range r.Beliefs {
		yy, ok := y[lane{b.Resource, b.Client}]
		if !ok {
			continue
		}
		if b.End > b.Start {
			holds.rects = append(holds.rects, span{secs(b.Start), secs(b.End), yy - 0.3, yy + 0.3})
		}
		if b.Release > b.End {
			late.rects = append(late.rects, span{secs(max(b.End, b.Start)), secs(b.Release), yy - 0.1, yy + 0.1})
		}
	}
	overlaps := &spans{fill: cpOverlap, line: draw.LineStyle{Color: cpRed, Width: vg.Points(1)}}
	for _, o := range r.Overlaps {
		for _, b := range []Belief{o.A, o.B} {
			if yy, ok := y[lane{b.Resource, b.Client}]; ok {
				overlaps.rects = append(overlaps.rects, span{secs(o.From), secs(o.To), yy - 0.45, yy + 0.45})
			}
		}
	}
	p.Add(holds, late, overlaps)
	var taken, refused, stale plotter.XYs
	for i, k := range ClassifyWrites(r.Log) {
		w := r.Log[i]
		yy, ok := y[lane{w.Resource, w.Client}]
		if !ok {
			continue
		}
		xy := plotter.XY{X: secs(w.At), Y: yy}
		switch k {
		case WriteRefused:
			refused = append(refused, xy)
		case WriteStaleTaken:
			stale = append(stale, xy)
		default:
			taken = append(taken, xy)
		}
	}
	for _, m := range []struct {
		xys   plotter.XYs
		glyph draw.GlyphStyle
	}{
		{taken, writeGlyph(WriteTaken)},
		{refused, writeGlyph(WriteRefused)},
		{stale, writeGlyph(WriteStaleTaken)},
	} {
		if len(m.xys) == 0 {
			continue
		}
		s, err := plotter.NewScatter(m.xys)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle = m.glyph
		p.Add(s)
	}
	p.X.Min, p.X.Max = 0, xmax
	p.Y.Min, p.Y.Max = -0.6, float64(len(lanes))-0.4
	return p, nil
}

func timelineTitle(r *CheckRow) string {
	t := fmt.Sprintf("%s: %d writes, %d stale taken, %d refused by the fence, %d client-view overlaps",
		r.System, len(r.Log), r.StaleAccepted, r.StaleRefused, len(r.Overlaps))
	if r.Linearizable != "" {
		t += ", linearizable: " + r.Linearizable
	}
	if r.FaultTo > r.FaultFrom {
		t += fmt.Sprintf("; %s %.2f-%.2f s", r.Fault, secs(r.FaultFrom), secs(r.FaultTo))
	}
	return t
}

func writeGlyph(k WriteKind) draw.GlyphStyle {
	switch k {
	case WriteRefused:
		return draw.GlyphStyle{Color: cpRefused, Radius: vg.Points(6), Shape: thickCross{}}
	case WriteStaleTaken:
		return draw.GlyphStyle{Color: cpRed, Radius: vg.Points(6), Shape: draw.CircleGlyph{}}
	}
	return draw.GlyphStyle{Color: cpWrite, Radius: vg.Points(1.2), Shape: draw.CircleGlyph{}}
}

// thickCross is a cross that shows on a hold bar.
type thickCross struct{}

func (thickCross) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	ls := draw.LineStyle{Color: sty.Color, Width: vg.Points(2.5)}
	r := sty.Radius
	c.StrokeLine2(ls, pt.X-r, pt.Y-r, pt.X+r, pt.Y+r)
	c.StrokeLine2(ls, pt.X-r, pt.Y+r, pt.X+r, pt.Y-r)
}

// summaryPanel is one fault: per system a group of bars, one per metric,
// summed over the seeds; nil if no system ran under the fault.
func summaryPanel(rows []CheckRow, systems []string, fault string, ymax float64, cols int) (*plot.Plot, error) {
	counts, perSystem := summaryCounts(rows, systems, fault)
	runs := 0
	for _, n := range perSystem {
		runs += n
	}
	if runs == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s (%d runs)", fault, runs)
	if allZero(counts) {
		p.Title.Text += ": no violation, no refusal"
	}
	p.Title.TextStyle.Font.Size = vg.Points(12)
	p.Y.Label.Text = "count, summed over the seeds"
	p.Y.Tick.Marker = countTicks{}
	g := plotter.NewGrid()
	g.Vertical.Color = nil
	p.Add(g)
	w := barWidth(len(systems), cols)
	n := len(cpMetrics)
	for k, m := range cpMetrics {
		vals := make(plotter.Values, len(systems))
		labels := make([]string, len(systems))
		xys := make(plotter.XYs, len(systems))
		for i := range systems {
			vals[i] = float64(counts[i][k])
			xys[i] = plotter.XY{X: float64(i), Y: vals[i]}
			if counts[i][k] > 0 {
				labels[i] = strconv.Itoa(counts[i][k])
			}
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		b.Color = m.color
		b.LineStyle.Width = 0
		b.Offset = (vg.Length(k) - vg.Length(n-1)/2) * w
		l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
		if err != nil {
			return nil, err
		}
		for i := range l.TextStyle {
			l.TextStyle[i].XAlign = text.XCenter
			l.TextStyle[i].Font.Size = vg.Points(10)
		}
		l.Offset = vg.Point{X: b.Offset, Y: vg.Points(2)}
		p.Add(b, l)
	}
	var notRun plotter.XYLabels
	for i, n := range perSystem {
		if n == 0 {
			notRun.XYs = append(notRun.XYs, plotter.XY{X: float64(i), Y: 0})
			notRun.Labels = append(notRun.Labels, "not run")
		}
	}
	if len(notRun.XYs) > 0 {
		l, err := plotter.NewLabels(notRun)
		if err != nil {
			return nil, err
		}
		for i := range l.TextStyle {
			l.TextStyle[i].XAlign = text.XCenter
			l.TextStyle[i].Color = cpSeparate
		}
		l.Offset.Y = vg.Points(4)
		p.Add(l)
	}
	p.NominalX(systems...)
	p.X.Tick.Label.Rotation = math.Pi / 7 // long names side by side
	p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = text.XRight, text.YTop
	p.X.Min, p.X.Max = -0.6, float64(len(systems))-0.4
	p.Y.Min, p.Y.Max = 0, ymax
	return p, nil
}

// barWidth fits a system's bars in 70% of its share of a panel, one of
// cols across the plot.
func barWidth(systems, cols int) vg.Length {
	panel := (cpWidth - cpLegendW) / vg.Length(max(cols, 1))
	w := (panel - vg.Inch) / vg.Length(max(systems, 1)) * 0.7 / vg.Length(len(cpMetrics))
	return min(w, vg.Points(16))
}

// summaryCounts is, per system (in order), per metric, the sum over the
// runs of the system under fault; and how many runs of each there were.
func summaryCounts(rows []CheckRow, systems []string, fault string) ([][]int, []int) {
	counts := make([][]int, len(systems))
	runs := make([]int, len(systems))
	for i, sys := range systems {
		counts[i] = make([]int, len(cpMetrics))
		for j := range rows {
			r := &rows[j]
			if r.System != sys || r.Fault != fault {
				continue
			}
			runs[i]++
			for k, m := range cpMetrics {
				counts[i][k] += m.count(r)
			}
		}
	}
	return counts, runs
}

// most is the largest of xs, 0 if none.
func most(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func allZero(counts [][]int) bool {
	for _, cs := range counts {
		for _, c := range cs {
			if c != 0 {
				return false
			}
		}
	}
	return true
}

// systemsRun is those of systems that ran under some of faults.
func systemsRun(rows []CheckRow, systems, faults []string) []string {
	var ran []string
	for _, sys := range systems {
		if slices.ContainsFunc(rows, func(r CheckRow) bool { return r.System == sys && slices.Contains(faults, r.Fault) }) {
			ran = append(ran, sys)
		}
	}
	return ran
}

// faultsRun is how many of faults some system ran under.
func faultsRun(rows []CheckRow, systems, faults []string) int {
	n := 0
	for _, f := range faults {
		if _, runs := summaryCounts(rows, systems, f); most(runs) > 0 {
			n++
		}
	}
	return n
}

// summaryMax is the summary panels' shared Y range, with room for the
// bars' labels.
func summaryMax(rows []CheckRow, systems, faults []string) float64 {
	top := 0
	for _, f := range faults {
		counts, _ := summaryCounts(rows, systems, f)
		for _, cs := range counts {
			top = max(top, most(cs))
		}
	}
	return math.Max(1, math.Ceil(float64(top)*1.15+0.3))
}

// summaryCols lays n summary panels out in rows of at most three.
func summaryCols(n int) int {
	switch {
	case n <= 3:
		return max(n, 1)
	case n == 4:
		return 2
	}
	return 3
}

func seedList(rows []CheckRow, systems, faults []string) string {
	seen := map[uint64]bool{}
	for _, r := range rows {
		if slices.Contains(systems, r.System) && slices.Contains(faults, r.Fault) {
			seen[r.Seed] = true
		}
	}
	var seeds []uint64
	for s := range seen {
		seeds = append(seeds, s)
	}
	slices.Sort(seeds)
	s := "seeds"
	if len(seeds) == 1 {
		s = "seed"
	}
	for i, v := range seeds {
		if i > 0 {
			s += ","
		}
		s += " " + strconv.FormatUint(v, 10)
	}
	return s
}

func timelineLegend(fault string) *plot.Legend {
	l := newCPLegend()
	l.Add("hold: the client believes it holds", &spans{fill: cpHold})
	l.Add("past its own lease count, to release", &spans{fill: cpLate, thin: true})
	l.Add("fault: "+fault, &spans{fill: cpFault})
	l.Add("two clients hold it at once", &spans{fill: cpOverlap, line: draw.LineStyle{Color: cpRed, Width: vg.Points(1)}})
	for _, k := range []WriteKind{WriteTaken, WriteRefused, WriteStaleTaken} {
		l.Add("write "+map[WriteKind]string{WriteTaken: "taken", WriteRefused: "refused by the fence",
			WriteStaleTaken: "taken, stale (a violation)"}[k], glyphThumb(writeGlyph(k)))
	}
	return l
}

func summaryLegend() *plot.Legend {
	l := newCPLegend()
	for _, m := range cpMetrics {
		l.Add(m.name, &spans{fill: m.color})
	}
	return l
}

func newCPLegend() *plot.Legend {
	l := plot.NewLegend()
	l.Top, l.Left = true, true
	l.TextStyle.Font.Size = vg.Points(11)
	l.Padding = vg.Points(4)
	return &l
}

// legend draws l at the top left of c, below a small margin.
func legend(c draw.Canvas, l *plot.Legend) {
	l.Draw(draw.Crop(c, vg.Millimeter*2, 0, 0, -vg.Millimeter*8))
}

// heading writes a line of text across the top of the band below top.
func heading(c draw.Canvas, top vg.Length, s string) {
	sty := text.Style{Font: font.From(plot.DefaultFont, vg.Points(13)), Handler: plot.DefaultTextHandler,
		Color: color.Black, XAlign: text.XLeft, YAlign: text.YCenter}
	c.FillText(sty, vg.Point{X: vg.Millimeter * 3, Y: top - cpHeaderH/2}, s)
}

// region is the part of c between x0 and x1, y0 and y1 (from c's origin).
func region(c draw.Canvas, x0, x1, y0, y1 vg.Length) draw.Canvas {
	return draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{Min: vg.Point{X: x0, Y: y0}, Max: vg.Point{X: x1, Y: y1}}}
}

// span is a rectangle in data coordinates.
type span struct{ x0, x1, y0, y1 float64 }

// spans draws rectangles (filled, outlined, or a line if flat): holds,
// the fault, overlaps.
type spans struct {
	rects []span
	fill  color.Color
	line  draw.LineStyle
	thin  bool // its legend thumbnail is a thin bar
}

func (s *spans) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, r := range s.rects {
		pts := []vg.Point{{X: trX(r.x0), Y: trY(r.y0)}, {X: trX(r.x1), Y: trY(r.y0)},
			{X: trX(r.x1), Y: trY(r.y1)}, {X: trX(r.x0), Y: trY(r.y1)}}
		if s.fill != nil && r.y1 > r.y0 {
			c.FillPolygon(s.fill, c.ClipPolygonXY(pts))
		}
		if s.line.Color != nil && s.line.Width > 0 {
			c.StrokeLines(s.line, c.ClipLinesXY(append(pts, pts[0]))...)
		}
	}
}

func (s *spans) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, ymin = math.Inf(1), math.Inf(1)
	xmax, ymax = math.Inf(-1), math.Inf(-1)
	for _, r := range s.rects {
		xmin, xmax = math.Min(xmin, r.x0), math.Max(xmax, r.x1)
		ymin, ymax = math.Min(ymin, r.y0), math.Max(ymax, r.y1)
	}
	return xmin, xmax, ymin, ymax
}

func (s *spans) Thumbnail(c *draw.Canvas) {
	r := c.Rectangle
	if s.thin {
		mid, h := (r.Min.Y+r.Max.Y)/2, (r.Max.Y-r.Min.Y)/6
		r.Min.Y, r.Max.Y = mid-h, mid+h
	}
	pts := []vg.Point{r.Min, {X: r.Max.X, Y: r.Min.Y}, r.Max, {X: r.Min.X, Y: r.Max.Y}}
	if s.fill != nil {
		c.FillPolygon(s.fill, pts)
	}
	if s.line.Color != nil && s.line.Width > 0 {
		c.StrokeLines(s.line, append(pts, pts[0]))
	}
}

// glyphThumb is a legend thumbnail of one glyph.
type glyphThumb draw.GlyphStyle

func (g glyphThumb) Thumbnail(c *draw.Canvas) {
	c.DrawGlyph(draw.GlyphStyle(g), c.Center())
}

// secondTicks marks every second, or every 2, 5, 10... on a long run.
type secondTicks struct{}

func (secondTicks) Ticks(lo, hi float64) []plot.Tick {
	step := 1.0
	for _, s := range []float64{2, 5, 10, 30, 60, 120, 300, 600} {
		if (hi-lo)/step <= 30 {
			break
		}
		step = s
	}
	var ts []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	return ts
}

// countTicks marks whole numbers, at most about eight of them.
type countTicks struct{}

func (countTicks) Ticks(lo, hi float64) []plot.Tick {
	step := math.Max(1, math.Ceil((hi-lo)/8))
	var ts []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	return ts
}
