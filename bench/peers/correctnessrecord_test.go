package peers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/linearizability"
	"github.com/bouncer-dlm/bouncer/spec"
)

// A run's record and its runs' files give back the rows the report was
// written from.
func TestRecordRoundTrip(t *testing.T) {
	work := t.TempDir()
	dir := filepath.Join(work, "bouncer-none-1")
	h := []linearizability.Entry{{Client: 0, Input: spec.Input{Op: spec.OpAcquire, Session: spec.SessionID{1}, Request: 1, Resource: "r0", Mode: spec.EX},
		Call: 1, Return: 2, Known: true, Output: spec.Result{Code: spec.OK, Mode: spec.EX, Token: 1, ValueValid: true}}}
	bs := []Belief{{Client: 0, Resource: "r0", Token: 1, Start: 2, End: 50, Release: 50, Checked: 40, Held: true}}
	log := []StoreWrite{{At: 10, Client: 0, Resource: "r0", Token: 1, Grant: 2, Accepted: true}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{writeHistoryFile(filepath.Join(dir, "history.jsonl"), h),
		writeJSONLines(filepath.Join(dir, "beliefs-0.jsonl"), bs), writeJSONLines(filepath.Join(dir, "store.jsonl"), log)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	row := CheckRow{System: "bouncer", Fault: "none", Seed: 1, Dir: dir, Linearizable: "ok", Check: "ok line",
		Verdict: Judge(bs, log, []string{"r0"}, 0, 100)}
	meta := ReportMeta{Command: "cmd", Commit: "abc", Started: time.Unix(100, 0).UTC(), Took: time.Minute,
		Config: CorrectnessConfig{Work: work, Systems: []string{"bouncer"}, Faults: []string{"none"}, Seeds: []uint64{1}}}
	planted := []PlantedCheck{{Checker: "c", Caught: true}}
	if err := SaveRecord(RunRecord{Meta: meta, Rows: []CheckRow{row}, Planted: planted}); err != nil {
		t.Fatal(err)
	}
	rec, err := LoadRecord(work)
	if err != nil {
		t.Fatal(err)
	}
	got := rec.Rows[0]
	if rec.Meta.Command != "cmd" || rec.Meta.Took != time.Minute || len(rec.Planted) != 1 || !rec.Planted[0].Caught ||
		got.System != "bouncer" || got.Checks != 1 || len(got.History) != 1 || len(got.Beliefs) != 1 || !got.Beliefs[0].Held ||
		len(got.Log) != 1 || got.Log[0].Token != 1 {
		t.Fatalf("read back %+v", rec)
	}
}

// The report shows the table, the violation's excerpt with its pages, the
// planted faults, and a second run's table.
func TestReportShowsViolationsAndSecondRun(t *testing.T) {
	cfg := CorrectnessConfig{Work: "/w", Systems: []string{"bouncer", "redis-default"}, Faults: []string{"pause-client"},
		Seeds: []uint64{1}, Clients: 3, Resources: 2, Duration: 10 * time.Second, TTL: 3 * time.Second}
	stale := StoreWrite{At: 90, Client: 1, Resource: "r0", Grant: 10, Accepted: true}
	rows := []CheckRow{
		{System: "bouncer", Fault: "pause-client", Seed: 1, Dir: "/w/bouncer-pause-client-1", Linearizable: "ok"},
		{System: "redis-default", Fault: "pause-client", Seed: 1, Dir: "/w/redis-default-pause-client-1", Linearizable: "illegal",
			Check: "history.jsonl: Illegal", Log: []StoreWrite{{At: 50, Client: 0, Resource: "r0", Grant: 20, Accepted: true}, stale},
			Verdict: Verdict{StaleAccepted: 1, FirstStale: &stale, Writes: 2}},
	}
	meta := ReportMeta{Command: "bench/peers/correctness.sh", Commit: "abc", Config: cfg, Pages: "pages"}
	second := &RunRecord{Meta: ReportMeta{Command: "bench/peers/correctness.sh -seeds 3", Config: cfg}, Rows: rows[:1]}
	var b strings.Builder
	if err := WriteCorrectnessReport(&b, meta, rows, []PlantedCheck{{Checker: "stale writes at the store", Caught: true}}, second); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| redis-default | pause-client | 1 | 0/1 ok, **1 illegal** |",
		"#### redis-default, pause-client, seed 1",
		"(pages/redis-default-pause-client-1.porcupine.html)",
		`"client":1,"resource":"r0","token":0,"grant":10,"accepted":true`,
		"| stale writes at the store |",
		"## A second run with other seeds",
		"`bench/peers/correctness.sh -seeds 3`",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if strings.Contains(md, "#### bouncer, pause-client") {
		t.Error("an excerpt for a run without a violation")
	}
}
