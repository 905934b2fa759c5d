package evaluator_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/embedded"
	"github.com/slogate/slogate/internal/synth"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

func testSLOs() *slo.Set {
	base := func(name string, ind slo.Indicator) *slo.SLO {
		return &slo.SLO{
			Name: name, Service: "shop", Objective: 99.5, Window: 30 * 24 * time.Hour, Indicator: ind,
			Alerting: slo.Alerting{Enabled: true, Name: slo.DefaultAlertName, Page: slo.AlertTier{Enabled: true}, Ticket: slo.AlertTier{Enabled: true}},
		}
	}
	return &slo.Set{SLOs: []*slo.SLO{
		base("availability", slo.Indicator{Ratio: &slo.RatioIndicator{
			Errors: `sum(rate(http_requests_total{job="shop",code=~"5.."}[{{.window}}]))`,
			Total:  `sum(rate(http_requests_total{job="shop"}[{{.window}}]))`,
		}}),
		base("availability-good", slo.Indicator{Ratio: &slo.RatioIndicator{
			Good:  `sum(rate(http_requests_total{job="shop",code!~"5.."}[{{.window}}]))`,
			Total: `sum(rate(http_requests_total{job="shop"}[{{.window}}]))`,
		}}),
		base("latency", slo.Indicator{Latency: &slo.LatencyIndicator{
			Histogram: `http_request_duration_seconds{job="shop"}`, Threshold: 0.3,
		}}),
		base("uptime", slo.Indicator{Raw: &slo.RawIndicator{
			ErrorRatio: `1 - avg_over_time(service_up{job="shop"}[{{.window}}])`,
		}}),
	}}
}

// TestAccuracyEmbedded checks that the sliced windows match a direct
// full-window query on the same data, and the generator's truth, on
// Prometheus's own engine and TSDB.
func TestAccuracyEmbedded(t *testing.T) {
	tr := synth.History(time.Date(2026, 11, 28, 4, 30, 0, 0, time.UTC), time.Minute)
	end := tr.End
	db := testenv.OpenTSDB(t, tr)
	q, err := embedded.New(embedded.Options{Storage: db})
	if err != nil {
		t.Fatal(err)
	}
	now := end.Add(-90 * time.Second)
	ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	set := testSLOs()
	if err := ev.SetDefinitions(set); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ev.Evaluate(ctx, now)
	// A few more cycles exercise the incremental path.
	for range 5 {
		now = now.Add(30 * time.Second)
		ev.Evaluate(ctx, now)
	}

	direct := func(query string) float64 {
		t.Helper()
		v, err := q.Query(ctx, query, now)
		if err != nil {
			t.Fatal(err)
		}
		vec := v.(model.Vector)
		if len(vec) != 1 {
			t.Fatalf("%s: %d series", query, len(vec))
		}
		return float64(vec[0].Value)
	}
	truth := tr.TruthBetween(now.Add(-30*24*time.Hour), now)
	cases := []struct {
		slo         string
		directSLI   string
		truthSLI    float64
		truthMaxErr float64
	}{
		{"availability", `1 - sum(rate(http_requests_total{job="shop",code=~"5.."}[30d])) / sum(rate(http_requests_total{job="shop"}[30d]))`, 1 - truth.Errors/truth.Total, 1e-3},
		{"availability-good", `sum(rate(http_requests_total{job="shop",code!~"5.."}[30d])) / sum(rate(http_requests_total{job="shop"}[30d]))`, 1 - truth.Errors/truth.Total, 1e-3},
		{"latency", `sum(rate(http_request_duration_seconds_bucket{job="shop",le="0.3"}[30d])) / sum(rate(http_request_duration_seconds_count{job="shop"}[30d]))`, 1 - truth.Slow[0.3]/truth.Total, 1e-3},
		{"uptime", `avg_over_time(service_up{job="shop"}[30d])`, 1 - truth.Down/truth.Duration, 1e-3},
	}
	for _, tc := range cases {
		t.Run(tc.slo, func(t *testing.T) {
			st, ok := ev.SLO(tc.slo)
			if !ok {
				t.Fatal("no status")
			}
			if !st.Fresh || st.Error != "" {
				t.Fatalf("status not fresh: %+v", st)
			}
			got := float64(st.SLI)
			want := direct(tc.directSLI)
			// Compare error ratios, the quantity budgets are made of: an
			// SLI of 0.998 vs 0.999 is a 0.1 % SLI difference but a 50 %
			// budget difference.
			if rel := math.Abs((1-got)-(1-want)) / (1 - want); rel > 1e-3 {
				t.Errorf("error ratio %g, direct query %g: relative error %.5f > 0.1%%", 1-got, 1-want, rel)
			}
			if rel := math.Abs((1-got)-(1-tc.truthSLI)) / (1 - tc.truthSLI); rel > tc.truthMaxErr {
				t.Errorf("error ratio %g, generated truth %g: relative error %.5f", 1-got, 1-tc.truthSLI, rel)
			}
			wantBudget := slo.BudgetRemaining(1-want, 1, 99.5)
			if math.Abs(float64(st.BudgetRemaining)-wantBudget) > 1e-3*math.Max(1, math.Abs(wantBudget)) {
				t.Errorf("budget remaining %g, direct %g", st.BudgetRemaining, wantBudget)
			}
		})
	}

	// The charts of the last day come from the same slices, the part older
	// than the fine slices from the hourly ones.
	h, ok := ev.History("availability")
	if !ok || len(h.BurnRate1h) < 24 || len(h.BudgetRemaining) < 24 || len(h.BurnRate5m) < 60 {
		t.Fatalf("history: %d/%d/%d points", len(h.BudgetRemaining), len(h.BurnRate1h), len(h.BurnRate5m))
	}
	for _, series := range [][]evaluator.Point{h.BudgetRemaining, h.BurnRate1h, h.BurnRate5m} {
		for _, p := range series {
			if !p.Value.Valid() {
				t.Errorf("history point at %s has no value", p.At)
			}
		}
	}
}
