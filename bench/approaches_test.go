package bench

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/rules"
	"github.com/slogate/slogate/slo"
)

// cycle is the evaluation interval compared: slogate's default
// evaluation.interval and the rule groups' interval.
const cycle = 30 * time.Second

// benchSLOs are n SLOs like the ones of the reference measurement:
// availability of svc-i over 30 days, errors are 5xx responses, both
// alert tiers on (the rule styles generate alerting rules from them).
func benchSLOs(n int) *slo.Set {
	set := &slo.Set{}
	for i := range n {
		job := jobName(i)
		set.SLOs = append(set.SLOs, &slo.SLO{
			Name: job + "-availability", Service: job, Objective: 99.9, Window: 30 * 24 * time.Hour,
			Indicator: slo.Indicator{Ratio: &slo.RatioIndicator{
				Errors: fmt.Sprintf(`sum(rate(http_requests_total{job=%q,code=~"5.."}[{{.window}}]))`, job),
				Total:  fmt.Sprintf(`sum(rate(http_requests_total{job=%q}[{{.window}}]))`, job),
			}},
			Alerting: slo.Alerting{Enabled: true, Page: slo.AlertTier{Enabled: true}, Ticket: slo.AlertTier{Enabled: true}},
		})
	}
	return set
}

func jobName(i int) string { return fmt.Sprintf("svc-%d", i) }

// The SLO definitions BenchmarkPrometheusCost can measure (DefinitionsEnv).
const (
	// defsGrouped: benchSLOs, SLOs that differ only in their job label,
	// which the evaluator asks in one grouped query per template.
	defsGrouped = "grouped"
	// defsHeterogeneous: heterogeneousSLOs, SLOs that share nothing.
	defsHeterogeneous = "heterogeneous"
)

// The query shapes of heterogeneous SLOs, by i % 4.
const (
	kindPlain    = iota // sum(rate(m{code=~"5.."}[w])) over sum(rate(m[w]))
	kindOrVector        // the errors `or vector(0)`
	kindLatency         // a classic histogram: requests within 0.3 s
	kindBy              // a by clause summed again
)

func heterogeneousKind(i int) int { return i % 4 }

// requestsMetric and latencyMetric are the metric names of heterogeneous
// SLO i: every SLO has its own.
func requestsMetric(i int) string { return fmt.Sprintf("svc_%d_requests_total", i) }
func latencyMetric(i int) string  { return fmt.Sprintf("svc_%d_request_duration_seconds", i) }

// latencyThresholdLe is the bucket bound of the latency SLOs' threshold,
// 0.3 s, as the history writes it.
const latencyThresholdLe = "0.3"

// heterogeneousSLOs are n SLOs of the same traffic as benchSLOs's (the
// same events, 30 days, 99.9 %, both alert tiers) that no two share a
// query: each reads a metric of its own (so batching by label values,
// which needs the same metric, groups none of them), in one of four
// shapes by turn: the plain ratio of 5xx to all requests, the same with
// the errors `or vector(0)`, a classic-histogram latency indicator (good:
// the 0.3 s bucket; its bad events are the 5xx requests of the others),
// and the errors and total summed by code and instance and summed again.
func heterogeneousSLOs(n int) *slo.Set {
	set := &slo.Set{}
	for i := range n {
		job, m := jobName(i), requestsMetric(i)
		o := &slo.SLO{
			Name: job + "-availability", Service: job, Objective: 99.9, Window: 30 * 24 * time.Hour,
			Alerting: slo.Alerting{Enabled: true, Page: slo.AlertTier{Enabled: true}, Ticket: slo.AlertTier{Enabled: true}},
		}
		switch heterogeneousKind(i) {
		case kindPlain:
			o.Indicator.Ratio = &slo.RatioIndicator{
				Errors: `sum(rate(` + m + `{code=~"5.."}[{{.window}}]))`,
				Total:  `sum(rate(` + m + `[{{.window}}]))`,
			}
		case kindOrVector:
			o.Indicator.Ratio = &slo.RatioIndicator{
				Errors: `sum(rate(` + m + `{code=~"5.."}[{{.window}}])) or vector(0)`,
				Total:  `sum(rate(` + m + `[{{.window}}]))`,
			}
		case kindLatency:
			o.Name = job + "-latency"
			o.Indicator.Latency = &slo.LatencyIndicator{Histogram: latencyMetric(i), Threshold: 0.3}
		case kindBy:
			o.Indicator.Ratio = &slo.RatioIndicator{
				Errors: `sum(sum by (code) (rate(` + m + `{code=~"5.."}[{{.window}}])))`,
				Total:  `sum(sum by (instance) (rate(` + m + `[{{.window}}])))`,
			}
		}
		set.SLOs = append(set.SLOs, o)
	}
	return set
}

