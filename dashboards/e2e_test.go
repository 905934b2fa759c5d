package dashboards

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/internal/testenv"
)

// eventOnly are the metrics whose series exist only after an event the
// end-to-end test cannot cause: a query reading one of them must parse and
// run, but may return nothing. Keep this list short; an event the test can
// cause (a run ending, an alert firing) it causes instead.
var eventOnly = map[string]string{
	// Exported by the Alertmanager notifier once it has sent an alert. The
	// test points slogate at a real Alertmanager and makes an alert fire,
	// but a build without the notifier has no such series.
	"slogate_alerts_sent_total": "needs slogate's Alertmanager notifier and a sent alert",
	// Only drops (queue full, Alertmanager rejecting) create a series; a
	// healthy setup never has one.
	"slogate_alerts_dropped_total": "needs a dropped alert",
	"slogate_alerts_queue_length":  "needs slogate's Alertmanager notifier",
}

// calendarOnly are the metrics slogate exports for calendar SLOs only. The
// SLO of testValues has a rolling window, so their selectors match nothing
// there and its panels show their fallback; every query reading them runs
// again with calendarValues, the demo's calendar SLO, where they must.
var calendarOnly = map[string]string{
	"slogate_slo_period_start_timestamp_seconds": "calendar SLOs only; checked with calendarValues",
	"slogate_slo_period_end_timestamp_seconds":   "calendar SLOs only; checked with calendarValues",
	"slogate_slo_period_remaining_seconds":       "calendar SLOs only; checked with calendarValues",
}

// calendarValues replace testValues for the second run of the queries that
// read calendarOnly metrics.
var calendarValues = map[string]string{"slo": "shop-weekly"}

// groupedValues replace testValues for the second run of the queries that
// read the series of grouped SLOs only (readsGroups): the SLO of testValues
// is not grouped.
var groupedValues = map[string]string{"slo": "shop-by-instance"}

// readsGroups says whether vs selects series that only grouped SLOs have:
// their counts of groups, or the series of their groups (a matcher on
// group that excludes "", the aggregate).
func readsGroups(vs *parser.VectorSelector) bool {
	if vs.Name == "slogate_slo_groups" || vs.Name == "slogate_slo_groups_limited" {
		return true
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == "group" && !m.Matches("") {
			return true
		}
	}
	return false
}

// onlySome are the series that only some SLOs have, and the values of an
// SLO that has them: a query reading them runs a second time with those
// values, where all its selectors must match.
var onlySome = []struct {
	why    string
	reads  func(*parser.VectorSelector) bool
	values map[string]string
}{
	{"calendar SLOs only; checked with calendarValues", func(vs *parser.VectorSelector) bool { _, ok := calendarOnly[vs.Name]; return ok }, calendarValues},
	{"grouped SLOs only; checked with groupedValues", readsGroups, groupedValues},
}

// mayMissWithTestValues says why vs may match nothing with testValues.
func mayMissWithTestValues(vs *parser.VectorSelector) (string, bool) {
	for _, o := range onlySome {
		if o.reads(vs) {
			return o.why, true
		}
	}
	return "", false
}

func mustMatch(*parser.VectorSelector) (string, bool) { return "", false }

// definitions give every dashboard variable the value testValues uses: an
// SLO with a team label, a hypothesis and an experiment. The SLO window is
// 30d so that all the alert windows (up to 3d) are evaluated. shop-weekly
// is the calendar SLO of calendarValues, shop-by-instance the grouped SLO
// of groupedValues (one group: the target's instance). shop-steady has a
// relative probe (slogate_probe_baseline: the 500s against the 200s, both
// counters present from the start, so the gate opens as with the other
// probe) and a guarded one (slogate_probe_events).
const definitions = `apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: shop-availability, labels: {team: web}}
spec:
  service: shop
  objective: 99
  window: 30d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="shop",code="500"}[{{.window}}]))
      total: sum(rate(http_requests_total{job="shop"}[{{.window}}]))
  gate: {minBudgetRemaining: 50%}
---
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: shop-by-instance, labels: {team: web}}
spec:
  service: shop
  objective: 99
  window: 30d
  groupBy: [instance]
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="shop",code="500"}[{{.window}}]))
      total: sum(rate(http_requests_total{job="shop"}[{{.window}}]))
---
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: shop-weekly}
spec:
  service: shop
  objective: 99
  window: {calendar: week}
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="shop",code="500"}[{{.window}}]))
      total: sum(rate(http_requests_total{job="shop"}[{{.window}}]))
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: shop-steady}
spec:
  probes:
    - name: error-rate
      query: sum(rate(http_requests_total{job="shop",code="500"}[5s])) / sum(rate(http_requests_total{job="shop"}[5s]))
      tolerance: "< 0.1"
    - name: errors-vs-successes
      query: sum(rate(http_requests_total{job="shop"}[5s]))
      tolerance: {compare: {control: '{code="200"}', experiment: '{code="500"}'}, maxIncrease: 100%}
    - name: guarded-error-rate
      query: sum(rate(http_requests_total{job="shop",code="500"}[5s])) / sum(rate(http_requests_total{job="shop"}[5s]))
      tolerance: "< 0.1"
      events: sum(increase(http_requests_total{job="shop"}[5s]))
      minEvents: 1
  failAfter: 1
  passAfter: 1
---
apiVersion: slogate.dev/v1
kind: Experiment
metadata: {name: break-shop}
spec:
  hypotheses: [shop-steady]
  slos: [shop-availability]
  recovery: 10s
`

