package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/html"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/chaos"
	"github.com/slogate/slogate/evaluator/embedded"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/slo"
)

func get(t *testing.T, h http.Handler, path string) (int, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Code, rec.Result().Header, string(body)
}

func TestUIPages(t *testing.T) {
	f := newFixture(t)
	h := f.server.Handler()
	cases := []struct {
		name     string
		path     string
		code     int
		refresh  bool
		contains []string
		count    map[string]int
	}{
		{
			name: "overview", path: "/", code: 200, refresh: true,
			contains: []string{
				`href="/slos/checkout-availability"`, "payments-availability", "search-availability", "inventory-availability", "catalog-uptime",
				"FIRING", "no fresh data", "context deadline exceeded", // the stale SLO's error, in its title
				`class="fill red"`, `class="fill orange"`, `class="fill green"`,
				`href="/api/v1/slos"`, `href="/metrics"`, "Hypotheses &amp; gates",
				"kill-checkout-pod", "drain-inventory", "gates open / closed / unknown",
				// The groups of edge-availability are listed under it.
				"3 groups (1 not followed: maxGroups)", "SLOs · 3 groups",
				`<a href="/slos/edge-availability%7Bcluster=%22eu%22%2Croute=%22%2Fcart%22%7D" title="edge-availability{cluster=&#34;eu&#34;,route=&#34;/cart&#34;}">cluster=eu, route=/cart</a>`,
			},
			// payments' page tier is held off by minEvents: not "ok".
			count: map[string]int{`<tr data-slo=`: 6, `<tr class="group" data-slo=`: 3, `<svg class="bar"`: 9, `class="badge firing page"`: 1, `>low traffic</span>`: 1},
		},
		{
			name: "grouped slo", path: "/slos/edge-availability", code: 200, refresh: true,
			contains: []string{
				`<h2 id="groups">Groups</h2>`, "<b class=\"small\">cluster, route</b><span>grouped by</span>",
				"<b>3</b><span>followed of 4 found · maxGroups 3</span>", "the aggregate and every group must meet the gate",
				`id="groups-limited">1 of the 4 groups found is not followed because of maxGroups (3)`, "Raise spec.maxGroups or group by fewer labels.",
				`href="/slos/edge-availability%7Bcluster=%22us%22%2Croute=%22%2Fcart%22%7D"`,
			},
			count: map[string]int{`<svg class="chart"`: 3},
		},
		{
			// Every character of the name escaped, as a client may send it.
			name: "group slo by its escaped name", path: "/slos/" + escapeAll(`edge-availability{cluster="eu",route="/cart"}`), code: 200, refresh: true,
			contains: []string{
				`Group <b>cluster=eu, route=/cart</b> of <a href="/slos/edge-availability">edge-availability</a>`,
				`href="/api/v1/slos/edge-availability%7Bcluster=%22eu%22%2Croute=%22%2Fcart%22%7D"`,
				"cluster=eu", "route=/cart", "burn rate &gt; 14.4 over 1h and 5m", "SLO window",
			},
			count: map[string]int{`<svg class="chart"`: 3, `id="groups"`: 0},
		},
		{
			name: "group not followed", path: "/slos/" + url.PathEscape(`edge-availability{cluster="us",route="/pay"}`), code: 404,
			contains: []string{"404 Not Found"},
		},
		{
			name: "slo", path: "/slos/checkout-availability", code: 200, refresh: true,
			contains: []string{
				"<svg", "<polyline", "page 14.4", "Error budget remaining, last 24h", "Burn rate over 5m, last 6h",
				"burn rate &gt; 14.4 over 1h and 5m", "SLO window", `href="/api/v1/slos/checkout-availability"`,
				"gate 25%", "kill-checkout-pod", "team=payments",
				`id="forecast"`, "of the budget left at a 30d window from now",
				// html/template escaped the description and a label.
				"Checkout &lt;API&gt; &amp; &#34;cart&#34; requests", "tier=&lt;1&gt;",
			},
			count: map[string]int{`<svg class="chart"`: 3},
		},
		{
			// 36k requests an hour, page.minEvents 50000: the 1h page tier
			// is held off, the 6h one judged.
			name: "slo with a low-traffic tier", path: "/slos/payments-availability", code: 200, refresh: true,
			contains: []string{
				`<span class="warn" title="low traffic: a tier counted fewer events than its minEvents; the alert neither fires nor resolves">low traffic</span>`,
				`<span class="low-traffic">page: low traffic (fewer than 50000 events over 1h); it neither fires nor resolves</span>`,
				`<span class="warn">low traffic: 36.0k events over 1h, fewer than 50000</span>`,
			},
			count: map[string]int{`class="low-traffic"`: 1, `<span class="warn">low traffic:`: 1},
		},
		{
			name: "stale slo", path: "/slos/inventory-availability", code: 200, refresh: true,
			contains: []string{"no fresh data", "context deadline exceeded", ">no data</text>", "no data in this period"},
		},
		{
			name: "unknown slo", path: "/slos/no-such-slo", code: 404,
			contains: []string{"404 Not Found", "no-such-slo", `href="/api/v1/slos/no-such-slo"`},
		},
		{
			name: "hypotheses", path: "/hypotheses", code: 200, refresh: true,
			contains: []string{
				`id="h-checkout-steady"`, `id="exp-kill-checkout-pod"`,
				`class="badge green verdict">pass`, `class="badge red verdict">fail`, `class="badge amber verdict">unknown`,
				`class="badge red">closed`, `class="badge green">open`, `class="badge amber">unknown`,
				"✓ within", "✗ outside", "no data", "upstream unavailable", "between 0 and 0.5",
				"budgetRemaining &gt;= 0.5", `href="/api/v1/experiments"`, "run-active",
				// Relative probes: the value beside what it was compared with.
				`<div class="muted" title="2026-11-27 13:30:00 UTC – 2026-11-27 14:30:00 UTC">value 0.0304 · baseline 0.0004 (1h ending 1h ago, trailing) · &#43;7500%</div>`,
				`value 0.0008 · baseline 0.0008 (1h before the run, frozen) · ±0%`,
				`experiment {cluster=&#34;eu&#34;} 0.0004 · control {cluster=&#34;us&#34;} 0.00216 (at the same time) · −81%`,
				`experiment median 0.0004 · control median 0.00216 (samples every 1m over the last 30m) · −81%`,
				`<div class="ok" title="the test fails when worse by at least minEffect is shown at the level, passes when a worsening that large is ruled out at it, and waits otherwise">mann-whitney: 31 control and 31 experiment samples (at least 10) · p-value of worse 1, of not worse 1.2e-12, level 0.05 · decision pass</div>`,
				// A low-traffic probe: its count, and why it was not judged.
				`<div class="warn">events 600 · fewer than minEvents 1000: low traffic, not judged on its value</div>`,
				"series: all · low traffic: unknown",
			},
			count: map[string]int{`<tr class="detail" data-probe=`: 5, `class="has-detail">`: 5},
		},
		{
			name: "runs", path: "/runs", code: 200, refresh: true,
			contains: []string{f.running, f.passed, f.aborted, `class="badge red">aborted`, `class="badge green">passed`, `class="badge blue">running`, "wrong cluster"},
			count:    map[string]int{`<td class="nowrap mono"><a href="/runs/`: 3},
		},
		{
			name: "runs of an experiment", path: "/runs?experiment=slow-search", code: 200, refresh: true,
			contains: []string{f.running, `href="/api/v1/experiments/slow-search/runs"`},
			count:    map[string]int{`<td class="nowrap mono"><a href="/runs/`: 1},
		},
		{
			name: "finished run", path: "/runs/" + f.passed, code: 200,
			contains: []string{`id="timeline"`, `class="chart strip"`, `class="v-green"`, "search-steady/p99-latency", "budget spent: catalog-uptime", "recovering", "hypotheses hold after the experiment",
				// The baseline column: the frozen baseline beside the value.
				`taken before the run started, or the control group's value">baseline</th>`,
				"<td>search-steady/errors-vs-baseline</td>\n<td class=\"n\">0.0008</td><td class=\"n\">0.0008</td>",
				"(value 0.0008, baseline 0.0008)"},
			count: map[string]int{`<td class="n">0.12</td><td class="n"><span class="muted">–</span></td>`: 3},
		},
		{
			name: "running run", path: "/runs/" + f.running, code: 200, refresh: true,
			contains: []string{`id="state">running`, "run started: gate open"},
		},
		{
			name: "unknown run", path: "/runs/nope", code: 404,
			contains: []string{"404 Not Found", `There is no run &#34;nope&#34;`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := get(t, h, tc.path)
			if code != tc.code {
				t.Fatalf("status %d, want %d:\n%s", code, tc.code, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			for _, s := range tc.contains {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q", s)
				}
			}
			for s, n := range tc.count {
				if got := strings.Count(body, s); got != n {
					t.Errorf("%q occurs %d times, want %d", s, got, n)
				}
			}
			if got := strings.Contains(body, `http-equiv="refresh" content="10"`); got != tc.refresh {
				t.Errorf("auto-refresh %v, want %v", got, tc.refresh)
			}
			if strings.Contains(body, "<script") {
				t.Error("the page has a script; the UI must work without JavaScript")
			}
			checkWellFormed(t, body)
		})
	}
}

// voidElements have no end tag in HTML.
var voidElements = map[string]bool{"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true,
	"img": true, "input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true}

// checkWellFormed is stricter than an HTML parser, which repairs anything:
// every element the templates open must be closed, in order. A template
// that forgets a </td> inside a range would otherwise go unnoticed until a
// browser shows a broken table.
func checkWellFormed(t *testing.T, body string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(body))
	var stack []string
	for {
		switch z.Next() {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatalf("tokenizing: %v", z.Err())
			}
			if len(stack) > 0 {
				t.Errorf("unclosed elements at the end: %v", stack)
			}
			if _, err := html.Parse(strings.NewReader(body)); err != nil {
				t.Errorf("parsing: %v", err)
			}
			return
		case html.StartTagToken:
			name, _ := z.TagName()
			if !voidElements[string(name)] {
				stack = append(stack, string(name))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if len(stack) == 0 || stack[len(stack)-1] != string(name) {
				t.Fatalf("</%s> closes %v", name, stack)
			}
			stack = stack[:len(stack)-1]
		}
	}
}

// escapeAll percent-encodes every byte of s.
func escapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// TestUIGroupsWorstFirst: the groups of a grouped SLO are listed worst
// budget first, on its page and under it on the overview.
func TestUIGroupsWorstFirst(t *testing.T) {
	f := newFixture(t)
	h := f.server.Handler()
	want := []string{
		`edge-availability{cluster="eu",route="/cart"}`, // -100%
		`edge-availability{cluster="us",route="/cart"}`, // 20%
		`edge-availability{cluster="eu",route="/pay"}`,  // 100%
	}
	rowRE := regexp.MustCompile(`<tr (?:class="group" )?data-slo="([^"]*)"`)
	for _, tc := range []struct{ name, path, after string }{
		{"slo page", "/slos/edge-availability", `id="groups-table"`},
		{"overview", "/", `data-slo="edge-availability"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := get(t, h, tc.path)
			i := strings.Index(body, tc.after)
			if code != 200 || i < 0 {
				t.Fatalf("status %d, %q found at %d", code, tc.after, i)
			}
			var got []string
			for _, m := range rowRE.FindAllStringSubmatch(body[i:], -1) {
				name := html.UnescapeString(m[1])
				if !strings.HasPrefix(name, "edge-availability{") {
					break
				}
				got = append(got, name)
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("groups listed %q, want %q", got, want)
			}
		})
	}
}

func TestUIExternalURLPrefixesLinks(t *testing.T) {
	f := newFixture(t)
	srv, err := New(Options{Evaluator: f.ev, Runs: f.runs, Gatherer: prometheus.NewRegistry(), ExternalURL: "https://ops.example.com/slogate/"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, body := get(t, srv.Handler(), "/")
	for _, s := range []string{`href="/slogate/slos/checkout-availability"`, `href="/slogate/api/v1/slos"`, `href="/slogate/hypotheses"`, `href="/slogate/metrics"`} {
		if !strings.Contains(body, s) {
			t.Errorf("body lacks %q", s)
		}
	}
	if regexp.MustCompile(`href="/(slos|runs|hypotheses|api)`).MatchString(body) {
		t.Error("a link ignores the external URL's path")
	}
}

func TestPathEscapesEachSegment(t *testing.T) {
	cases := []struct {
		base  string
		parts []string
		want  string
	}{
		{"", nil, "/"},
		{"", []string{"slos", "a/b c?d"}, "/slos/a%2Fb%20c%3Fd"},
		{"/pre", []string{"runs", "x"}, "/pre/runs/x"},
		{"/pre", nil, "/pre"},
	}
	for _, tc := range cases {
		p := &pageData{Base: tc.base}
		if got := p.Path(tc.parts...); got != tc.want {
			t.Errorf("Path(%q) with base %q = %q, want %q", tc.parts, tc.base, got, tc.want)
		}
		// The mux must route the escaped name back to the same SLO name.
		if len(tc.parts) == 2 && tc.base == "" {
			u, _ := url.Parse(p.Path(tc.parts...))
			if u.Path != "/"+tc.parts[0]+"/"+tc.parts[1] {
				t.Errorf("%q decodes to %q", p.Path(tc.parts...), u.Path)
			}
		}
	}
}

func series(start time.Time, step time.Duration, values ...float64) []evaluator.Point {
	out := make([]evaluator.Point, len(values))
	for i, v := range values {
		out[i] = evaluator.Point{At: start.Add(time.Duration(i) * step), Value: evaluator.Num(v)}
	}
	return out
}

func TestLineChart(t *testing.T) {
	nan := math.NaN()
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	thr := []threshold{{Value: 14.4, Label: "page 14.4", Class: "thr-page"}, {Value: 1, Label: "ticket 1", Class: "thr-ticket"}}
	cases := []struct {
		name      string
		chart     lineChart
		polylines int
		contains  []string
		lacks     []string
	}{
		{
			name:      "NaN breaks the line and is shaded, never drawn as zero",
			chart:     lineChart{Title: "burn", Points: series(t0, time.Hour, 0.5, 0.7, nan, nan, 0.4, 0.3), Thresholds: thr, Include: []float64{0}},
			polylines: 2,
			contains:  []string{`class="gap"`, "ticket 1", "page 14.4 (off scale)", "10:00", "15:00 UTC"},
		},
		{
			name:      "an isolated point is a dot",
			chart:     lineChart{Title: "burn", Points: series(t0, time.Hour, nan, 2, nan), Include: []float64{0}},
			polylines: 0,
			contains:  []string{`<circle class="dot"`},
		},
		{
			name:      "all unknown reads no data",
			chart:     lineChart{Title: "burn", Points: series(t0, time.Hour, nan, nan, nan)},
			polylines: 0,
			contains:  []string{">no data</text>"},
			lacks:     []string{"<circle"},
		},
		{
			name:      "thresholds within the data are drawn",
			chart:     lineChart{Title: "burn", Points: series(t0, 5*time.Minute, 20, 30, 25), Thresholds: thr, Include: []float64{0}},
			polylines: 1,
			contains:  []string{"page 14.4</text>", "ticket 1</text>", ">50</text>", ">0</text>"},
			lacks:     []string{"(off scale)"},
		},
		{
			name: "a negative budget extends the axis below zero",
			chart: lineChart{Title: "budget <b>", Points: series(t0, time.Hour, 0.2, -0.3, -1.7), Include: []float64{0}, FixedMax: ptr(1.0),
				Format: func(v float64) string { return fmtPct(evaluator.Num(v), 0) }},
			polylines: 1,
			contains:  []string{">100%</text>", ">-200%</text>", ">0%</text>", "budget &lt;b&gt;"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svg := string(tc.chart.SVG())
			if got := strings.Count(svg, "<polyline"); got != tc.polylines {
				t.Errorf("%d polylines, want %d:\n%s", got, tc.polylines, svg)
			}
			for _, s := range tc.contains {
				if !strings.Contains(svg, s) {
					t.Errorf("svg lacks %q:\n%s", s, svg)
				}
			}
			for _, s := range tc.lacks {
				if strings.Contains(svg, s) {
					t.Errorf("svg has %q", s)
				}
			}
			if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
				t.Errorf("a non-number leaked into the markup:\n%s", svg)
			}
			checkWellFormed(t, svg)
		})
	}
}

func TestBudgetBar(t *testing.T) {
	cases := []struct {
		value    float64
		contains []string
		lacks    []string
	}{
		{0.8, []string{`class="fill green" x="20" y="0" width="64.0"`}, []string{`class="over"`}},
		{0.1, []string{`class="fill orange"`}, nil},
		{-0.5, []string{`class="fill red" x="10.0" y="0" width="10.0"`}, []string{`class="over"`}},
		{-3, []string{`class="fill red" x="0.0" y="0" width="20.0"`, `class="over"`, "-300.00%"}, nil},
		{math.NaN(), []string{"error budget remaining: –"}, []string{`class="fill`}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.value), func(t *testing.T) {
			svg := string(budgetBar(evaluator.Num(tc.value)))
			for _, s := range tc.contains {
				if !strings.Contains(svg, s) {
					t.Errorf("svg lacks %q:\n%s", s, svg)
				}
			}
			for _, s := range tc.lacks {
				if strings.Contains(svg, s) {
					t.Errorf("svg has %q:\n%s", s, svg)
				}
			}
		})
	}
}

