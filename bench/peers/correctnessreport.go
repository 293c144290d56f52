package peers

// CORRECTNESS.md: the table of verdicts per system and fault, the
// excerpts that show each violation, and the planted faults.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/bouncer-dlm/bouncer/linearizability"
)

// ReportMeta is what the report says of how it was made.
type ReportMeta struct {
	Command, Commit string
	Started         time.Time
	Took            time.Duration
	Config          CorrectnessConfig
}

// cell sums one system's runs under one fault.
type cell struct {
	runs, lin, illegal, unknown   int
	overlaps                      int
	overlapTime, overlapMax       time.Duration
	staleTaken, staleRefused, ooo int
	avail                         float64
	writes                        int
	first                         *CheckRow // the first run with a violation
}

func (c *cell) add(r *CheckRow) {
	c.runs++
	switch r.Linearizable {
	case "ok":
		c.lin++
	case "illegal":
		c.illegal++
	default:
		c.unknown++
	}
	c.overlaps += len(r.Overlaps)
	c.overlapTime += r.OverlapTime
	for _, o := range r.Overlaps {
		c.overlapMax = max(c.overlapMax, time.Duration(o.To-o.From))
	}
	c.staleTaken += r.StaleAccepted
	c.staleRefused += r.StaleRefused
	c.ooo += r.OutOfOrder
	c.avail += r.Availability
	c.writes += r.Writes
	if c.first == nil && violated(r) {
		c.first = r
	}
}

func violated(r *CheckRow) bool {
	return r.Linearizable != "ok" || len(r.Overlaps) > 0 || r.StaleAccepted > 0 || r.OutOfOrder > 0
}

// WriteCorrectnessReport writes the report in markdown.
func WriteCorrectnessReport(w io.Writer, meta ReportMeta, rows []CheckRow, planted []PlantedCheck) error {
	var b bytes.Buffer
	cfg := meta.Config
	cells := map[[2]string]*cell{}
	for i := range rows {
		k := [2]string{rows[i].System, rows[i].Fault}
		if cells[k] == nil {
			cells[k] = &cell{}
		}
		cells[k].add(&rows[i])
	}
	b.WriteString(correctnessPreamble)
	fmt.Fprintf(&b, "## Results (%s, at %s)\n\n", meta.Started.UTC().Format("2006-01-02 15:04"), meta.Commit)
	fmt.Fprintf(&b, "`%s`: %d systems x %d faults x %d seeds (%v), %d client processes on %d resources, %v per run, "+
		"leases of %v; %s on %d cores (%s/%s).\n\n", meta.Command, len(cfg.Systems), len(cfg.Faults), len(cfg.Seeds),
		cfg.Seeds, cfg.Clients, cfg.Resources, cfg.Duration, cfg.TTL, meta.Took.Round(time.Second), runtime.NumCPU(),
		runtime.GOOS, runtime.GOARCH)
	b.WriteString("| system | fault | runs | linearizable (`bouncer check`) | client-view overlaps (total, longest) | " +
		"stale writes taken | stale writes refused by the fence | taken out of token order | availability | writes |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range cfg.Faults {
		for _, s := range cfg.Systems {
			c := cells[[2]string{s, f}]
			if c == nil {
				continue
			}
			lin := fmt.Sprintf("%d/%d ok", c.lin, c.runs)
			if c.illegal > 0 {
				lin += fmt.Sprintf(", **%d illegal**", c.illegal)
			}
			if c.unknown > 0 {
				lin += fmt.Sprintf(", %d unknown", c.unknown)
			}
			ov := "0"
			if c.overlaps > 0 {
				ov = fmt.Sprintf("**%d** (%v, %v)", c.overlaps, c.overlapTime.Round(time.Millisecond), c.overlapMax.Round(time.Millisecond))
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %d | %s | %.0f%% | %d |\n", s, f, c.runs, lin, ov,
				bold(c.staleTaken), c.staleRefused, bold(c.ooo), 100*c.avail/float64(c.runs), c.writes)
		}
	}
	fmt.Fprintf(&b, "\nEvery run, with what its fault did and when (since the run's start), and the check of its history (in %s):\n\n", cfg.Work)
	b.WriteString("| system | fault | seed | schedule | bouncer check |\n|---|---|---|---|---|\n")
	for i := range rows {
		r := &rows[i]
		check := strings.ReplaceAll(strings.TrimPrefix(r.Check, cfg.Work+"/"), "|", "/")
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s |\n", r.System, r.Fault, r.Seed, r.Schedule, check)
	}
	b.WriteString("\n### Planted faults (in this run's records)\n\n")
	b.WriteString("| checker | planted in | fault planted | caught | what it said |\n|---|---|---|---|---|\n")
	for _, p := range planted {
		fmt.Fprintf(&b, "| %s | %s | %s | %v | %s |\n", p.Checker, p.Source, p.Plant, yes(p.Caught), strings.ReplaceAll(p.Detail, "|", "/"))
	}
	b.WriteString("\n### The violations, with the records that show them\n")
	any := false
	for _, f := range cfg.Faults {
		for _, s := range cfg.Systems {
			c := cells[[2]string{s, f}]
			if c == nil || c.first == nil {
				continue
			}
			any = true
			excerpt(&b, c.first)
		}
	}
	if !any {
		b.WriteString("\nNone.\n")
	}
	b.WriteString(correctnessNotes)
	_, err := w.Write(b.Bytes())
	return err
}