// definitionSet returns n SLOs of the definitions defs.
func definitionSet(tb testing.TB, defs string, n int) *slo.Set {
	tb.Helper()
	switch defs {
	case defsGrouped:
		return benchSLOs(n)
	case defsHeterogeneous:
		return heterogeneousSLOs(n)
	}
	tb.Fatalf("bench: unknown SLO definitions %q", defs)
	return nil
}

// naiveQueries are what an evaluator without slice buffers asks every
// cycle: the event templates of every SLO (errors or good, and total)
// filled with each of its windows (5m … 30d), 16 instant queries per SLO.
func naiveQueries(set *slo.Set) ([]query, error) {
	var out []query
	for _, o := range set.SLOs {
		ev, err := o.Events()
		if err != nil {
			return nil, err
		}
		for _, w := range slo.Windows(o.Window) {
			for _, t := range ev.Templates() {
				out = append(out, query{expr: slo.FillWindow(t, w), wantData: true})
			}
		}
	}
	return out, nil
}

// schedule is a set of rule expressions that Prometheus evaluates once
// every `every` cycles.
type schedule struct {
	every   int
	queries []query
}

// ruleSchedules are the expressions of every recording and alerting rule
// that `slogate rules --style style` generates for set, grouped by how often
// their group runs: evaluating a rule costs Prometheus the instant query of
// its expression (plus appending the result, which this leaves out).
// Groups without an interval run at the global evaluation interval, cycle.
func ruleSchedules(set *slo.Set, style rules.Style) ([]schedule, error) {
	groups, err := rules.Generate(set, rules.Options{Style: style})
	if err != nil {
		return nil, err
	}
	byEvery := map[int][]query{}
	for _, g := range groups.Groups {
		interval := time.Duration(g.Interval)
		if interval == 0 {
			interval = cycle
		}
		if interval%cycle != 0 {
			return nil, fmt.Errorf("group %s runs every %s, not a multiple of %s", g.Name, model.Duration(interval), model.Duration(cycle))
		}
		every := int(interval / cycle)
		for _, r := range g.Rules {
			byEvery[every] = append(byEvery[every], query{expr: r.Expr, wantData: readsData(r.Record)})
		}
	}
	var out []schedule
	for every, qs := range byEvery {
		out = append(out, schedule{every: every, queries: qs})
	}
	slices.SortFunc(out, func(a, b schedule) int { return a.every - b.every })
	return out, nil
}

// readsData tells whether a rule's expression must find data in the
// benchmark's TSDB: the window ratios (from the raw counters or from the
// backfilled buckets), the buckets, and the constant objective and budget.
// The budget remaining and the alerts read series that other rules record;
// nothing records them here, so their answers are empty — and about as
// cheap as when they hold one sample per SLO.
func readsData(record string) bool {
	switch {
	case record == "":
		return false // an alert
	case strings.HasPrefix(record, rules.SLIErrorPrefix), record == rules.EventsMetric,
		record == rules.ObjectiveMetric, record == rules.ErrorBudgetMetric:
		return true
	}
	return false
}