func TestFormatting(t *testing.T) {
	durs := map[time.Duration]string{0: "0s", 1500 * time.Millisecond: "2s", 90 * time.Minute: "1h30m", 26*time.Hour + 30*time.Second: "1d2h1m", -time.Second: "0s"}
	for d, want := range durs {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%s) = %q, want %q", d, got, want)
		}
	}
	decimals := map[float64]int{99: 2, 99.9: 2, 99.95: 3, 99.995: 4}
	for obj, want := range decimals {
		if got := sliDecimals(obj); got != want {
			t.Errorf("sliDecimals(%v) = %d, want %d", obj, got, want)
		}
	}
	nice := map[float64]float64{0.7: 1, 1.1: 2, 2.2: 2.5, 14.4: 20, 36: 50, 0: 0}
	for v, want := range nice {
		if got := niceCeil(v); math.Abs(got-want) > 1e-9 {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
	if got := fmtBurn(evaluator.Num(1.004)); got != "1.00" {
		t.Errorf("fmtBurn(1.004) = %q", got)
	}
	if got := fmtBurn(evaluator.Num(math.NaN())); got != "–" {
		t.Errorf("fmtBurn(NaN) = %q", got)
	}
}

func TestVerdictStrip(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	rows := []stripRow{
		{Label: "h/<probe>", Entries: []stripCell{{At: at(0), Verdict: "pass"}, {At: at(30), Verdict: "fail", Title: "value 7 & more"}}},
		{Label: "a-very-long-hypothesis-name/and-a-long-probe", Entries: []stripCell{{At: at(0), Verdict: "unknown"}}},
	}
	svg := string(verdictStrip(rows, []stripMark{{At: at(0), Label: "running"}, {At: at(60), Label: "aborted"}}, at(0), at(60)))
	for _, s := range []string{`class="v-green"`, `class="v-red"`, `class="v-amber"`, "h/&lt;probe&gt;", "value 7 &amp; more",
		"a-very-long-hypothesis-name/and-a…", ">running</text>", ">aborted</text>", "10:01:00 UTC (1m)"} {
		if !strings.Contains(svg, s) {
			t.Errorf("strip lacks %q:\n%s", s, svg)
		}
	}
	checkWellFormed(t, svg)
}

// TestUICalendarSLO: a calendar SLO's page and API say which period the
// budget belongs to and how much of it is left, in the period's time zone;
// a time-slice SLO's, what it counts.
func TestUICalendarSLO(t *testing.T) {
	engine, err := embedded.New(embedded.Options{Storage: fixtureDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	monthly := ratioSLO("payments-monthly", "payments", 99.5, slo.CalendarMonth.Longest())
	monthly.Calendar = &slo.Calendar{Unit: slo.CalendarMonth, Location: berlin}
	ev, err := evaluator.New(evaluator.Options{Querier: engine, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return fixtureEnd }})
	if err != nil {
		t.Fatal(err)
	}
	minutes := ratioSLO("payments-minutes", "payments", 99, 24*time.Hour)
	minutes.Timeslices = &slo.Timeslices{Window: time.Minute, Ratio: true, NoData: slo.SliceSkip}
	if err := ev.SetDefinitions(&slo.Set{SLOs: []*slo.SLO{monthly, minutes}}); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), fixtureEnd)
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	runs, err := chaos.New(chaos.Options{Store: st, Snapshots: func() chaos.Statuses { return ev.Snapshot() }, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Evaluator: ev, Runs: runs, Gatherer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	// 2026-11-27 15:30 UTC: 3 days 7h30m before 1 December, Berlin midnight (23:00 UTC).
	code, _, body := get(t, h, "/slos/payments-monthly")
	for _, want := range []string{`id="period"`, "<b>3d 7h</b>", "left in this month: 2026-11-01 00:00 – 2026-12-01 00:00 Europe/Berlin", "error budget remaining of this month",
		`id="forecast"`, "budget forecast: at the burn rate of the last 1d (", "of the budget left at the end of the period"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("SLO page (%d) lacks %q", code, want)
		}
	}
	code, _, body = get(t, h, "/api/v1/slos/payments-monthly")
	var got struct {
		Window   string
		Period   *evaluator.PeriodStatus
		Forecast *evaluator.ForecastStatus
	}
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
		t.Fatalf("API answer %d %v:\n%.300s", code, err, body)
	}
	want := &evaluator.PeriodStatus{
		Start: time.Date(2026, 10, 31, 23, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC),
		TimeLeft: 286200, Length: 30 * 24 * 3600, TimeZone: "Europe/Berlin",
	}
	if got.Window != "month" || got.Period == nil || !got.Period.Start.Equal(want.Start) || !got.Period.End.Equal(want.End) ||
		got.Period.TimeLeft != want.TimeLeft || got.Period.Length != want.Length || got.Period.TimeZone != want.TimeZone {
		t.Errorf("API: window %q period %+v, want month and %+v", got.Window, got.Period, want)
	}
	if f := got.Forecast; f == nil || f.Window != "1d" || f.Horizon != want.TimeLeft || !f.BudgetAtEnd.Valid() {
		t.Errorf("API: forecast %+v, want one over 1d to the end of the period", f)
	}

	// A time-slice SLO says what it counts.
	code, _, body = get(t, h, "/slos/payments-minutes")
	if want := "objective <b>99%</b> of the <b>1m</b> time slices good (mean of their ratios) over <b>1d</b>"; code != 200 || !strings.Contains(body, want) {
		t.Errorf("time-slice SLO page (%d) lacks %q", code, want)
	}
	code, _, body = get(t, h, "/api/v1/slos/payments-minutes")
	var ts struct{ BudgetingMethod, TimeSliceWindow string }
	if err := json.Unmarshal([]byte(body), &ts); code != 200 || err != nil || ts.BudgetingMethod != "ratioTimeslices" || ts.TimeSliceWindow != "1m" {
		t.Errorf("API: %d %v %+v, want ratioTimeslices of 1m", code, err, ts)
	}
}

