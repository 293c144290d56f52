package replay

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// browserTimeout bounds each test in the browser, start to finish.
const browserTimeout = 60 * time.Second

// findBrowser returns a Chromium or Chrome binary, or "" if none is
// installed (the browser tests then skip: apt-get install chromium).
func findBrowser() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is a headless browser that records every console error and
// uncaught exception of the pages it shows.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := findBrowser()
	if path == "" {
		t.Skip("no chromium or chrome binary found: the page is not tested in a browser")
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests may run as root, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.Flag("no-proxy-server", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	b := &browser{ctx: bctx}
	err := chromedp.Listen(bctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, a.Description+string(a.Value))
				}
				b.fail("console " + string(ev.Type) + ": " + strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.fail(fmt.Sprintf("exception at %d:%d: %s", d.LineNumber+1, d.ColumnNumber+1, msg))
		case *cdplog.EventEntryAdded:
			if e := ev.Entry; e != nil && e.Level == cdplog.EntryLevelError {
				b.fail("browser log: " + e.Text + " " + e.URL)
			}
		}
	})
	require.NoError(t, err, "starting %s", path)
	return b
}

func (b *browser) fail(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errors = append(b.errors, s)
}

// noErrors requires that no page logged an error or threw.
func (b *browser) noErrors(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Empty(t, b.errors, "the page logged errors")
}

// open loads the page at path and waits until its script has drawn it.
func (b *browser) open(t *testing.T, path string) {
	t.Helper()
	abs, err := filepath.Abs(path)
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(b.ctx,
		chromedp.Navigate("file://"+filepath.ToSlash(abs)),
		chromedp.WaitReady(chromedp.CSS(`body[data-ready="1"]`)),
	))
}

// text is an element's rendered text.
func (b *browser) text(t *testing.T, id string) string {
	t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById(`+quoteJS(id)+`).innerText`))
	require.NoError(t, err)
	return s
}

func (b *browser) click(t *testing.T, id string) {
	t.Helper()
	require.NoError(t, chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS("#"+id), chromedp.NodeVisible)))
}

func quoteJS(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// writePage writes p into dir with an empty Porcupine page beside it.
func writePage(t *testing.T, dir string, p *Page) string {
	t.Helper()
	path := filepath.Join(dir, "page.html")
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, p.Write(f))
	require.NoError(t, f.Close())
	if p.Porcupine != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, p.Porcupine), []byte("<html></html>"), 0o644))
	}
	return path
}

// stepUntilQueuesChange presses "next" until the resources view changes,
// and returns how many presses that took.
func (b *browser) stepUntilQueuesChange(t *testing.T, limit int) int {
	t.Helper()
	before := b.text(t, "queues")
	for i := 1; i <= limit; i++ {
		b.click(t, "next")
		if b.text(t, "queues") != before {
			return i
		}
	}
	t.Fatalf("%d steps forward did not change the queue view:\n%s", limit, before)
	return 0
}

// The page of a passing seed loads without errors, and stepping forward
// moves the instant and changes the queues shown.
func TestPageInBrowser(t *testing.T) {
	for _, nodes := range []int{1, 3} {
		t.Run(fmt.Sprintf("nodes=%d", nodes), func(t *testing.T) { testPageInBrowser(t, nodes) })
	}
}

func testPageInBrowser(t *testing.T, nodes int) {
	b := newBrowser(t)
	p, _, rep := record(t, shortRun(5, nodes))
	require.False(t, rep.Failed())
	path := writePage(t, t.TempDir(), p)
	b.open(t, path)
	require.Contains(t, b.text(t, "now"), "step 1 of ")
	require.Contains(t, b.text(t, "summary"), "passed")
	n := b.stepUntilQueuesChange(t, 200)
	require.Contains(t, b.text(t, "now"), fmt.Sprintf("step %d of ", n+1))
	require.Contains(t, b.text(t, "queues"), "GRANTED")
	// The failure box stays hidden; Porcupine's page is linked.
	hidden, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.getElementById('failure').hidden`))
	require.NoError(t, err)
	require.True(t, hidden)
	href, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById('porcupine-link').getAttribute('href')`))
	require.NoError(t, err)
	require.Equal(t, "x.porcupine.html", href)
	// The last step draws too, and the whole run in the timeline.
	require.NoError(t, chromedp.Do(b.ctx, chromedp.SetValue(chromedp.CSS("#span"), "0")))
	b.click(t, "last")
	require.Contains(t, b.text(t, "now"), fmt.Sprintf("step %d of %d", len(p.Events), len(p.Events)))
	b.noErrors(t)
}

// A failing history's page (bouncer check) shows its violation in the
// checker's words, and goes to it.
func TestHistoryPageInBrowser(t *testing.T) {
	b := newBrowser(t)
	p := failingHistoryPage(t)
	path := writePage(t, t.TempDir(), p)
	b.open(t, path)
	require.Contains(t, b.text(t, "failure"), "linearizability")
	require.Contains(t, b.text(t, "failure"), "not linearizable")
	b.click(t, "goto-failure")
	require.Contains(t, b.text(t, "current"), "not linearizable")
	b.noErrors(t)
}

// runString evaluates a JavaScript expression that yields a string.
func runString(b *browser, expr string) (string, error) {
	return chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
}
