package peers

// The record of a correctness run (WORK/report.json): enough to write the
// report again, from the runs' own files, without running anything.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// RunRecord is what a correctness run keeps to write its report again.
type RunRecord struct {
	Meta    ReportMeta
	Rows    []CheckRow
	Planted []PlantedCheck
}

// recordName is the record's file in the work directory.
const recordName = "report.json"

// SaveRecord writes the record into the work directory.
func SaveRecord(rec RunRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(rec.Meta.Config.Work, recordName), b, 0o644)
}

// LoadRecord reads the record of the run in work, and each run's history,
// beliefs and store log from its directory.
func LoadRecord(work string) (RunRecord, error) {
	var rec RunRecord
	b, err := os.ReadFile(filepath.Join(work, recordName))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%s: %w", recordName, err)
	}
	for i := range rec.Rows {
		r := &rec.Rows[i]
		if r.History, err = readHistoryFile(filepath.Join(r.Dir, "history.jsonl")); err != nil {
			return rec, err
		}
		if r.Log, err = readJSONLines[StoreWrite](filepath.Join(r.Dir, "store.jsonl")); err != nil {
			return rec, err
		}
		files, err := filepath.Glob(filepath.Join(r.Dir, "beliefs-*.jsonl"))
		if err != nil {
			return rec, err
		}
		r.Beliefs = nil
		for _, f := range files {
			bs, err := readJSONLines[Belief](f)
			if err != nil {
				return rec, err
			}
			r.Beliefs = append(r.Beliefs, bs...)
		}
	}
	return rec, nil
}