// TestQueriesReturnData runs every dashboard query against a real
// Prometheus that scrapes a real `slogate serve`, and fails for any query
// that returns nothing, or any of whose selectors matches nothing: a panel
// that stays empty against a working slogate is broken, and so is one side
// of an "or" that never answers. It first causes the events that create
// series (a run that ends, a page alert) so that their panels are checked
// too.
func TestQueriesReturnData(t *testing.T) {
	qs := checkedQueries(t, loadDashboards(t))
	if t.Failed() {
		t.FailNow()
	}

	target := testenv.NewTarget(t)
	shop := target.Traffic(200)
	am := testenv.StartAlertmanager(t, testenv.AMOptions{})
	port := testenv.FreePort(t)
	// One Prometheus serves both sides: slogate queries the shop's
	// counters, and the dashboards query slogate's metrics.
	prom := testenv.StartPrometheus(t, testenv.PromOptions{
		ScrapeInterval: time.Second,
		Targets: []testenv.ScrapeTarget{
			target.ScrapeTarget("shop"),
			{Job: "slogate", Addr: fmt.Sprintf("127.0.0.1:%d", port)},
		},
	})
	// No API token: the run API needs none here.
	srv := testenv.StartSlogate(t, testenv.SlogateOptions{
		PrometheusURL: prom.URL(), AlertmanagerURLs: []string{am.URL()}, Definitions: definitions,
		MinRange: 5 * time.Second, Port: port,
	})
	srv.Eventually(60*time.Second, "the gate of break-shop to open", func() error {
		if code, body, err := srv.Try("GET", "/api/v1/experiments/break-shop/gate", nil, false); err != nil || code != http.StatusOK {
			return fmt.Errorf("the gate answers %d %s (%v)", code, body, err)
		}
		return nil
	})

	// A run that ends creates slogate_runs_total.
	var run struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if code := srv.Do("POST", "/api/v1/experiments/break-shop/runs", nil, false, &run); code != http.StatusCreated || run.ID == "" {
		t.Fatalf("start run: status %d: %+v", code, run)
	}
	if code := srv.Do("POST", "/api/v1/runs/"+run.ID+"/abort", nil, false, &run); code != http.StatusOK || run.State != "aborted" {
		t.Fatalf("abort run: status %d: %+v", code, run)
	}

	// Half the requests failing burns a 99 % SLO at 50x: the page alert
	// fires, which the alert panels and annotations need, and the budget
	// forecast runs out, without which there is no exhaustion series.
	shop.SetErrorShare(0.5)
	prom.WaitForQuery(t, `max(slogate_slo_alert_firing{slo="shop-availability", severity="page"})`,
		func(v float64) bool { return v == 1 }, 90*time.Second)

	// The dashboards derive the SLI over the SLO window from the budget and
	// the objective, because PromQL cannot pick each SLO's longest window
	// label; the derivation must agree with slogate's own 30d SLI.
	prom.WaitForQuery(t, `max(abs(1 - (1 - slogate_slo_error_budget_remaining_ratio{group=""}) * (1 - slogate_slo_objective_ratio{group=""})
		- on(slo, service) slogate_slo_sli_ratio{window="30d", group=""}))`,
		func(v float64) bool { return v < 1e-9 }, 30*time.Second)

	// Series appear at slightly different times (a window becomes complete,
	// rate needs two samples), so the queries share a grace period. Queries
	// that may stay empty come last and get one try, so that they do not
	// spend it.
	deadline := time.Now().Add(30 * time.Second)
	var optional []query
	for _, q := range qs {
		if _, ok, _ := eventOnlyReason(q.expr); ok {
			optional = append(optional, q)
			continue
		}
		// A query that reads nothing but such series (a table of groups)
		// has no fallback to answer with testValues: it is checked with
		// the values of an SLO that has them only.
		if !readsOnly(t, q, mayMissWithTestValues) {
			checkReturnsData(t, prom, q, mayMissWithTestValues, deadline)
		}
		for _, o := range onlySome {
			if !readsAny(t, q, o.reads) {
				continue
			}
			oq, err := q.with(o.values)
			if err != nil {
				t.Errorf("%s: %v", q.where, err)
				continue
			}
			checkReturnsData(t, prom, oq, mustMatch, deadline)
		}
	}
	for _, q := range optional {
		checkReturnsData(t, prom, q, mayMissWithTestValues, time.Now())
	}
}

// with returns q with the variables of overrides replaced by their values
// instead of q's.
func (q query) with(overrides map[string]string) (query, error) {
	values := maps.Clone(q.values)
	maps.Copy(values, overrides)
	expr, err := substitute(q.template, values, func(string) bool { return true })
	if err != nil {
		return q, err
	}
	q.where = fmt.Sprintf("%s with %v", q.where, overrides)
	q.expr, q.values = expr, values
	return q, nil
}

