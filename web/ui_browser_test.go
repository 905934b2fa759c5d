package web

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// actionTimeout bounds every browser step: a hung browser must fail the
// test, not the CI job's global timeout.
const actionTimeout = 30 * time.Second

// chromiumPath finds Debian's chromium. Its absence fails the test: a UI
// test that skips silently would let a broken UI pass CI.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed; the UI test needs it: apt-get update && apt-get install -y --no-install-recommends chromium")
	return ""
}

// newBrowser starts a headless chromium for the test and stops it at the
// end. The first action starts the process, so it cannot carry a timeout
// (that would kill the browser afterwards); it is bounded from outside.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
		defer tcancel()
		_ = chromedp.Cancel(tctx)
		cancel()
		cancelAlloc() // kills the process if it did not close, and waits for it
	})
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting chromium: %v", err)
		}
	case <-time.After(actionTimeout):
		t.Fatalf("chromium did not start within %s", actionTimeout)
	}
	return ctx
}

func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// count returns how many elements match sel, zero included (a plain query
// would wait for the first match).
func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	return len(run(t, ctx, "count "+sel, chromedp.Nodes(chromedp.CSSAll(sel), chromedp.AtLeast(0))))
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return strings.TrimSpace(run(t, ctx, "text of "+sel, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible)))
}