// TestQueryBuilders checks the query counts the benchmark's comparison
// rests on, without any server: 16 naive queries per SLO, and for the rule
// styles every rule once, the bucket group every 10 cycles.
func TestQueryBuilders(t *testing.T) {
	set := benchSLOs(3)

	naive, err := naiveQueries(set)
	if err != nil {
		t.Fatal(err)
	}
	if len(naive) != 16*3 {
		t.Fatalf("%d naive queries for 3 SLOs, want 48", len(naive))
	}
	if got, want := naive[len(naive)-1].expr, `sum(rate(http_requests_total{job="svc-2"}[30d]))`; got != want {
		t.Errorf("last naive query %s, want %s", got, want)
	}
	for _, q := range naive {
		if strings.Contains(q.expr, "window") {
			t.Errorf("template not filled: %s", q.expr)
		}
	}

	windows, err := ruleSchedules(set, rules.StyleWindows)
	if err != nil {
		t.Fatal(err)
	}
	// 8 window ratios, objective, budget, budget remaining, 2 alerts.
	if len(windows) != 1 || windows[0].every != 1 || len(windows[0].queries) != 13*3 {
		t.Fatalf("windows schedules %+v, want 39 rules every cycle", summarize(windows))
	}
	if n := countWithData(windows[0].queries); n != 10*3 {
		t.Errorf("%d windows rules read data, want 30", n)
	}

	buckets, err := ruleSchedules(set, rules.StyleBuckets)
	if err != nil {
		t.Fatal(err)
	}
	if len(buckets) != 2 || buckets[0].every != 1 || len(buckets[0].queries) != 13*3 ||
		buckets[1].every != 10 || len(buckets[1].queries) != 2*3 {
		t.Fatalf("bucket schedules %v, want 39 rules every cycle and 6 every 10 cycles", summarize(buckets))
	}
	for _, q := range buckets[0].queries {
		if strings.Contains(q.expr, "http_requests_total") {
			t.Errorf("a window rule of the bucket style reads the raw counters: %s", q.expr)
		}
	}
	for _, q := range buckets[1].queries {
		if !strings.Contains(q.expr, "[5m]") || !q.wantData {
			t.Errorf("bucket rule %s: want a 5m rate that must find data", q.expr)
		}
	}
}

func countWithData(qs []query) int {
	n := 0
	for _, q := range qs {
		if q.wantData {
			n++
		}
	}
	return n
}

func summarize(ss []schedule) []string {
	var out []string
	for _, s := range ss {
		out = append(out, fmt.Sprintf("%d queries every %d cycles", len(s.queries), s.every))
	}
	return out
}

// TestHeterogeneousDefinitions checks what the heterogeneous comparison
// rests on, without any server: no two SLOs read the same metric (so no
// two can be grouped by label values), every shape is there, the rule
// styles generate their usual rules for each, and the history has the
// issue's 20 series per SLO whatever the shape.
func TestHeterogeneousDefinitions(t *testing.T) {
	set := heterogeneousSLOs(8)
	owner := map[string]string{}
	kinds := map[string]bool{}
	for _, o := range set.SLOs {
		ev, err := o.Events()
		if err != nil {
			t.Fatal(err)
		}
		kinds[strings.Join(ev.Templates(), " | ")] = true
		for _, tpl := range ev.Templates() {
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(slo.FillWindow(tpl, 2*time.Minute))
			if err != nil {
				t.Fatalf("%s: %v", o.Name, err)
			}
			for _, sel := range parser.ExtractSelectors(expr) {
				for _, m := range sel {
					if m.Name != model.MetricNameLabel {
						continue
					}
					if prev, ok := owner[m.Value]; ok && prev != o.Name {
						t.Errorf("%s and %s both read %s", prev, o.Name, m.Value)
					}
					owner[m.Value] = o.Name
				}
			}
		}
	}
	if len(kinds) != len(set.SLOs) {
		t.Errorf("%d distinct event queries for %d SLOs", len(kinds), len(set.SLOs))
	}
	for _, want := range []string{"or vector(0)", "_bucket", "sum by (code)"} {
		found := false
		for k := range kinds {
			found = found || strings.Contains(k, want)
		}
		if !found {
			t.Errorf("no SLO's queries contain %q: %v", want, kinds)
		}
	}

	windows, err := ruleSchedules(set, rules.StyleWindows)
	if err != nil {
		t.Fatal(err)
	}
	if len(windows) != 1 || len(windows[0].queries) != 13*8 || countWithData(windows[0].queries) != 10*8 {
		t.Errorf("windows schedules %v, want 104 rules every cycle, 80 of them reading data", summarize(windows))
	}
	buckets, err := ruleSchedules(set, rules.StyleBuckets)
	if err != nil {
		t.Fatal(err)
	}
	if len(buckets) != 2 || len(buckets[0].queries) != 13*8 || len(buckets[1].queries) != 2*8 {
		t.Errorf("bucket schedules %v, want 104 rules every cycle and 16 every 10", summarize(buckets))
	}
	if _, err := bucketSeriesLabels(set); err != nil {
		t.Error(err)
	}

	sh := shapes["issue"]
	for i := range set.SLOs {
		n := 0
		for _, inst := range historySeries(defsHeterogeneous, sh, i) {
			n += len(inst)
		}
		if n != 20 {
			t.Errorf("SLO %d (kind %d): %d series, want 20", i, heterogeneousKind(i), n)
		}
	}
}
