package engine_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bouncer-dlm/bouncer/engine"
	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/spec/spectest"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"pgregory.net/rapid"
)

// crashPointsMin is how many crashes TestCrashRecovery must make (in CI too).
const crashPointsMin = 200

// crashFS wraps a crashable MemFS and can take a crash image in the middle
// of a turn's commit: at the k-th write or sync of any file, the image is
// what a power cut at that moment could leave.
type crashFS struct {
	mem     *vfs.MemFS
	rng     *rand.Rand
	percent int // of unsynced data the image keeps

	mu    sync.Mutex
	armed int // crash at this write/sync op (counting down); 0: disarmed
	image *vfs.MemFS
}

func (c *crashFS) MaybeError(op errorfs.Op) error {
	if op.Kind.ReadOrWrite() != errorfs.OpIsWrite {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed > 0 {
		c.armed--
		if c.armed == 0 {
			c.image = c.mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: c.percent, RNG: c.rng})
		}
	}
	return nil
}

func (c *crashFS) String() string { return "crash" }

// TestCrashRecovery: random turns on a node over vfs.NewCrashableMem, power
// cuts at random points (between turns, or inside a commit at a random write
// or sync) keeping 0%, 100% or some of the unsynced data; after recovery
// every acknowledged outcome is there (the recovered state equals the model
// at the last durable batch, or, for a cut inside a commit, possibly at the
// end of that unacknowledged turn), and every token issued after recovery is
// greater than every token acknowledged before.
func TestCrashRecovery(t *testing.T) {
	var crashes, inCommit atomic.Int64
	rapid.Check(t, func(t *rapid.T) { crashRun(t, &crashes, &inCommit) })
	t.Logf("crash points: %d, of which inside a commit: %d", crashes.Load(), inCommit.Load())
	checks, _ := strconv.Atoi(flag.Lookup("rapid.checks").Value.String())
	if n := crashes.Load(); checks >= rapidChecksDefault && n < crashPointsMin {
		t.Fatalf("only %d crash points, want at least %d", n, crashPointsMin)
	}
}

func crashRun(t *rapid.T, crashes, inCommit *atomic.Int64) {
	lim := spectest.SmallLimits()
	g := spectest.NewGen()
	seed := rapid.Uint64().Draw(t, "seed")
	cfs := &crashFS{mem: vfs.NewCrashableMem(), rng: rand.New(rand.NewPCG(seed, 1))}
	open := func(fs vfs.FS, now spec.Time) *engine.Node {
		n, err := engine.OpenNode(engine.NodeOptions{FS: errorfs.Wrap(fs, cfs), Dir: "db", Limits: lim}, now)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return n
	}
	node := open(cfs.mem, 0)
	defer func() { _ = node.Close() }()
	model := spec.NewModel(lim)
	var ackedTokenMax spec.Token
	for round := 0; round < 6; round++ {
		// Some acknowledged turns, then one that may be cut in its commit.
		turns := rapid.IntRange(0, 8).Draw(t, "turns")
		for i := 0; i < turns; i++ {
			turn(t, g, node, model, &ackedTokenMax)
		}
		durable := model.Clone()
		percent := rapid.SampledFrom([]int{0, 100, 50}).Draw(t, "unsynced-kept")
		cutAt := rapid.IntRange(0, 6).Draw(t, "cut-at-write")
		cfs.mu.Lock() // no draws under the lock: a draw may panic
		cfs.percent, cfs.armed, cfs.image = percent, cutAt, nil
		cfs.mu.Unlock()
		inFlight := turn(t, g, node, model, nil) // never delivered if cut
		cfs.mu.Lock()
		image := cfs.image
		cfs.armed = 0
		cfs.mu.Unlock()
		candidates := []*spec.Model{model, durable}
		if image == nil { // cut after the turn instead: it was acknowledged
			image = cfs.mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: cfs.percent, RNG: cfs.rng})
			candidates = candidates[:1]
			ackTokens(inFlight, &ackedTokenMax)
		} else {
			inCommit.Add(1)
		}
		crashes.Add(1)
		_ = node.Close()
		cfs.mem = image
		now := g.Advance(t)
		node = open(image, now)
		model = recovered(t, node, candidates, now)
		// Tokens after recovery exceed every acknowledged one: the counter
		// survived, and every new grant is above it.
		before := node.Core().State()
		if before.TokenMax < ackedTokenMax {
			t.Fatalf("recovered token-max %d is below token %d, acknowledged before the crash", before.TokenMax, ackedTokenMax)
		}
		turn(t, g, node, model, &ackedTokenMax)
		after := node.Core().State()
		if err := spec.CheckTransition(&before, &after); err != nil {
			t.Fatalf("first turns after recovery: %v", err)
		}
	}
}

// turn makes one turn of random inputs on the node and the model, which must
// agree; it returns the tokens the turn issued and, if acked is not nil,
// counts them as acknowledged.
func turn(t *rapid.T, g *spectest.Gen, node *engine.Node, model *spec.Model, acked *spec.Token) []spec.Token {
	now := g.Advance(t)
	n := rapid.IntRange(0, 4).Draw(t, "inputs")
	inputs := make([]spec.Input, n)
	for i := range inputs {
		inputs[i] = g.Input(t)
	}
	res, err := node.Turn(now, inputs)
	if err != nil {
		t.Fatalf("turn: %v", err)
	}
	var events []spec.Event
	if n == 0 {
		events = model.Tick(now)
	}
	var tokens []spec.Token
	for i, in := range inputs {
		r, ev := model.Step(now, in)
		if d := diffResults(r, res.Replies[i]); d != "" {
			t.Fatalf("node and model replies differ for %+v\n%s", in, d)
		}
		g.Observe(in, r, ev)
		events = append(events, ev...)
		if r.Token != 0 {
			tokens = append(tokens, r.Token)
		}
	}
	if d := diffEvents(events, res.Events); d != "" {
		t.Fatalf("node and model events differ\n%s", d)
	}
	for _, e := range events {
		if e.Kind == spec.Completed && e.Result.Token != 0 {
			tokens = append(tokens, e.Result.Token)
		}
	}
	if acked != nil {
		ackTokens(tokens, acked)
	}
	return tokens
}

func ackTokens(tokens []spec.Token, acked *spec.Token) {
	for _, tok := range tokens {
		*acked = max(*acked, tok)
	}
}

// recovered makes the first turn of a recovered node and returns the
// candidate model (recovered at now) whose state and events it matches.
func recovered(t *rapid.T, node *engine.Node, candidates []*spec.Model, now spec.Time) *spec.Model {
	res, err := node.Turn(now, nil)
	if err != nil {
		t.Fatalf("first turn after recovery: %v", err)
	}
	got := node.Core().State()
	var diffs string
	for i, m := range candidates {
		m = m.Clone()
		m.Recover(now)
		ev := m.Tick(now)
		want := m.State()
		d := diffStates(&want, &got) + diffEvents(ev, res.Events)
		if d == "" {
			return m
		}
		diffs += fmt.Sprintf("candidate %d:\n%s\n", i, d)
	}
	t.Fatalf("recovered state matches no durable model state\n%s", diffs)
	return nil
}
