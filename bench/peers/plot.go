package peers

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WritePlot draws throughput and p99 acquire latency by client count, for
// the uncontended and the contended workloads, as a PNG at path. It writes
// nothing, and says so, if no run measured either.
func WritePlot(r *Results, path string) (bool, error) {
	var plots [][]*plot.Plot
	for _, w := range []Workload{Uncontended, Contended} {
		tp := newLogLog(fmt.Sprintf("%v: throughput", w), "clients", "lock+unlock cycles/s")
		lt := newLogLog(fmt.Sprintf("%v: p99 acquire latency", w), "clients", "ms")
		points := 0
		for j, sys := range r.Plan.Systems {
			var ops, p99 plotter.XYs
			for _, c := range r.Plan.AllCells() {
				if c.Workload != w {
					continue
				}
				if row, ok := r.Median(Key{w, c.Clients, sys.Name}); ok {
					ops = append(ops, plotter.XY{X: float64(c.Clients), Y: row.Rate})
					p99 = append(p99, plotter.XY{X: float64(c.Clients), Y: float64(row.P99) / float64(time.Millisecond)})
				}
			}
			points += len(ops)
			legend := len(plots) == 0 // one legend, in the first panel
			if err := addSeries(tp, sys.Name, j, ops, legend); err != nil {
				return false, err
			}
			if err := addSeries(lt, sys.Name, j, p99, false); err != nil {
				return false, err
			}
		}
		if points > 0 {
			headroom(tp, len(plots) == 0)
			headroom(lt, false)
			plots = append(plots, []*plot.Plot{tp, lt})
		}
	}
	if len(plots) == 0 {
		return false, nil
	}
	w, h := 11*vg.Inch, vg.Length(len(plots))*4*vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(plots), Cols: 2, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		for j := range plots[i] {
			plots[i][j].Draw(canvases[i][j])
		}
	}
	return true, writePNG(path, img)
}

func newLogLog(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = x, y
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker = clientTicks{}
	p.Y.Tick.Marker = logTicks{}
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.Padding = vg.Millimeter
	p.Add(plotter.NewGrid())
	return p
}

func addSeries(p *plot.Plot, name string, i int, xy plotter.XYs, legend bool) error {
	if len(xy) == 0 {
		return nil
	}
	l, s, err := plotter.NewLinePoints(xy)
	if err != nil {
		return err
	}
	l.Color, s.Color = plotutil.Color(i), plotutil.Color(i)
	l.Width = vg.Points(1.5)
	s.Shape = plotutil.Shape(i)
	p.Add(l, s)
	if legend {
		p.Legend.Add(name, l, s)
	}
	return nil
}

// clientTicks marks the powers of two in range, labelled by value.
type clientTicks struct{}

func (clientTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for v := 1.0; v <= hi*1.001; v *= 2 {
		if v >= lo*0.999 {
			ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
		}
	}
	return ts
}

// headroom widens the log Y range a little, and if the plot has the legend
// (top left) mostly upwards, so that the legend clears the lines.
func headroom(p *plot.Plot, legend bool) {
	if p.X.Min == p.X.Max { // one client count: a log scale needs a range
		p.X.Min, p.X.Max = p.X.Min/2, p.X.Max*2
	}
	if p.Y.Min == p.Y.Max {
		p.Y.Min, p.Y.Max = p.Y.Min/2, p.Y.Max*2
	}
	if p.Y.Min <= 0 {
		return // no data
	}
	span := math.Max(math.Log10(p.Y.Max/p.Y.Min), 1)
	up := 0.1
	if legend {
		up = 0.6
	}
	p.Y.Min /= math.Pow(10, 0.1*span)
	p.Y.Max *= math.Pow(10, up*span)
}

// logTicks marks 1, 2 and 5 times the powers of ten in range, labelling
// them all when the range is narrow and the powers of ten otherwise.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	wide := hi/lo > 1000
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if !wide || m == 1 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// writePNG writes img to path as a PNG.
func writePNG(path string, img *vgimg.Canvas) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
