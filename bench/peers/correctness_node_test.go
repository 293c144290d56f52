package peers

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/linearizability"
	"github.com/bouncer-dlm/bouncer/server"
	"github.com/bouncer-dlm/bouncer/server/servertest"
)

// Two clients of a real node (in this process, on 127.0.0.1) run the
// correctness workload for a few seconds: their merged history checks, no
// beliefs overlap, no stale write is taken, and the store saw writes with
// the grants' tokens.
func TestCorrectnessOnBouncerNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs clients for 4 s")
	}
	addr := servertest.Start(t, server.Options{})
	epoch := time.Now()
	store := NewFencedStore(epoch)
	stop, storeAddr, err := store.Serve()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = RunClient(ctx, ClientConfig{System: "bouncer", Addr: addr, Store: storeAddr, ID: i,
				Resources: []string{"r0"}, Epoch: epoch, End: epoch.Add(4 * time.Second), Seed: 7,
				TTL: 3 * time.Second, Dir: dir}, io.Discard)
		}()
	}
	wg.Wait()
	var h []linearizability.Entry
	var bs []Belief
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
		hi, err := readHistoryFile(filepath.Join(dir, fmt.Sprintf("history-%d.jsonl", i)))
		if err != nil {
			t.Fatal(err)
		}
		h = append(h, hi...)
		b, err := readJSONLines[Belief](filepath.Join(dir, fmt.Sprintf("beliefs-%d.jsonl", i)))
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b...)
	}
	if len(bs) < 3 {
		t.Fatalf("%d holds in 4 s, want at least 3", len(bs))
	}
	if v := linearizability.Check(h, time.Minute); !v.OK() {
		t.Fatalf("history of a real node: %s", v.String())
	}
	log, err := store.Log()
	if err != nil {
		t.Fatal(err)
	}
	v := Judge(bs, log, []string{"r0"}, 0, int64(4*time.Second))
	// Every hold was read back from the node before its release, and held.
	if len(v.Overlaps) != 0 || v.StaleAccepted != 0 || v.OutOfOrder != 0 || v.Writes < 10 || v.Checks < len(bs)-1 || v.Lost != 0 {
		t.Fatalf("verdict %+v", v)
	}
	for _, w := range log {
		if w.Token == 0 || !w.Accepted {
			t.Fatalf("write %+v: want a token, taken", w)
		}
	}
	// The same history with a double grant planted fails the check.
	p, ok := PlantDoubleGrant(h)
	if !ok {
		t.Fatal("nothing to plant on")
	}
	if v := linearizability.Check(p, time.Minute); v.Verdict != linearizability.Illegal {
		t.Fatalf("planted: %s, want Illegal", v.String())
	}
}