func bold(n int) string {
	if n > 0 {
		return fmt.Sprintf("**%d**", n)
	}
	return "0"
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

// excerpt shows the records of r's first violations: bouncer check's
// verdict, the first overlap with the two clients' history on that
// resource around it, the first stale write with the store's log before it.
func excerpt(b *bytes.Buffer, r *CheckRow) {
	fmt.Fprintf(b, "\n#### %s, %s, seed %d\n\n%s. Records in `%s` (history.jsonl, beliefs-N.jsonl, store.jsonl", r.System, r.Fault, r.Seed, r.Schedule, r.Dir)
	b.WriteString(").\n\n")
	if r.Linearizable != "ok" {
		fmt.Fprintf(b, "`bouncer check`: %s (`bouncer check --timeout 10m %s/history.jsonl` writes the replay page and Porcupine's beside it; on this history that takes minutes)\n\n", r.Check, r.Dir)
	}
	if len(r.Overlaps) > 0 {
		o := r.Overlaps[0]
		fmt.Fprintf(b, "Client %d and client %d both believed they held %s from %s to %s (%v); their beliefs and the history on %s:\n\n```\n",
			o.A.Client, o.B.Client, o.A.Resource, ms(o.From), ms(o.To), time.Duration(o.To-o.From).Round(time.Millisecond), o.A.Resource)
		for _, x := range []Belief{o.A, o.B} {
			j, _ := json.Marshal(x)
			fmt.Fprintf(b, "belief %s\n", j)
		}
		lo, hi := min(o.A.Start, o.B.Start), max(o.A.End, o.B.End, o.A.Release, o.B.Release)
		historyAround(b, r.History, o.A.Resource, []int{o.A.Client, o.B.Client}, lo, hi)
		b.WriteString("```\n")
	}
	if r.FirstStale != nil {
		s := *r.FirstStale
		fmt.Fprintf(b, "\nThe store took a write from client %d (grant answered at %s) at %s, after a write of a later grant of %s; the store's log on %s up to it:\n\n```\n",
			s.Client, ms(s.Grant), ms(s.At), s.Resource, s.Resource)
		var prior []StoreWrite
		for _, w := range r.Log {
			if w.Resource == s.Resource && w.At <= s.At {
				prior = append(prior, w)
			}
		}
		for _, w := range prior[max(0, len(prior)-6):] {
			j, _ := json.Marshal(w)
			fmt.Fprintf(b, "%s\n", j)
		}
		b.WriteString("```\n")
	}
}

// historyAround prints the entries of clients on resource that overlap
// [lo, hi], in call order, at most 16.
func historyAround(b *bytes.Buffer, h []linearizability.Entry, resource string, clients []int, lo, hi int64) {
	var sel []linearizability.Entry
	for _, e := range h {
		if !containsInt(clients, e.Client) || e.Input.Resource != resource && !contains(e.Resources, resource) {
			continue
		}
		// Its span [call, return] (an expiry's return may come first: the
		// client learned of it before its lease could have run out) meets
		// [lo, hi].
		if min(int64(e.Call), int64(e.Return)) <= hi && int64(e.Return) >= lo {
			sel = append(sel, e)
		}
	}
	sort.SliceStable(sel, func(i, j int) bool { return sel[i].Call < sel[j].Call })
	for _, e := range sel[:min(len(sel), 16)] {
		j, _ := json.Marshal(e)
		fmt.Fprintf(b, "%s\n", j)
	}
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func ms(ns int64) string { return fmt.Sprintf("%.0f ms", float64(ns)/1e6) }
