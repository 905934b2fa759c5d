package rules_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/promapi"
	"github.com/slogate/slogate/internal/synth"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/rules"
	"github.com/slogate/slogate/slo"
)

// historyDefs are SLOs of every indicator kind over the synthetic shop. A
// label value with quotes and a backslash checks the escaping end to end.
const historyDefs = `
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: availability, labels: {team: 'shop "core" \ ops'}}
spec:
  service: shop
  objective: 99.5
  window: 30d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="shop",code=~"5.."}[{{.window}}]))
      total: sum(rate(http_requests_total{job="shop"}[{{.window}}]))
---
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: availability-good}
spec:
  service: shop
  objective: 99.5
  window: 30d
  indicator:
    ratio:
      good: sum(rate(http_requests_total{job="shop",code!~"5.."}[{{.window}}]))
      total: sum(rate(http_requests_total{job="shop"}[{{.window}}]))
---
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: latency}
spec:
  service: shop
  objective: 98
  window: 30d
  indicator:
    latency: {histogram: 'http_request_duration_seconds{job="shop"}', threshold: 0.3}
---
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: uptime}
spec:
  service: shop
  objective: 99.9
  window: 30d
  indicator:
    raw: {errorRatio: '1 - avg_over_time(service_up{job="shop"}[{{.window}}])'}
`

// history backfills 31 days of synthetic traffic ending between 1.5 and
// 2.5 hours ago at half past an hour (so that the TSDB head does not
// overlap the blocks, and the traffic's hours start on the hour), and
// loads historyDefs.
//
// Prometheus only takes history within its retention and records rules
// at the wall clock's time: this is the one reading of the clock. The
// traffic is relative to its end, and the rules are recorded 1.5 to 2.5
// hours after it, so the windows compared start at the same place of the
// traffic's day whatever the hour (between its 1:00 and 2:00, where
// nothing changes) and hold the same events.
func history(t *testing.T) (tr synth.Traffic, dataDir string, set *slo.Set) {
	t.Helper()
	tr = synth.History(time.Now().Truncate(time.Hour).Add(-2*time.Hour+30*time.Minute), time.Minute)
	var om bytes.Buffer
	if err := tr.WriteOpenMetrics(&om, tr.End.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	dataDir = t.TempDir()
	testenv.Backfill(t, dataDir, &om)
	defs := filepath.Join(t.TempDir(), "slos.yaml")
	if err := os.WriteFile(defs, []byte(historyDefs), 0o644); err != nil {
		t.Fatal(err)
	}
	return tr, dataDir, load(t, defs)
}

func writeRules(t *testing.T, path string, set *slo.Set, style rules.Style) {
	t.Helper()
	out, err := rules.Render(set, rules.Options{Style: style})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// compareWithEvaluator waits until Prometheus has recorded the SLO
// window of every SLO, then evaluates the same definitions with slogate's
// evaluator at the time of that recording, and wants the error ratios of
// the windows that hold data and the budget remaining to agree within
// 0.5 %.
func compareWithEvaluator(t *testing.T, prom *testenv.Prometheus, tr synth.Traffic, set *slo.Set) {
	t.Helper()
	q, err := promapi.New(promapi.Options{URL: prom.URL(), Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range set.SLOs {
		t.Run(o.Name, func(t *testing.T) {
			sel := `{slo="` + o.Name + `"}`
			// The ratio and the budget come from the same group run, so
			// at the run's timestamp both are there.
			prom.WaitForQuery(t, rules.BudgetRemainingMetric+sel, func(float64) bool { return true }, 2*time.Minute)
			ms := prom.Query(t, "timestamp("+rules.BudgetRemainingMetric+sel+")")
			at := time.UnixMilli(int64(math.Round(ms * 1000)))
			st := evaluateAt(t, q, o, at)

			// The history ends 1.5 to 2.5 hours ago: shorter windows are
			// empty on both sides.
			var windows []time.Duration
			for _, w := range []time.Duration{24 * time.Hour, 72 * time.Hour, o.Window} {
				if !tr.Calm(at.Add(-w), 3*time.Minute) {
					// The window starts next to a change of the traffic,
					// where the evaluator's moving-average slices smear a
					// minute. (Only if Prometheus took most of an hour to
					// record the rules.)
					t.Logf("window %s starts at %s, next to a change of the traffic: not compared", w, at.Add(-w).Format(time.RFC3339))
					continue
				}
				windows = append(windows, w)
			}
			checkRecorded(t, o, st, windows, func(q string) float64 { return prom.QueryAt(t, q, at) })
			if l := prom.QueryVectorAt(t, rules.SLIErrorMetric(o.Window)+sel, at); len(l) != 1 || l[0].Metric["service"] != "shop" || l[0].Metric["team"] != o.Labels["team"] {
				t.Errorf("recorded series %v: want one, with the labels service and the SLO's", l)
			}
		})
	}
}

// evaluateAt is the status of o that slogate's evaluator over q gives at
// at, from a cold start (a backfill of every window).
func evaluateAt(t *testing.T, q evaluator.Querier, o *slo.SLO, at time.Time) evaluator.SLOStatus {
	t.Helper()
	ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetDefinitions(&slo.Set{SLOs: []*slo.SLO{o}}); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), at)
	st, ok := ev.SLO(o.Name)
	if !ok || st.Error != "" {
		t.Fatalf("evaluator status %+v", st)
	}
	return st
}

// checkRecorded wants what the rules recorded for o (recorded answers an
// instant query at the evaluation time) to agree with the evaluator's
// status st within 0.5 %: the error ratio of each of windows, and the
// budget remaining. A window without errors would agree with a recorded 0,
// but prove nothing: the history must put errors in every window.
func checkRecorded(t *testing.T, o *slo.SLO, st evaluator.SLOStatus, windows []time.Duration, recorded func(query string) float64) {
	t.Helper()
	sel := `{slo="` + o.Name + `"}`
	for _, w := range windows {
		ws, ok := st.WindowStatus(w)
		if !ok {
			t.Fatalf("evaluator has no window %s", w)
		}
		want := 1 - float64(ws.SLI)
		got := recorded(rules.SLIErrorMetric(w) + sel)
		rel := testenv.RelErr(got, want)
		if got == 0 && want == 0 {
			t.Errorf("window %s holds no errors: they agree, but the history does not exercise the window", w)
		}
		if !(rel <= 0.005) {
			t.Errorf("window %s: recorded error ratio %g, evaluator %g: relative error %.5f > 0.5%%", w, got, want, rel)
		}
		t.Logf("window %s: recorded %.6g, evaluator %.6g, relative error %.2g", w, got, want, rel)
	}
	want := float64(st.BudgetRemaining)
	got := recorded(rules.BudgetRemainingMetric + sel)
	if rel := math.Abs(got-want) / math.Max(math.Abs(want), 1e-3); !(rel <= 0.005) {
		t.Errorf("recorded budget remaining %g, evaluator %g: relative error %.5f > 0.5%%", got, want, rel)
	}
}

// TestWindowsRulesMatchEvaluator loads the windows-style rules into a real
// Prometheus over 30 days of history and checks that what Prometheus
// records agrees with slogate's own evaluation.
func TestWindowsRulesMatchEvaluator(t *testing.T) {
	tr, dataDir, set := history(t)
	path := filepath.Join(t.TempDir(), "slogate.rules.yml")
	writeRules(t, path, set, rules.StyleWindows)
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir, RuleFiles: []string{path}, EvaluationInterval: time.Second})
	compareWithEvaluator(t, prom, tr, set)
}

