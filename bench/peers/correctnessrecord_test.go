package peers

import (
	"os"
	"path/filepath"
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
