package backtest_test

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/backtest"
	"github.com/slogate/slogate/evaluator/promapi"
	"github.com/slogate/slogate/internal/synth"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

const shopDefs = `
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: shop-availability}
spec:
  service: shop
  objective: 99.9
  window: 30d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="shop",code=~"5.."}[{{.window}}]))
      total: sum(rate(http_requests_total{job="shop"}[{{.window}}]))
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: shop-steady}
spec:
  probes:
    - name: error-rate
      query: sum(rate(http_requests_total{job="shop",code="500"}[5m])) / sum(rate(http_requests_total{job="shop"}[5m]))
      tolerance: "< 0.01"
  failAfter: 2
  passAfter: 2
  onNoData: unknown
`

// TestBacktestPrometheus backtests a week of synthetic history in a real
// Prometheus. The shop fails 0.2 % of requests, 20 times more for an hour
// every third day (synth.History's incidents), and was not scraped for 20
// minutes five days back. Against a 99.9 % objective the base rate burns
// the budget 2×, so the slow ticket tier fires throughout; each incident
// burns 40×, so the page fires once the 1h window is a third into it and
// resolves once the 30m window of the 6h tier is nearly clean; the
// steady-state hypothesis fails and recovers with each incident and is
// unknown during the scrape gap.
func TestBacktestPrometheus(t *testing.T) {
	// Prometheus keeps recent history only: the one reading of the wall
	// clock. The history, and so every expectation, is relative to its end.
	tr := synth.History(time.Now().Truncate(time.Hour).Add(-2*time.Hour+30*time.Minute), time.Minute)
	var om bytes.Buffer
	if err := tr.WriteOpenMetrics(&om, tr.End.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	testenv.Backfill(t, dataDir, &om)
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir})
	q, err := promapi.New(promapi.Options{URL: prom.URL(), Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "shop.yaml")
	if err := os.WriteFile(path, []byte(shopDefs), 0o644); err != nil {
		t.Fatal(err)
	}
	set, diags := slo.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}

	from, to := tr.End.Add(-7*24*time.Hour), tr.End
	began := time.Now()
	rep, err := backtest.Run(context.Background(), set, backtest.Options{Querier: q, From: from, To: to, Step: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backtested 7 days at 5m steps in %s", time.Since(began).Round(time.Millisecond))
	var text bytes.Buffer
	if err := backtest.WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", text.String())

	// The incidents whose page alert has the time to fire and resolve
	// inside the backtest.
	var incidents []time.Time
	for _, inc := range tr.Incidents() {
		if !inc.From.Before(from.Add(time.Hour)) && !inc.From.Add(3*time.Hour).After(to) {
			incidents = append(incidents, inc.From)
		}
	}
	if len(incidents) < 2 {
		t.Fatalf("only %d incidents in the week: %v", len(incidents), incidents)
	}

	s := rep.SLOs[0]
	var pages []backtest.Alert
	for _, a := range s.Alerts {
		switch a.Severity {
		case slo.SeverityPage:
			pages = append(pages, a)
		case slo.SeverityTicket:
			if !a.FiredAt.Equal(rep.From) || a.ResolvedAt != nil {
				t.Errorf("ticket fired %s resolved %v: want it firing from the start to the end (the base rate burns 2×)", a.FiredAt, a.ResolvedAt)
			}
		}
	}
	for _, inc := range incidents {
		found := false
		for _, p := range pages {
			if p.FiredAt.Before(inc) || !p.FiredAt.Before(inc.Add(time.Hour)) {
				continue
			}
			found = true
			if p.FiredAt.Before(inc.Add(10*time.Minute)) || p.FiredAt.After(inc.Add(45*time.Minute)) {
				t.Errorf("incident %s: page fired at %s, want 10 to 45 minutes in", inc.Format(time.RFC3339), p.FiredAt.Format(time.RFC3339))
			}
			if p.ResolvedAt == nil || p.ResolvedAt.Before(inc.Add(time.Hour)) || p.ResolvedAt.After(inc.Add(90*time.Minute)) {
				t.Errorf("incident %s: page resolved at %v, want within 30 minutes after its end", inc.Format(time.RFC3339), p.ResolvedAt)
			}
		}
		if !found {
			t.Errorf("incident %s: no page alert fired", inc.Format(time.RFC3339))
		}
	}
	for _, p := range pages {
		if !slices.ContainsFunc(tr.Incidents(), func(inc synth.Span) bool { return !p.FiredAt.Before(inc.From) && p.FiredAt.Before(inc.To) }) {
			t.Errorf("page alert at %s, outside any incident", p.FiredAt.Format(time.RFC3339))
		}
	}

	direct := prom.QueryAt(t, `sum(rate(http_requests_total{job="shop",code=~"5.."}[30d])) / sum(rate(http_requests_total{job="shop"}[30d]))`, rep.To)
	if want, got := 1-direct/0.001, float64(s.BudgetRemainingAtEnd); math.Abs(got-want) > 1e-9*math.Abs(want) {
		t.Errorf("budget remaining at the end %g, from a direct query %g", got, want)
	}

	// The 5m error rate is over 1 % from the incident's start (its window
	// holds the incident's first minute, which alone lifts it to 1.15 %) to
	// its end (three minutes of the incident left in it): with failAfter
	// and passAfter 2, fail 5 minutes in and pass 10 minutes after the end.
	changes := rep.Hypotheses[0].Changes
	has := func(at time.Time, from, to slo.Verdict) bool {
		for _, c := range changes {
			if c.At.Equal(at) && c.From == from && c.To == to {
				return true
			}
		}
		return false
	}
	for _, inc := range incidents {
		if !has(inc.Add(5*time.Minute), slo.Pass, slo.Fail) || !has(inc.Add(70*time.Minute), slo.Fail, slo.Pass) {
			t.Errorf("incident %s: want pass → fail 5 minutes in and fail → pass 70 minutes in; changes %+v", inc.Format(time.RFC3339), changes)
		}
	}
	if !has(tr.GapFrom.Add(5*time.Minute), slo.Pass, slo.Unknown) {
		t.Errorf("scrape gap from %s: want pass → unknown 5 minutes in; changes %+v", tr.GapFrom.Format(time.RFC3339), changes)
	}
	if want := 1 + 2*len(incidents) + 2; len(changes) < want {
		t.Errorf("%d verdict changes, want at least %d (first pass, two per incident, in and out of the gap)", len(changes), want)
	}
}

// TestBacktestCalendarPrometheus backtests a monthly SLO in New York time
// over two weeks that cross the start of November (and the end of daylight
// saving on its first day): the budget at the end is the November's so
// far, not the last 31 days', within 0.1 % of the generator's truth. The
// dates are fixed: Prometheus keeps data by its own newest sample.
func TestBacktestCalendarPrometheus(t *testing.T) {
	end := time.Date(2026, 11, 10, 5, 0, 0, 0, time.UTC)
	tr := synth.History(end, time.Minute)
	var om bytes.Buffer
	if err := tr.WriteOpenMetrics(&om, tr.End.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	testenv.Backfill(t, dataDir, &om)
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir})
	q, err := promapi.New(promapi.Options{URL: prom.URL(), Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	set, diags := slo.LoadBytes("monthly.yaml", []byte(`
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: shop-monthly}
spec:
  service: shop
  objective: 99.5
  window: {calendar: month, timeZone: America/New_York}
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="shop",code=~"5.."}[{{.window}}]))
      total: sum(rate(http_requests_total{job="shop"}[{{.window}}]))
`))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	rep, err := backtest.Run(context.Background(), set, backtest.Options{Querier: q, From: end.Add(-14 * 24 * time.Hour), To: end, Step: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	november := time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC) // midnight in New York, still EDT
	truth := tr.TruthBetween(november, end)
	want := 1 - truth.Errors/truth.Total/0.005
	got := float64(rep.SLOs[0].BudgetRemainingAtEnd)
	if math.Abs(got-want) > 1e-3*math.Max(1, math.Abs(want)) {
		t.Errorf("budget remaining at the end %g, the generator's truth since the start of November %g", got, want)
	}
	rolling := 1 - tr.TruthBetween(end.Add(-31*24*time.Hour), end).Errors/tr.TruthBetween(end.Add(-31*24*time.Hour), end).Total/0.005
	if math.Abs(got-rolling) < 1e-3 {
		t.Errorf("budget remaining %g is the last 31 days' (%g): the period was not followed", got, rolling)
	}
}

// TestBacktestTimeslicesPrometheus replays time-slice SLOs over the last
// hours of a day of minutes whose truth is known exactly (synth.Minutes:
// slices on the target, 10 without data): the budget at the end is the
// share of bad minutes of the day, counted from the events by step (one
// range query per SLO, not a subquery over the day at every step).
func TestBacktestTimeslicesPrometheus(t *testing.T) {
	start := time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC)
	m := synth.Minutes{Start: start, End: start.Add(27 * time.Hour), GapAt: start.Add(20 * time.Hour)}
	var om bytes.Buffer
	if err := m.WriteOpenMetrics(&om); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	testenv.Backfill(t, dataDir, &om)
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir})
	q, err := promapi.New(promapi.Options{URL: prom.URL(), Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	set, diags := slo.LoadBytes("minutes.yaml", []byte(`
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: good-minutes}
spec:
  service: shop
  objective: 90
  window: 1d
  timeslices: {window: 1m, target: 99%}
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="shop",code="500"}[{{.window}}]))
      total: sum(rate(http_requests_total{job="shop"}[{{.window}}]))
---
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: mean-minutes}
spec:
  service: shop
  objective: 90
  window: 1d
  timeslices: {window: 1m, method: ratioTimeslices}
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="shop",code="500"}[{{.window}}]))
      total: sum(rate(http_requests_total{job="shop"}[{{.window}}]))
`))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	end := start.Add(26*time.Hour + 30*time.Minute)
	rep, err := backtest.Run(context.Background(), set, backtest.Options{Querier: q, From: end.Add(-3 * time.Hour), To: end, Step: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	truth := m.Truth(end.Add(-24*time.Hour), end)
	want := map[string]float64{
		"good-minutes": 1 - float64(truth.Bad)/float64(truth.Counted)/0.1,
		"mean-minutes": 1 - (float64(truth.Counted)-truth.GoodSum)/float64(truth.Counted)/0.1,
	}
	for _, s := range rep.SLOs {
		if got := float64(s.BudgetRemainingAtEnd); math.Abs(got-want[s.Name]) > 1e-9 {
			t.Errorf("%s: budget remaining at the end %v, want %v (%d bad of %d minutes)", s.Name, got, want[s.Name], truth.Bad, truth.Counted)
		}
	}
}

const quietDefs = `
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: quiet-availability}
spec:
  service: quiet
  objective: 99.9
  window: 30d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="quiet",code="500"}[{{.window}}]))
      total: sum(rate(http_requests_total{job="quiet"}[{{.window}}]))
  alerting:
    minEvents: 100
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: quiet-steady}
spec:
  probes:
    - name: error-ratio
      query: sum(rate(http_requests_total{job="quiet",code="500"}[5m])) / sum(rate(http_requests_total{job="quiet"}[5m]))
      tolerance: "< 0.01"
      events: sum(increase(http_requests_total{job="quiet"}[5m]))
      minEvents: 20
  failAfter: 1
  passAfter: 1
`

// quietRequests are the requests (ok, failed) of the quiet service in the
// minute ending at minute m of its history (m minutes after its start):
// 30 a minute without errors, except a night of three hours without any
// request but 5 in its middle hour, 3 failed ones at minutes 20 to 22 of
// that hour, and a 20-minute outage in the afternoon failing every request.
func quietRequests(m int, night, outage int) (ok, failed float64) {
	switch {
	case m >= night && m < night+180:
		switch m - night - 60 {
		case 20, 21, 22:
			return 0, 1
		case 40, 50:
			return 1, 0
		}
		return 0, 0
	case m >= outage && m < outage+20:
		return 0, 30
	}
	return 30, 0
}

// TestBacktestLowTrafficPrometheus backtests a day of a service whose
// night is quiet: 5 requests in an hour, 3 of them failed. That is an
// error ratio of 60 %, a burn rate of 600 over the hour, and without a
// guard it pages; with alerting.minEvents 100 the hour's 5 events are too
// few to judge and it does not, while the afternoon's outage at full
// traffic pages with the guard as without. The report says the guard
// removed 1 page, when it would have fired, and on how few events. The
// hypothesis' probe, guarded by 20 events in 5 minutes, fails in the night
// without its guard only.
func TestBacktestLowTrafficPrometheus(t *testing.T) {
	// Prometheus keeps recent history only: the one reading of the wall
	// clock. The history, and so every expectation, is relative to its end,
	// and the service has no daily pattern, so no hour is special.
	end := time.Now().Truncate(time.Hour).Add(-2*time.Hour + 30*time.Minute)
	start := end.Add(-49 * time.Hour)
	minutes := int(end.Sub(start) / time.Minute)
	night, outage := minutes-16*60, minutes-4*60 // 16 and 4 hours before the end
	nightHour := start.Add(time.Duration(night+60) * time.Minute)
	outageAt := start.Add(time.Duration(outage) * time.Minute)

	om := testenv.NewOMWriter(t)
	om.Family("http_requests_total", testenv.OMCounter)
	for _, code := range []string{"200", "500"} {
		total := 0.0
		for m := 0; m <= minutes; m++ {
			ok, failed := quietRequests(m, night, outage)
			if code == "200" {
				total += ok
			} else {
				total += failed
			}
			om.Sample(map[string]string{"job": "quiet", "code": code}, start.Add(time.Duration(m)*time.Minute), total)
		}
	}
	dataDir := t.TempDir()
	testenv.BackfillFile(t, dataDir, om.Close())
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir})
	q, err := promapi.New(promapi.Options{URL: prom.URL(), Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	set, diags := slo.LoadBytes("quiet.yaml", []byte(quietDefs))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	rep, err := backtest.Run(context.Background(), set, backtest.Options{Querier: q, From: end.Add(-24 * time.Hour), To: end, Step: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := backtest.WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", text.String())

	s := rep.SLOs[0]
	var pages []backtest.Alert
	for _, a := range s.Alerts {
		if a.Severity == slo.SeverityPage {
			pages = append(pages, a)
		}
	}
	if len(pages) != 1 || pages[0].FiredAt.Before(outageAt) || pages[0].FiredAt.After(outageAt.Add(10*time.Minute)) {
		t.Errorf("pages %+v, want one, for the outage at %s", pages, outageAt.Format(time.RFC3339))
	}
	l := s.LowTraffic
	if l == nil {
		t.Fatal("no lowTraffic in the report")
	}
	if l.MinEvents[slo.SeverityPage] != 100 || l.MinEvents[slo.SeverityTicket] != 100 {
		t.Errorf("minEvents %v, want 100 for both severities", l.MinEvents)
	}
	if l.AlertsRemoved != 1 || l.PagesRemoved != 1 || len(l.Removed) != 1 {
		t.Fatalf("removed %d alerts (%d pages): %+v; want the night's page", l.AlertsRemoved, l.PagesRemoved, l.Removed)
	}
	r := l.Removed[0]
	// The first failure is at minute 20 of the hour: the step at that
	// minute sees it.
	if r.Severity != slo.SeverityPage || !r.FiredAt.Equal(nightHour.Add(20*time.Minute)) || r.Window != "1h" ||
		!(float64(r.Events) > 0 && float64(r.Events) < 10) {
		t.Errorf("removed %+v, want the page at %s on the few events of the night's hour", r, nightHour.Add(20*time.Minute).Format(time.RFC3339))
	}
	if want := "minEvents 100 removed 1 alert (1 page) on low traffic"; !strings.Contains(text.String(), want) {
		t.Errorf("text report lacks %q", want)
	}

	h := rep.Hypotheses[0]
	for _, c := range h.Changes {
		if c.To == slo.Fail && !c.At.Before(nightHour.Add(-time.Hour)) && c.At.Before(nightHour.Add(2*time.Hour)) {
			t.Errorf("hypothesis fails in the night with its guard: %+v", c)
		}
	}
	if h.LowTraffic == nil || h.LowTraffic.FailsRemoved != 1 {
		t.Errorf("hypothesis lowTraffic %+v, want 1 change to fail removed (the night's)", h.LowTraffic)
	}
	failedAtOutage := false
	for _, c := range h.Changes {
		failedAtOutage = failedAtOutage || c.To == slo.Fail && !c.At.Before(outageAt) && c.At.Before(outageAt.Add(10*time.Minute))
	}
	if !failedAtOutage {
		t.Errorf("hypothesis did not fail at the outage at %s: %+v", outageAt.Format(time.RFC3339), h.Changes)
	}
}
