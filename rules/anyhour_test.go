package rules_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/embedded"
	"github.com/slogate/slogate/internal/synth"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/rules"
	"github.com/slogate/slogate/slo"
)

// TestRulesMatchEvaluatorAtAnyHour runs the comparisons of
// TestWindowsRulesMatchEvaluator and TestBucketRulesMatchEvaluator, and the
// evaluator's accuracy against the generated truth (TestAccuracyEmbedded's
// comparison, for every window), over histories ending at every hour of
// the day on 24 consecutive days, and at month ends. It uses the embedded
// engine (Prometheus's PromQL engine as a library, as in `slogate demo`)
// instead of Prometheus servers, so that the rules are evaluated at a time
// the test chooses rather than at the wall clock's, and 26 histories take
// under a minute on two cores under -race rather than 26 Prometheus starts
// and backfills.
//
// synth.History is relative to its end, so every case must give the same
// numbers and verdicts; and every window of every SLO must hold errors:
// a window compared 0 against 0 proves nothing.
func TestRulesMatchEvaluatorAtAnyHour(t *testing.T) {
	defs := filepath.Join(t.TempDir(), "slos.yaml")
	if err := os.WriteFile(defs, []byte(historyDefs), 0o644); err != nil {
		t.Fatal(err)
	}
	set := load(t, defs)

	// Hour h of the h-th day after February (which has 28 days in 2026):
	// every hour of the day, and every day modulo 3 and 5 (the periods of
	// the synthetic incidents and outages, which used to follow epoch
	// days), starting at the month boundary; then the last hour of a
	// 31-day month and of February.
	var ends []time.Time
	for h := range 24 {
		ends = append(ends, time.Date(2026, 3, 1+h, h, 30, 0, 0, time.UTC))
	}
	ends = append(ends, time.Date(2026, 1, 31, 23, 30, 0, 0, time.UTC), time.Date(2026, 2, 28, 23, 30, 0, 0, time.UTC))

	var (
		mu      sync.Mutex
		results = map[time.Time]hourResult{}
	)
	t.Run("end", func(t *testing.T) {
		for _, end := range ends {
			t.Run(end.Format(time.RFC3339), func(t *testing.T) {
				t.Parallel()
				r := compareHistoryAt(t, set, end)
				mu.Lock()
				results[end] = r
				mu.Unlock()
			})
		}
	})
	if t.Failed() {
		return
	}
	first := results[ends[0]]
	for _, end := range ends[1:] {
		r := results[end]
		if !slices.Equal(r.verdicts, first.verdicts) {
			t.Errorf("history ending %s: verdicts %v; ending %s: %v", end.Format(time.RFC3339), r.verdicts, ends[0].Format(time.RFC3339), first.verdicts)
		}
		for i := range r.numbers {
			if testenv.RelErr(r.numbers[i], first.numbers[i]) > 1e-6 {
				t.Errorf("history ending %s: %s = %g; ending %s: %g", end.Format(time.RFC3339), r.names[i], r.numbers[i], ends[0].Format(time.RFC3339), first.numbers[i])
			}
		}
	}
}

// hourResult is what the evaluator says of a history: the error ratio of
// every window and the budget remaining of every SLO (named in names), and
// whether each alert fires.
type hourResult struct {
	names    []string
	numbers  []float64
	verdicts []string
}

// compareHistoryAt checks, over synth.History ending at end and at five
// minutes before its end, that the windows and buckets styles record what
// the evaluator computes for every window, and that the evaluator's error
// ratios match the generated truth within 0.1 %. (The Sloth style records
// Sloth's numbers, compared with Sloth's own rules in TestSlothCompatEvaluate.)
func compareHistoryAt(t *testing.T, set *slo.Set, end time.Time) hourResult {
	tr := synth.History(end, time.Minute)
	// In memory rather than in a TSDB head, which takes seconds per month
	// of samples under -race: 26 of them would add a minute. The engine
	// answers the same (TestMemStorageAnswersLikeTSDB), and the TSDB has
	// tests of its own (TestAccuracyEmbedded, TestEmbeddedMatchesPrometheus).
	history := testenv.NewMemStorage(tr)
	q, err := embedded.New(embedded.Options{Storage: history})
	if err != nil {
		t.Fatal(err)
	}
	// On the 5m grid of the bucket style's recording, so that the buckets
	// cover the windows exactly, and after the day's restart, so that the
	// uptime SLO's 5m window holds downtime.
	at := end.Add(-5 * time.Minute)
	statuses := map[string]evaluator.SLOStatus{}
	var res hourResult
	for _, o := range set.SLOs {
		st := evaluateAt(t, q, o, at)
		statuses[o.Name] = st
		for _, ws := range st.Windows {
			res.names = append(res.names, o.Name+" "+ws.Window+" error ratio")
			res.numbers = append(res.numbers, 1-float64(ws.SLI))
		}
		res.names = append(res.names, o.Name+" budget remaining")
		res.numbers = append(res.numbers, float64(st.BudgetRemaining))
		for _, a := range st.Alerts {
			res.verdicts = append(res.verdicts, fmt.Sprintf("%s %s firing=%v", o.Name, a.Severity, a.Firing))
		}
	}

	for _, style := range []rules.Style{rules.StyleWindows, rules.StyleBuckets} {
		t.Run(string(style), func(t *testing.T) {
			recorded := recordRules(t, history, set, style, tr.Start, at)
			for _, o := range set.SLOs {
				t.Run(o.Name, func(t *testing.T) {
					checkRecorded(t, o, statuses[o.Name], slo.Windows(o.Window), instantAt(t, recorded, at))
				})
			}
		})
	}

	t.Run("truth", func(t *testing.T) {
		truths := map[time.Duration][]synth.Truth{} // by SLO window
		for _, o := range set.SLOs {
			windows := slo.Windows(o.Window)
			if truths[o.Window] == nil {
				truths[o.Window] = tr.Truths(at, windows...)
			}
			st := statuses[o.Name]
			for i, truth := range truths[o.Window] {
				w := windows[i]
				var want float64
				switch o.Name {
				case "availability", "availability-good":
					want = truth.Errors / truth.Total
				case "latency":
					want = truth.Slow[0.3] / truth.Total
				case "uptime":
					want = truth.Down / truth.Duration
				default:
					t.Fatalf("no truth for SLO %s", o.Name)
				}
				if !(want > 0) {
					t.Errorf("%s: window %s holds no errors: the history does not exercise it", o.Name, w)
				}
				ws, _ := st.WindowStatus(w)
				if got := 1 - float64(ws.SLI); !(testenv.RelErr(got, want) <= 1e-3) {
					t.Errorf("%s: window %s: error ratio %g, generated truth %g: relative error %.5f > 0.1%%", o.Name, w, got, want, testenv.RelErr(got, want))
				}
			}
		}
	})
	return res
}