// TestProbeDetails: the lines under a probe's row, for the cases the
// fixture does not reach: a frozen baseline with an offset, a test that
// cannot decide or has too few samples, a reference without a value, a
// definition gone, and a guard with enough events.
func TestProbeDetails(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	num := func(v float64) evaluator.Num { return evaluator.Num(v) }
	nan := evaluator.Num(math.NaN())
	baseline := &slo.Probe{Name: "p", Relative: &slo.Relative{Baseline: &slo.BaselineSpec{Window: 2 * time.Hour, Offset: 24 * time.Hour, Step: time.Minute}}}
	test := &slo.Probe{Name: "p", Relative: &slo.Relative{
		Compare: &slo.CompareSpec{Control: `{zone!="a"}`, Experiment: `{zone="a"}`, Window: 30 * time.Minute, Step: 2 * time.Minute},
		Test:    &slo.StatTest{Method: slo.TestMannWhitney}}}
	cases := []struct {
		name  string
		probe evaluator.ProbeStatus
		def   *slo.Probe
		want  []cell
	}{
		{
			name: "frozen baseline with an offset",
			probe: evaluator.ProbeStatus{Value: num(0.016), Baseline: &evaluator.ProbeBaseline{
				Mode: "baseline", Value: num(0.008), From: t0.Add(-26 * time.Hour), To: t0.Add(-24 * time.Hour), Frozen: true}},
			def:  baseline,
			want: []cell{{Text: "value 0.016 · baseline 0.008 (2h ending 1d before the run, frozen) · +100%", Class: "muted", Title: "2026-11-27 08:00:00 UTC – 2026-11-27 10:00:00 UTC"}},
		},
		{
			name: "no baseline: no change",
			probe: evaluator.ProbeStatus{Value: num(0.016), Baseline: &evaluator.ProbeBaseline{
				Mode: "baseline", Value: nan, From: t0.Add(-time.Hour), To: t0}},
			want: []cell{{Text: "value 0.016 · baseline – (last 1h, trailing)", Class: "muted", Title: "2026-11-28 09:00:00 UTC – 2026-11-28 10:00:00 UTC"}},
		},
		{
			name:  "control group, definition gone",
			probe: evaluator.ProbeStatus{Value: num(97.5), Baseline: &evaluator.ProbeBaseline{Mode: "compare", Value: num(100)}},
			want:  []cell{{Text: "experiment 97.5 · control 100 (at the same time) · −2.5%", Class: "muted"}},
		},
		{
			name: "test inconclusive during a run",
			probe: evaluator.ProbeStatus{Value: num(0.21), Outcome: evaluator.OutcomeInconclusive, Baseline: &evaluator.ProbeBaseline{
				Mode: slo.TestMannWhitney, Value: num(0.2), From: t0.Add(-20 * time.Minute), To: t0, Frozen: true,
				Test: &evaluator.TestStatus{ControlSamples: 10, ExperimentSamples: 11, MinSamples: 10, PFail: num(0.31), PPass: num(0.4), Alpha: num(0.0083), Decision: "inconclusive"}}},
			def: test,
			want: []cell{
				{Text: "experiment median 0.21 · control median 0.2 (samples every 2m since the run started, 09:40:00 UTC) · +5.0%", Class: "muted", Title: "2026-11-28 09:40:00 UTC – 2026-11-28 10:00:00 UTC"},
				{Text: "mann-whitney: 10 control and 11 experiment samples (at least 10) · p-value of worse 0.31, of not worse 0.4, level 0.0083 · decision inconclusive", Class: "warn",
					Title: "the test fails when worse by at least minEffect is shown at the level, passes when a worsening that large is ruled out at it, and waits otherwise"},
			},
		},
		{
			name: "test with too few samples",
			probe: evaluator.ProbeStatus{Value: nan, Outcome: evaluator.OutcomeTooFew, Baseline: &evaluator.ProbeBaseline{
				Mode: slo.TestMannWhitney, Value: nan, From: t0.Add(-30 * time.Minute), To: t0.Add(-30 * time.Minute),
				Test: &evaluator.TestStatus{MinSamples: 10, PFail: nan, PPass: nan, Alpha: nan, Decision: "too-few"}}},
			def: test,
			want: []cell{
				{Text: "experiment median – · control median – (samples every 2m over the last 30m)", Class: "muted", Title: "2026-11-28 09:30:00 UTC – 2026-11-28 09:30:00 UTC"},
				{Text: "mann-whitney: 0 control and 0 experiment samples (at least 10) · p-value of worse –, of not worse –, level – · decision too few samples", Class: "warn",
					Title: "the test fails when worse by at least minEffect is shown at the level, passes when a worsening that large is ruled out at it, and waits otherwise"},
			},
		},
		{
			name:  "enough events",
			probe: evaluator.ProbeStatus{Value: num(0.01), Outcome: "value", Events: ptr(num(25000))},
			def:   &slo.Probe{Name: "p", MinEvents: 1000},
			want:  []cell{{Text: "events 25.0k (minEvents 1000)", Class: "muted"}},
		},
		{
			name:  "low traffic, definition gone",
			probe: evaluator.ProbeStatus{Value: nan, Outcome: evaluator.OutcomeLowTraffic, Events: ptr(num(3))},
			want:  []cell{{Text: "events 3 · low traffic, not judged on its value", Class: "warn"}},
		},
		{
			name:  "fixed tolerance, no guard",
			probe: evaluator.ProbeStatus{Value: num(0.01), Outcome: "value"},
			def:   &slo.Probe{Name: "p"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := probeDetails(tc.probe, tc.def)
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Errorf("details\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestRunTimelineBaseline: the baseline column shows only for runs with a
// relative probe, the value beside it as precisely as the baseline.
func TestRunTimelineBaseline(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	entry := func(v float64, baseline *float64) store.TimelineEntry {
		return store.TimelineEntry{At: t0, Hypothesis: "h", Probe: "p", Value: &v, Baseline: baseline, Verdict: "fail"}
	}
	plain := runView(&store.Run{ID: "r", Experiment: "e", StartedAt: t0, Timeline: []store.TimelineEntry{entry(0.0304, nil)}}, t0)
	if plain.HasBaseline || plain.Timeline[0].Value != "0.03" || plain.Timeline[0].Baseline != "" {
		t.Errorf("without a baseline: column %v, row %+v", plain.HasBaseline, plain.Timeline[0])
	}
	rel := runView(&store.Run{ID: "r", Experiment: "e", StartedAt: t0, Timeline: []store.TimelineEntry{entry(0.0304, ptr(0.0004)), entry(0.5, nil)}}, t0)
	if !rel.HasBaseline || rel.Timeline[0].Value != "0.0304" || rel.Timeline[0].Baseline != "0.0004" || rel.Timeline[1].Baseline != "" {
		t.Errorf("with a baseline: column %v, rows %+v", rel.HasBaseline, rel.Timeline)
	}
}

func TestGatePolicyMinEvents(t *testing.T) {
	g := slo.GatePolicy{MinBudgetRemaining: ptr(0.25), MinEvents: 1000}
	if got, want := gatePolicy(g), "budget remaining ≥ 25.0%, each judged only on at least 1000 events over its window (fewer: unknown)"; got != want {
		t.Errorf("gatePolicy = %q, want %q", got, want)
	}
	g.OnLowTraffic = slo.PolicyPass
	if got := gatePolicy(g); !strings.HasSuffix(got, "(fewer: pass)") {
		t.Errorf("gatePolicy = %q, want onLowTraffic pass", got)
	}
}
