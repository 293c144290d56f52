//go:build bugzoo

package replay

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/sim"
	"github.com/stretchr/testify/require"
)

// The page of a bug-zoo seed shows the first violation in the checker's
// words, goes to its step, and shows there the queue the bug broke: with
// fifo-overtake, a request granted while one queued ahead of it waits.
//
//	go test -tags bugzoo ./sim/replay -run BugZooPage
func TestBugZooPageInBrowser(t *testing.T) {
	b := newBrowser(t)
	const name = "fifo-overtake"
	i := slices.IndexFunc(sim.Zoo, func(b sim.Bug) bool { return b.Name == name })
	require.GreaterOrEqual(t, i, 0)
	bug := sim.Zoo[i]
	require.NoError(t, sim.PlantBug(name))
	defer func() { _ = sim.PlantBug("") }()
	var p *Page
	var rep *sim.Report
	for seed := uint64(1); seed <= 10 && p == nil; seed++ {
		o := sim.NewOptions(seed)
		o.Nodes = max(1, bug.Nodes)
		if bug.Tune != nil {
			bug.Tune(&o)
		}
		rec := NewRecorder()
		rep = sim.Run(o, rec.Config(sim.Config{LinTimeout: time.Minute}))
		if rep.Verdict(bug.Checker).OK {
			continue
		}
		var err error
		p, err = rec.Page(rep, "seed.porcupine.html", "bouncer sim --bug "+name)
		require.NoError(t, err)
	}
	require.NotNil(t, p, "the %s checker did not catch %s in 10 seeds", bug.Checker, name)
	require.NotNil(t, p.Failure)
	require.GreaterOrEqual(t, p.Failure.Step, 0)
	first := rep.Verdict(p.Failure.Checker)
	require.False(t, first.OK)

	path := writePage(t, t.TempDir(), p)
	b.open(t, path)
	box := b.text(t, "failure")
	require.Contains(t, box, p.Failure.Checker)
	require.Contains(t, box, first.Detail, "the checker's own words")
	require.Contains(t, b.text(t, "summary"), "correctness")

	b.click(t, "goto-failure")
	cur := b.text(t, "current")
	require.Contains(t, cur, first.Detail)
	class, err := runString(b, `document.getElementById('current').className`)
	require.NoError(t, err)
	require.Contains(t, class, "bad")
	bad, err := runString(b, `document.querySelector('#log .bad.cur') ? 'yes' : 'no'`)
	require.NoError(t, err)
	require.Equal(t, "yes", bad, "the step list marks the violation as the current step")
	require.Contains(t, b.text(t, "verdicts"), "FAIL")

	// The resource the violation names shows, at its step, the session
	// the bug granted.
	res := regexp.MustCompile(`"(r[0-9]+)"`).FindStringSubmatch(first.Detail)
	id := regexp.MustCompile(`[0-9a-f]{32}`).FindString(first.Detail)
	require.NotNil(t, res, first.Detail)
	require.NotEmpty(t, id, first.Detail)
	card, err := runString(b, `document.querySelector('#queues [data-resource="`+res[1]+`"]').innerText`)
	require.NoError(t, err)
	require.Contains(t, card, "GRANTED")
	require.Contains(t, card, id[:8], "the queue view at the violation shows the grant the checker named")
	b.noErrors(t)
}