// recordRules evaluates the rules of set in style as a Prometheus that had
// run them all along would have recorded them by at, over the history in
// raw (recordGroups), and returns a querier over the history and the
// recordings.
func recordRules(t *testing.T, raw storage.Queryable, set *slo.Set, style rules.Style, from, at time.Time) evaluator.Querier {
	t.Helper()
	groups, err := rules.Generate(set, rules.Options{Style: style})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := recordGroups(t, raw, groups, from, at)
	return q
}

// recordGroups evaluates groups as a Prometheus that had run them all
// along would have by at, over the history in raw, into a storage of its
// own: the recording rules whose series other rules read over a range (the
// bucket style's 5m event buckets, the Sloth style's 5m ratio) at every
// interval of their group since from (range queries, as
// TestBucketRulesMatchEvaluator backfills them; 1m, Prometheus's default,
// for a group without interval), then every other recording rule once at
// at, group by group and rule by rule, each result stored before the next
// rule reads it, and the alerting rules' expressions at at.
//
// It returns a querier over the history and the recordings, and what the
// rules give at at by series: the recorded ones, and for alerts
// ALERTS{alertname=...} with the alert's labels and its value.
func recordGroups(t *testing.T, raw storage.Queryable, groups *rulefmt.RuleGroups, from, at time.Time) (evaluator.Querier, map[string]float64) {
	t.Helper()
	rec := testenv.NewMemStorage()
	q, err := embedded.New(embedded.Options{Storage: mergedStorage{raw, rec}, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	results := map[string]float64{}
	// result labels a result the way Prometheus's rules do: the rule's
	// name and labels replace the result's.
	result := func(r rulefmt.Rule, m model.Metric) labels.Labels {
		b := labels.NewBuilder(labels.EmptyLabels())
		for k, v := range m {
			b.Set(string(k), string(v))
		}
		b.Set(model.MetricNameLabel, r.Record)
		if r.Alert != "" {
			b.Set(model.MetricNameLabel, "ALERTS")
			b.Set(model.AlertNameLabel, r.Alert)
		}
		for k, v := range r.Labels {
			b.Set(k, v)
		}
		return b.Labels()
	}
	ranged := rangedSeries(t, groups)
	for _, g := range groups.Groups {
		step := time.Duration(g.Interval)
		if step == 0 {
			step = time.Minute
		}
		for _, r := range g.Rules {
			if r.Record == "" || !ranged[r.Record] {
				continue
			}
			v, err := q.QueryRange(ctx, r.Expr, evaluator.Range{Start: from, End: at, Step: step})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range v.(model.Matrix) {
				ls := result(r, s.Metric)
				for _, p := range s.Values {
					rec.Add(ls, int64(p.Timestamp), float64(p.Value))
					if p.Timestamp.Time().Equal(at) {
						results[ls.String()] = float64(p.Value)
					}
				}
			}
		}
	}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if ranged[r.Record] {
				continue
			}
			v, err := q.Query(ctx, r.Expr, at)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range v.(model.Vector) {
				ls := result(r, s.Metric)
				if r.Record != "" {
					rec.Add(ls, at.UnixMilli(), float64(s.Value))
				}
				results[ls.String()] = float64(s.Value)
			}
		}
	}
	return q, results
}

// rangedSeries are the names of the series the expressions of groups read
// over a range.
func rangedSeries(t *testing.T, groups *rulefmt.RuleGroups) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			e, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr)
			if err != nil {
				t.Fatal(err)
			}
			parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
				if m, ok := n.(*parser.MatrixSelector); ok {
					names[m.VectorSelector.(*parser.VectorSelector).Name] = true
				}
				return nil
			})
		}
	}
	return names
}

// mergedStorage queries several storages as one.
type mergedStorage []storage.Queryable

func (m mergedStorage) Querier(mint, maxt int64) (storage.Querier, error) {
	var qs []storage.Querier
	for _, s := range m {
		q, err := s.Querier(mint, maxt)
		if err != nil {
			return nil, err
		}
		qs = append(qs, q)
	}
	return storage.NewMergeQuerier(qs, nil, storage.ChainedSeriesMerge), nil
}

// instantAt answers an instant query at at that must give one value.
func instantAt(t *testing.T, q evaluator.Querier, at time.Time) func(query string) float64 {
	return func(query string) float64 {
		t.Helper()
		v, err := q.Query(context.Background(), query, at)
		if err != nil {
			t.Fatal(err)
		}
		vec, ok := v.(model.Vector)
		if !ok || len(vec) != 1 {
			t.Fatalf("%s: %v, want one value", query, v)
		}
		return float64(vec[0].Value)
	}
}
