package bench

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

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

// naiveQueries are what an evaluator without slice buffers asks every
// cycle: the errors and total templates of every SLO filled with each of
// its windows (5m … 30d), 16 instant queries per SLO.
func naiveQueries(set *slo.Set) []query {
	var out []query
	for _, o := range set.SLOs {
		for _, w := range slo.Windows(o.Window) {
			out = append(out,
				query{expr: slo.FillWindow(o.Indicator.Ratio.Errors, w), wantData: true},
				query{expr: slo.FillWindow(o.Indicator.Ratio.Total, w), wantData: true})
		}
	}
	return out
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

	naive := naiveQueries(set)
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
