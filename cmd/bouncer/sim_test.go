package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSimCampaignSummary(t *testing.T) {
	var out, errOut bytes.Buffer
	f := simFlags{seeds: 2, start: 1, jobs: 2, out: t.TempDir(), linTimeout: time.Minute, safety: 2 * time.Second}
	require.NoError(t, simCampaign(f, &out, &errOut))
	require.Contains(t, out.String(), "seeds=2 failures=0 correctness=0 liveness=0 crash=0")
}

func TestSimOneWritesIdenticalTraces(t *testing.T) {
	dir := t.TempDir()
	var traces, pages [2][]byte
	for i := range traces {
		f := simFlags{seed: 3, safety: 2 * time.Second, out: dir, linTimeout: time.Minute,
			trace: filepath.Join(dir, "t.ndjson"), history: filepath.Join(dir, "h.jsonl"), html: filepath.Join(dir, "p.html")}
		var out bytes.Buffer
		require.NoError(t, simOne(f, &out))
		require.Contains(t, out.String(), "seed=3 passed")
		require.Contains(t, out.String(), "linearizability  ok")
		b, err := os.ReadFile(f.trace)
		require.NoError(t, err)
		traces[i] = b
		// The replay page, and Porcupine's beside it, linked from it.
		pages[i], err = os.ReadFile(f.html)
		require.NoError(t, err)
		require.Contains(t, string(pages[i]), `"porcupine":"p.porcupine.html"`)
		require.Contains(t, string(pages[i]), `"summary":"seed=3 passed"`)
		_, err = os.Stat(filepath.Join(dir, "p.porcupine.html"))
		require.NoError(t, err)
	}
	require.Equal(t, traces[0], traces[1])
	require.Equal(t, pages[0], pages[1], "the same seed gives the same page")
	require.Contains(t, (&simFlags{safety: 2 * time.Second}).replay(3), "bouncer sim --seed 3 --safety 2s")

	// The history it wrote checks as linearizable.
	var out bytes.Buffer
	require.NoError(t, check(filepath.Join(dir, "h.jsonl"), "", time.Minute, &out))
	require.Contains(t, out.String(), "Ok:")
}

func TestCheckFailsAndWritesHTML(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.jsonl")
	bad := `{"client":0,"session":"00000000000000000000000000000001","op":"acquire","resource":"r","request":1,"mode":"EX","no_queue":true,"call":1,"return":2,"result":{"code":"OK","mode":"EX","token":1,"value_valid":true}}
{"client":1,"session":"00000000000000000000000000000002","op":"acquire","resource":"r","request":1,"mode":"EX","no_queue":true,"call":3,"return":4,"result":{"code":"OK","mode":"EX","token":2,"value_valid":true}}
`
	require.NoError(t, os.WriteFile(path, []byte(bad), 0o644))
	var out bytes.Buffer
	err := check(path, "", time.Minute, &out)
	var e *exitError
	require.True(t, errors.As(err, &e))
	require.Equal(t, exitCorrectness, e.code)
	html, err := os.ReadFile(strings.TrimSuffix(path, ".jsonl") + ".html")
	require.NoError(t, err)
	require.Contains(t, string(html), "<html")
	// The replay page names the violation and links Porcupine's page.
	require.Contains(t, string(html), `"checker":"linearizability"`)
	require.Contains(t, string(html), `"porcupine":"bad.porcupine.html"`)
	porc, err := os.ReadFile(filepath.Join(dir, "bad.porcupine.html"))
	require.NoError(t, err)
	require.Contains(t, string(porc), "<html")

	require.NoError(t, os.WriteFile(path, []byte("{nope\n"), 0o644))
	err = check(path, "", time.Minute, &out)
	require.True(t, errors.As(err, &e))
	require.Equal(t, exitBadHistory, e.code)
}