// readsAny reports whether a selector of q is one of reads.
func readsAny(t *testing.T, q query, reads func(*parser.VectorSelector) bool) bool {
	t.Helper()
	for _, vs := range selectors(t, q) {
		if reads(vs) {
			return true
		}
	}
	return false
}

// readsOnly reports whether every selector of q may miss.
func readsOnly(t *testing.T, q query, mayMiss func(*parser.VectorSelector) (string, bool)) bool {
	t.Helper()
	for _, vs := range selectors(t, q) {
		if _, ok := mayMiss(vs); !ok {
			return false
		}
	}
	return true
}

// selectors returns the vector selectors of q, failing the test if it does
// not parse (checkedQueries parsed it already).
func selectors(t *testing.T, q query) []*parser.VectorSelector {
	t.Helper()
	parsed, err := parser.NewParser(parser.Options{}).ParseExpr(q.expr)
	if err != nil {
		t.Fatalf("%s: %v", q.where, err)
	}
	var out []*parser.VectorSelector
	parser.Inspect(parsed, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

// checkReturnsData evaluates q until it returns data and each of its
// selectors matches series, or deadline passes. The selectors for which
// mayMiss says why (and those of eventOnly) may match nothing.
func checkReturnsData(t *testing.T, prom *testenv.Prometheus, q query, mayMiss func(*parser.VectorSelector) (string, bool), deadline time.Time) {
	t.Helper()
	expr := q.expr
	if q.label != "" {
		// What label_values(selector, label) offers in the drop-down.
		expr = fmt.Sprintf("count by (%s) (%s)", q.label, q.expr)
	}
	reason, optional, err := eventOnlyReason(expr)
	if err != nil {
		t.Errorf("%s: %v", q.where, err)
		return
	}
	var required []string
	allowed := map[string]string{} // selector → why it may match nothing
	for _, vs := range selectors(t, q) {
		why, ok := mayMiss(vs)
		if !ok {
			why, ok = eventOnly[vs.Name]
		}
		if ok {
			allowed[vs.String()] = why
			continue
		}
		required = append(required, vs.String())
	}
	var queryErr error
	err = testenv.Poll(time.Until(deadline), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		samples, err := prom.TryQuery(ctx, expr, time.Time{})
		if err != nil {
			queryErr = err
			return testenv.Permanent(err)
		}
		if ok, why := hasData(q, samples); !ok {
			return errors.New(why)
		}
		// A query can answer through one side of an "or" while the
		// other, a misspelled label or a series slogate never exports
		// here, stays empty.
		for _, sel := range required {
			samples, err := prom.TryQuery(ctx, "count("+sel+")", time.Time{})
			if err != nil {
				queryErr = err
				return testenv.Permanent(err)
			}
			if len(samples) == 0 {
				return fmt.Errorf("selector %s matches nothing", sel)
			}
		}
		return nil
	})
	switch {
	case queryErr != nil:
		t.Errorf("%s: %v", q.where, queryErr)
	case err == nil && optional:
		t.Logf("%s: event-only query (%s) returned data; its metrics may leave eventOnly", q.where, reason)
	case err != nil && optional:
		t.Logf("%s: no data, allowed: %s", q.where, reason)
	case err != nil:
		t.Errorf("%s: %s: %v", q.where, expr, err)
	case !optional:
		logAllowedMisses(t, prom, q, allowed)
	}
}

// logAllowedMisses logs the selectors of allowed (selector → reason) that
// match nothing, as the event-only queries that return nothing are.
func logAllowedMisses(t *testing.T, prom *testenv.Prometheus, q query, allowed map[string]string) {
	t.Helper()
	for _, sel := range slices.Sorted(maps.Keys(allowed)) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		samples, err := prom.TryQuery(ctx, "count("+sel+")", time.Time{})
		cancel()
		switch {
		case err != nil:
			t.Errorf("%s: selector %s: %v", q.where, sel, err)
		case len(samples) == 0:
			t.Logf("%s: selector %s matches nothing, allowed: %s", q.where, sel, allowed[sel])
		}
	}
}

// hasData says whether samples is a useful answer to q: some samples, and
// for a variable the value the test expects among the label's values.
func hasData(q query, samples []testenv.Sample) (bool, string) {
	if len(samples) == 0 {
		return false, "no data"
	}
	if q.label == "" {
		return true, ""
	}
	want := q.values[q.label]
	var got []string
	for _, s := range samples {
		if s.Metric[q.label] == want {
			return true, ""
		}
		got = append(got, s.Metric[q.label])
	}
	return false, fmt.Sprintf("values %q, want %q among them", got, want)
}

// eventOnlyReason reports whether expr reads a metric of eventOnly.
func eventOnlyReason(expr string) (string, bool, error) {
	parsed, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return "", false, err
	}
	names, err := metricNames(parsed)
	if err != nil {
		return "", false, err
	}
	for _, n := range names {
		if r, ok := eventOnly[n]; ok {
			return r, true, nil
		}
	}
	return "", false, nil
}
