package evaluator_test

import (
	"bytes"
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/promapi"
	"github.com/slogate/slogate/internal/synth"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// TestTimeslicesPrometheus: time-slice SLOs over a day, on a real
// Prometheus, against the exact truth of generated one-minute slices:
// Timeslices (the share of good minutes, a minute at exactly the 1 %
// target counting as good), the same with minutes without data counted as
// good, RatioTimeslices (the mean of the minutes' good ratios) and a
// threshold indicator (the minute's error ratio under 1.5 %). The day
// starts inside an hour, so its first hour is read from one-minute slices
// and the older hours from hourly ones; 10 minutes without data fall in it.
func TestTimeslicesPrometheus(t *testing.T) {
	start := time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC)
	m := synth.Minutes{Start: start, End: start.Add(27 * time.Hour), GapAt: start.Add(20 * time.Hour)}
	var om bytes.Buffer
	if err := m.WriteOpenMetrics(&om); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	testenv.Backfill(t, dataDir, &om)
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir})
	q, err := promapi.New(promapi.Options{URL: prom.URL(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ratio := &slo.RatioIndicator{
		Errors: `sum(rate(http_requests_total{job="shop",code="500"}[{{.window}}]))`,
		Total:  `sum(rate(http_requests_total{job="shop"}[{{.window}}]))`,
	}
	def := func(name string, ts slo.Timeslices, ind slo.Indicator) *slo.SLO {
		return &slo.SLO{Name: name, Service: "shop", Objective: 90, Window: 24 * time.Hour, Timeslices: &ts, Indicator: ind}
	}
	minute := time.Minute
	set := &slo.Set{SLOs: []*slo.SLO{
		def("good-minutes", slo.Timeslices{Window: minute, Target: 0.99, NoData: slo.SliceSkip}, slo.Indicator{Ratio: ratio}),
		def("good-minutes-nodata-good", slo.Timeslices{Window: minute, Target: 0.99, NoData: slo.SliceGood}, slo.Indicator{Ratio: ratio}),
		def("ratio-minutes", slo.Timeslices{Window: minute, Ratio: true, NoData: slo.SliceSkip}, slo.Indicator{Ratio: ratio}),
		def("threshold-minutes", slo.Timeslices{Window: minute, NoData: slo.SliceSkip}, slo.Indicator{Threshold: &slo.ThresholdIndicator{
			Query:     `sum(rate(http_requests_total{job="shop",code="500"}[1m])) / sum(rate(http_requests_total{job="shop"}[1m]))`,
			Tolerance: slo.Tolerance{Op: slo.OpLT, Value: 0.015},
		}}),
	}}
	at := start.Add(26*time.Hour + 30*time.Minute)
	ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetDefinitions(set); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), at)
	// A few more cycles take the incremental path.
	for range 4 {
		at = at.Add(30 * time.Second)
		ev.Evaluate(context.Background(), at)
	}

	truth := m.Truth(at.Add(-24*time.Hour), at)
	counted, bad, goodSum, noData := truth.Counted, truth.Bad, truth.GoodSum, truth.NoData
	if noData != 10 || counted+noData != 24*60 {
		t.Fatalf("the test's truth: %d slices counted, %d without data; want 1430 and 10", counted, noData)
	}
	cases := []struct {
		slo      string
		sli      float64
		slices   float64 // the window's total: slices counted
		badCount float64
	}{
		{"good-minutes", 1 - float64(bad)/float64(counted), float64(counted), float64(bad)},
		{"good-minutes-nodata-good", 1 - float64(bad)/float64(counted+noData), float64(counted + noData), float64(bad)},
		{"ratio-minutes", goodSum / float64(counted), float64(counted), float64(counted) - goodSum},
		// Under 1.5 %: the 2 % minutes are bad, the others good.
		{"threshold-minutes", 1 - float64(bad)/float64(counted), float64(counted), float64(bad)},
	}
	for _, tc := range cases {
		t.Run(tc.slo, func(t *testing.T) {
			st, ok := ev.SLO(tc.slo)
			if !ok || !st.Fresh || st.Error != "" {
				t.Fatalf("status: %+v", st)
			}
			w := st.Windows[len(st.Windows)-1]
			if !w.Complete || math.Abs(float64(w.Total)-tc.slices) > 1e-6 || math.Abs(float64(w.Bad)-tc.badCount) > 1e-6 {
				t.Errorf("1d window: complete %v, %v bad of %v slices; want %v of %v", w.Complete, w.Bad, w.Total, tc.badCount, tc.slices)
			}
			if math.Abs(float64(st.SLI)-tc.sli) > 1e-9 {
				t.Errorf("SLI %v, want %v", st.SLI, tc.sli)
			}
			// 90 % of the slices must be good: the budget is 10 %.
			if want := 1 - (1-tc.sli)/0.1; math.Abs(float64(st.BudgetRemaining)-want) > 1e-6 {
				t.Errorf("budget remaining %v, want %v", st.BudgetRemaining, want)
			}
		})
	}
}