// screenshot saves a full-page PNG into the test's temp dir and, when
// SLOGATE_UI_SCREENSHOTS names a directory, there too, for people to look at.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := run(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	dirs := []string{dir}
	if d := os.Getenv("SLOGATE_UI_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUIInBrowser(t *testing.T) {
	f := newFixture(t)
	ts := httptest.NewServer(f.server.Handler())
	defer ts.Close()
	ctx := newBrowser(t)
	shots := t.TempDir()

	open := func(t *testing.T, path string) {
		t.Helper()
		run(t, ctx, "navigate to "+path, chromedp.Navigate(ts.URL+path))
		// Laid out wider than the window means a horizontal scrollbar.
		if w := run(t, ctx, "page width", chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 1280 {
			t.Errorf("%s is %dpx wide, more than the 1280px window", path, w)
		}
		// Tables scroll inside their box on narrow screens; at 1280px none
		// should have to, or a column (the data badge) hides off-screen.
		if n := run(t, ctx, "overflowing tables", chromedp.Evaluate[int](`[...document.querySelectorAll(".scroll")].filter(e => e.scrollWidth > e.clientWidth).length`)); n > 0 {
			t.Errorf("%s: %d tables are wider than their box at 1280px", path, n)
		}
	}
	firing := 0
	for _, s := range f.ev.SLOs() {
		for _, a := range s.Alerts {
			if a.Firing {
				firing++
			}
		}
	}

	t.Run("overview", func(t *testing.T) {
		open(t, "/")
		if got := run(t, ctx, "title", chromedp.Title()); got != "Overview · slogate" {
			t.Errorf("title %q", got)
		}
		// The groups of edge-availability are rows under it, not SLOs of
		// their own in the list.
		if n := count(t, ctx, "#slos tbody tr:not(.group)"); n != len(fixtureDefinitions().SLOs) {
			t.Errorf("%d SLO rows, want %d", n, len(fixtureDefinitions().SLOs))
		}
		if n := count(t, ctx, `#slos tbody tr.group`); n != 3 {
			t.Errorf("%d group rows, want 3", n)
		}
		if got := text(t, ctx, `tr[data-slo="edge-availability"] .groups`); got != "3 groups (1 not followed: maxGroups)" {
			t.Errorf("groups of edge-availability %q", got)
		}
		if n := count(t, ctx, "#slos svg.bar"); n != len(f.ev.SLOs()) {
			t.Errorf("%d budget bars, want %d", n, len(f.ev.SLOs()))
		}
		if n := count(t, ctx, "#slos svg.bar rect.fill"); n != len(f.ev.SLOs())-1 {
			t.Errorf("%d filled budget bars, want all but the stale SLO's", n)
		}
		if got := text(t, ctx, "#firing b"); got != strconv.Itoa(firing) {
			t.Errorf("firing card %q, want %d", got, firing)
		}
		if got := text(t, ctx, `tr[data-slo="checkout-availability"] .badge.firing`); got != "FIRING" {
			t.Errorf("checkout alert badge %q", got)
		}
		if got := text(t, ctx, `tr[data-slo="inventory-availability"] .stale`); got != "no fresh data" {
			t.Errorf("stale badge %q", got)
		}
		if n := count(t, ctx, "#gates li"); n != 4 {
			t.Errorf("%d gates, want 4", n)
		}
		screenshot(t, ctx, shots, "overview.png")
	})

	t.Run("slo", func(t *testing.T) {
		open(t, "/slos/checkout-availability")
		if got := text(t, ctx, "h1"); !strings.HasPrefix(got, "checkout-availability") {
			t.Errorf("heading %q", got)
		}
		if n := count(t, ctx, "svg.chart"); n != 3 {
			t.Errorf("%d charts, want 3", n)
		}
		if n := count(t, ctx, "svg.chart polyline"); n == 0 {
			t.Error("no chart has a line")
		}
		// A chart must be drawn at a readable size, not collapsed.
		box := run(t, ctx, "chart size", chromedp.Dimensions(chromedp.CSS("svg.chart")))
		if w := box.Width; w < 300 {
			t.Errorf("chart is %dpx wide", w)
		}
		if n := count(t, ctx, "#windows tbody tr"); n != 8 {
			t.Errorf("%d windows, want 8 (7 standard and the SLO window)", n)
		}
		if n := count(t, ctx, "#tiers tbody tr"); n != 4 {
			t.Errorf("%d alert tiers, want 4", n)
		}
		screenshot(t, ctx, shots, "slo.png")
	})

	t.Run("slo with a low-traffic tier", func(t *testing.T) {
		open(t, "/slos/payments-availability")
		if got := text(t, ctx, ".card .low-traffic"); got != "page: low traffic (fewer than 50000 events over 1h); it neither fires nor resolves" {
			t.Errorf("page alert card %q", got)
		}
		if got := text(t, ctx, "#tiers tbody tr:first-child td:last-child"); got != "low traffic: 36.0k events over 1h, fewer than 50000" {
			t.Errorf("state of the 1h page tier %q", got)
		}
		if got := text(t, ctx, "#tiers tbody tr:nth-child(2) td:last-child"); got != "ok" {
			t.Errorf("state of the 6h page tier %q, want ok (216k events)", got)
		}
		screenshot(t, ctx, shots, "slo-low-traffic.png")
	})

	t.Run("grouped slo", func(t *testing.T) {
		open(t, "/slos/edge-availability")
		if n := count(t, ctx, "#groups-table tbody tr"); n != 3 {
			t.Errorf("%d groups, want 3", n)
		}
		if got := text(t, ctx, "#groups-limited"); !strings.Contains(got, "Raise spec.maxGroups") {
			t.Errorf("limited warning %q", got)
		}
		screenshot(t, ctx, shots, "slo-grouped.png")
		// The browser follows the escaped link to the group's page.
		run(t, ctx, "open the worst group", chromedp.Click(chromedp.CSS("#groups-table tbody tr:first-child a"), chromedp.NodeVisible))
		run(t, ctx, "wait for the group page", chromedp.WaitVisible(chromedp.CSS("#group-of")))
		if got := text(t, ctx, "#group-of"); got != "Group cluster=eu, route=/cart of edge-availability" {
			t.Errorf("group line %q", got)
		}
		if got := text(t, ctx, "h1"); !strings.HasPrefix(got, `edge-availability{cluster="eu",route="/cart"}`) {
			t.Errorf("heading %q", got)
		}
		if n := count(t, ctx, "svg.chart polyline"); n == 0 {
			t.Error("the group's charts have no line")
		}
		screenshot(t, ctx, shots, "slo-group.png")
	})

	t.Run("hypotheses", func(t *testing.T) {
		open(t, "/hypotheses")
		if n := count(t, ctx, "section.hypothesis"); n != 4 {
			t.Errorf("%d hypotheses, want 4", n)
		}
		for sel, want := range map[string]string{
			"#h-checkout-steady .verdict":  "fail",
			"#h-search-steady .verdict":    "pass",
			"#h-inventory-steady .verdict": "unknown",
			"#h-canary .verdict":           "unknown",
			// The value beside its reference, under the probe's row.
			"#h-search-steady tr.detail":                                                  "value 0.0008 · baseline 0.0008 (1h before the run, frozen) · ±0%",
			`#h-canary tr.detail[data-probe="payments-errors"] .warn`:                     "events 600 · fewer than minEvents 1000: low traffic, not judged on its value",
			`#h-canary tr.has-detail[data-probe="payments-errors"] td:nth-child(6) .warn`: "low traffic",
			"#exp-restart-catalog .badge":                                                 "open",
			"#exp-slow-search .badge":                                                     "closed",
			"#exp-drain-inventory .badge":                                                 "unknown",
		} {
			if got := text(t, ctx, sel); got != want {
				t.Errorf("%s: %q, want %q", sel, got, want)
			}
		}
		if got := text(t, ctx, "#h-canary tr.detail .ok"); !strings.Contains(got, "31 control and 31 experiment samples") || !strings.HasSuffix(got, "decision pass") {
			t.Errorf("the test's line %q", got)
		}
		screenshot(t, ctx, shots, "hypotheses.png")
	})

	t.Run("runs", func(t *testing.T) {
		open(t, "/runs")
		if n := count(t, ctx, "#runs tbody tr"); n != 3 {
			t.Errorf("%d runs, want 3", n)
		}
		if got := text(t, ctx, "#runs tbody tr:first-child a"); got != f.running {
			t.Errorf("first run %q, want the newest %q", got, f.running)
		}
		screenshot(t, ctx, shots, "runs.png")
		open(t, "/runs/"+f.aborted)
		if got := text(t, ctx, "#state"); got != "aborted" {
			t.Errorf("state %q", got)
		}
		if n := count(t, ctx, "svg.strip rect.v-green"); n == 0 {
			t.Error("the verdict strip has no pass cells")
		}
		if n := count(t, ctx, "#timeline tbody tr"); n < 3 {
			t.Errorf("%d timeline rows", n)
		}
		// The baseline column, fourth, beside the value.
		if got := text(t, ctx, "#timeline thead th:nth-child(4)"); got != "BASELINE" && got != "baseline" {
			t.Errorf("fourth timeline column %q, want baseline", got)
		}
		if got := text(t, ctx, "#timeline tbody tr:nth-child(4) td:nth-child(4)"); got != "0.0008" {
			t.Errorf("baseline of search-steady/errors-vs-baseline %q, want 0.0008", got)
		}
		screenshot(t, ctx, shots, "run.png")
	})
}