// TestBucketRulesMatchEvaluator backfills 31 days of 5m event buckets
// (live, they would take 30 days to cover the SLO window), then loads the
// bucket-style rules into a real Prometheus and checks that the windows
// summed from the buckets agree with slogate's evaluation.
//
// The buckets are the bucket rules evaluated by range queries at a 5m step,
// what `promtool tsdb create-blocks-from rules` does for an operator; that
// command asks one range query per rule and 2h block and took 2m50s for
// these four SLOs here, one query per rule takes a few seconds.
func TestBucketRulesMatchEvaluator(t *testing.T) {
	tr, dataDir, set := history(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "slogate.rules.yml")
	if err := os.WriteFile(path, []byte("groups: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir, RuleFiles: []string{path}, EvaluationInterval: time.Second})
	q, err := promapi.New(promapi.Options{URL: prom.URL(), Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}

	groups, err := rules.Generate(set, rules.Options{Style: rules.StyleBuckets})
	if err != nil {
		t.Fatal(err)
	}
	r := evaluator.Range{Start: tr.Start, End: tr.End, Step: 5 * time.Minute}
	om := testenv.NewOMWriter(t)
	om.Family(rules.EventsMetric, testenv.OMGauge)
	buckets := 0
	for _, g := range groups.Groups {
		for _, rule := range g.Rules {
			if rule.Record != rules.EventsMetric {
				continue
			}
			if g.Interval.String() != "5m" {
				t.Fatalf("group %s records buckets every %s, want 5m", g.Name, g.Interval)
			}
			v, err := q.QueryRange(context.Background(), rule.Expr, r)
			if err != nil {
				t.Fatal(err)
			}
			m, ok := v.(model.Matrix)
			if !ok || len(m) != 1 {
				t.Fatalf("bucket rule %s %v: got %v, want one series", rule.Expr, rule.Labels, v)
			}
			for _, p := range m[0].Values {
				om.Sample(rule.Labels, p.Timestamp.Time(), float64(p.Value))
				buckets++
			}
		}
	}
	blocks := filepath.Join(dir, "blocks")
	testenv.BackfillFile(t, blocks, om.Close())
	t.Logf("backfilled %d buckets of %d SLOs", buckets, len(set.SLOs))

	prom.Stop()
	entries, err := os.ReadDir(blocks)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(blocks, e.Name()), filepath.Join(dataDir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	writeRules(t, path, set, rules.StyleBuckets)
	prom.Restart(t)

	// A 5m bucket of the shop's 20 req/s (±60 % over the day) holds
	// about 6000 requests.
	sel := `{slo="availability",type="total"}`
	if n := prom.QueryAt(t, rules.EventsMetric+sel, tr.End.Add(-24*time.Hour)); n < 0.4*20*300 || n > 1.6*20*300 {
		t.Errorf("a total bucket a day ago holds %g requests, want about 6000", n)
	}
	compareWithEvaluator(t, prom, tr, set)
}

// TestMinEventsOnPrometheus loads the windows-style and the Sloth-style
// rules of burstDefs into a real Prometheus scraping a service that then
// answers 5 requests, 4 of them failing: the unguarded SLO pages; the
// guarded one, whose page needs 100 events over its long window, does not,
// though its burn-rate conditions hold; its ticket, which needs 3, fires,
// so the guarded rules did see the burst. The data is the test's own,
// minutes old: no history, no hour of the day. (The bucket style's 5m
// group would first run up to 5 minutes after the start; the PromQL engine
// evaluates it in TestMinEventsMatchEvaluator.)
func TestMinEventsOnPrometheus(t *testing.T) {
	set, diags := slo.LoadBytes("burst.yaml", []byte(burstDefs))
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	target := testenv.NewTarget(t)
	requests := target.Counter("http_requests_total", "code")
	requests.WithLabelValues("200")
	requests.WithLabelValues("500")
	dir := t.TempDir()
	windowsPath, slothPath := filepath.Join(dir, "slogate.rules.yml"), filepath.Join(dir, "sloth.rules.yml")
	writeRules(t, windowsPath, set, rules.StyleWindows)
	writeRules(t, slothPath, set, rules.StyleSloth)
	prom := testenv.StartPrometheus(t, testenv.PromOptions{Targets: []testenv.ScrapeTarget{target.ScrapeTarget("quiet")}, RuleFiles: []string{windowsPath, slothPath}})

	// Both counters scraped at 0 first, so that rate() counts the burst.
	prom.WaitForQuery(t, `count(http_requests_total{job="quiet"} == 0)`, func(v float64) bool { return v == 2 }, time.Minute)
	requests.WithLabelValues("200").Add(1)
	requests.WithLabelValues("500").Add(4)

	for _, style := range []struct {
		name, slo, severity string
	}{
		{"windows", "slo", "severity"},
		{"sloth", "sloth_slo", "sloth_severity"},
	} {
		t.Run(style.name, func(t *testing.T) {
			alerts := func(o, severity, state string) string {
				return `ALERTS{alertname="SLOErrorBudgetBurn"` + state + `,` + style.slo + `="` + o + `",` + style.severity + `="` + severity + `"}`
			}
			const firing = `,alertstate="firing"`
			prom.WaitForQuery(t, alerts("burst-unguarded", "page", firing), func(float64) bool { return true }, 2*time.Minute)
			// Five evaluations of the guarded alerts with the ticket
			// firing: each read the recordings of the burst, those of the
			// page's windows too.
			prom.WaitForQuery(t, "count_over_time("+alerts("burst-guarded", "ticket", firing)+"[1h])", func(v float64) bool { return v >= 5 }, 2*time.Minute)
			if got := prom.QueryVector(t, "count_over_time("+alerts("burst-guarded", "page", "")+"[1h])"); len(got) != 0 {
				t.Errorf("the guarded page was pending or firing: %v", got)
			}
			sel := `{` + style.slo + `="burst-guarded"}`
			if v := prom.QueryVector(t, fmt.Sprintf("(%s > 14.4 * 0.001) and ignoring (sloth_window) (%s > 14.4 * 0.001)", rules.SLIErrorMetric(time.Hour)+sel, rules.SLIErrorMetric(5*time.Minute)+sel)); len(v) != 1 {
				t.Errorf("guarded SLO's page condition without its guard: %v, want it to hold (4 errors in 5 requests)", v)
			}
			if n := prom.Query(t, rules.SLITotalMetric(time.Hour)+sel); !(n >= 4 && n < 10) {
				t.Errorf("%s = %g, want the 5 requests of the burst", rules.SLITotalMetric(time.Hour)+sel, n)
			}
		})
	}
}
