package evaluator_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/promapi"
	"github.com/slogate/slogate/internal/synth"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// calendarSLO is the shop's availability over calendar periods.
func calendarSLO(name string, unit slo.CalendarUnit, zone string) *slo.SLO {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		panic(err)
	}
	cal := &slo.Calendar{Unit: unit, Location: loc}
	return &slo.SLO{
		Name: name, Service: "shop", Objective: 99.5, Calendar: cal, Window: unit.Longest(),
		Indicator: slo.Indicator{Ratio: &slo.RatioIndicator{
			Errors: `sum(rate(http_requests_total{job="shop",code=~"5.."}[{{.window}}]))`,
			Total:  `sum(rate(http_requests_total{job="shop"}[{{.window}}]))`,
		}},
		Alerting: slo.Alerting{Enabled: true, Name: slo.DefaultAlertName, Page: slo.AlertTier{Enabled: true}, Ticket: slo.AlertTier{Enabled: true}},
	}
}

// TestCalendarAccuracyPrometheus backfills a month of synthetic history
// (uneven traffic, incidents, a counter reset, a scrape gap) into a real
// Prometheus and checks calendar SLOs against the generator's truth and a
// direct query over exactly the period so far: a November in New York,
// whose start is inside the data and which ends an hour later than 30 days
// because daylight saving ends on its first day; a week from Monday; and
// the same month two hours and a day into it. SLI and budget within 0.1 %.
// The dates are fixed: Prometheus keeps data by its own newest sample, not
// by the wall clock, so the test reads the same history on any day.
func TestCalendarAccuracyPrometheus(t *testing.T) {
	tr := synth.History(time.Date(2026, 11, 10, 5, 0, 0, 0, time.UTC), time.Minute)
	var om bytes.Buffer
	if err := tr.WriteOpenMetrics(&om, tr.End.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	testenv.Backfill(t, dataDir, &om)
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir})
	q, err := promapi.New(promapi.Options{URL: prom.URL(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	utc := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, time.UTC) }
	cases := []struct {
		name       string
		def        *slo.SLO
		at         time.Time
		start, end time.Time
	}{
		{"November in New York", calendarSLO("ny-month", slo.CalendarMonth, "America/New_York"), utc(10, 3, 30), utc(1, 4, 0), time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)},
		{"the same month, two hours in", calendarSLO("ny-month", slo.CalendarMonth, "America/New_York"), utc(1, 6, 0), utc(1, 4, 0), time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)},
		{"the same month, a day and a half in", calendarSLO("ny-month", slo.CalendarMonth, "America/New_York"), utc(2, 16, 0), utc(1, 4, 0), time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC)},
		{"the October before, its last hour", calendarSLO("ny-month", slo.CalendarMonth, "America/New_York"), utc(1, 3, 30), time.Date(2026, 10, 1, 4, 0, 0, 0, time.UTC), utc(1, 4, 0)},
		{"a week from Monday", calendarSLO("week", slo.CalendarWeek, "UTC"), utc(10, 3, 30), utc(9, 0, 0), utc(16, 0, 0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			at := tc.at
			ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return at }})
			if err != nil {
				t.Fatal(err)
			}
			if err := ev.SetDefinitions(&slo.Set{SLOs: []*slo.SLO{tc.def}}); err != nil {
				t.Fatal(err)
			}
			ev.Evaluate(context.Background(), at)
			st, ok := ev.SLO(tc.def.Name)
			if !ok || !st.Fresh || st.Error != "" {
				t.Fatalf("status not fresh: %+v", st)
			}
			p := st.Period
			if p == nil || !p.Start.Equal(tc.start) || !p.End.Equal(tc.end) {
				t.Fatalf("period %+v, want (%s, %s]", p, tc.start, tc.end)
			}
			if want := tc.end.Sub(tc.start).Seconds(); p.Length != want || p.TimeLeft != tc.end.Sub(at).Seconds() {
				t.Errorf("period length %gs, time left %gs; want %gs and %gs", p.Length, p.TimeLeft, want, tc.end.Sub(at).Seconds())
			}
			if st.Window != string(tc.def.Calendar.Unit) {
				t.Errorf("window %q, want %q", st.Window, tc.def.Calendar.Unit)
			}

			truth := tr.TruthBetween(tc.start, at)
			span := int(at.Sub(tc.start).Seconds())
			direct := prom.QueryAt(t, fmt.Sprintf(`sum(rate(http_requests_total{job="shop",code=~"5.."}[%ds])) / sum(rate(http_requests_total{job="shop"}[%ds]))`, span, span), at)
			got := 1 - float64(st.SLI)
			if rel := math.Abs(got-direct) / direct; rel > 1e-3 {
				t.Errorf("error ratio %g, direct query over the %ds of the period %g: relative error %.5f > 0.1%%", got, span, direct, rel)
			}
			if want := truth.Errors / truth.Total; math.Abs(got-want)/want > 1e-3 {
				t.Errorf("error ratio %g, generated truth %g: relative error %.5f > 0.1%%", got, want, math.Abs(got-want)/want)
			}
			wantBudget := 1 - direct/0.005
			if d := math.Abs(float64(st.BudgetRemaining) - wantBudget); d > 1e-3*math.Max(1, math.Abs(wantBudget)) {
				t.Errorf("budget remaining %g, from the direct query %g", st.BudgetRemaining, wantBudget)
			}
			// The alert factors follow the period's length: 2 % of the
			// budget in an hour.
			tiers := tc.def.TiersAt(at)
			if want := math.Round(0.02*tc.end.Sub(tc.start).Hours()*1e6) / 1e6; tiers[0].Factor != want {
				t.Errorf("page factor %g, want %g for a %s period", tiers[0].Factor, want, tc.end.Sub(tc.start))
			}
		})
	}
}

// rangeRecorder is a Querier that remembers the earliest start of the range
// queries it passed on.
type rangeRecorder struct {
	*promapi.Client
	mu       sync.Mutex
	earliest time.Time
}

func (r *rangeRecorder) QueryRange(ctx context.Context, q string, rng evaluator.Range) (model.Value, error) {
	r.mu.Lock()
	if r.earliest.IsZero() || rng.Start.Before(r.earliest) {
		r.earliest = rng.Start
	}
	r.mu.Unlock()
	return r.Client.QueryRange(ctx, q, rng)
}

// TestWindowLongerThanRetention: a 30-day SLO on a Prometheus that keeps 15
// days, a window twice the retention (the history is 31 days; what is older
// than 15 days is gone). slogate reads the retention from Prometheus, asks
// nothing older, and says the window is half covered and incomplete: by
// default the budget is unknown (the gate stays closed); with
// onIncompleteWindow: partial it is the budget of the 15 days covered,
// within 0.1 % of a direct query over them and of the generator's truth.
// Fixed dates, as above.
func TestWindowLongerThanRetention(t *testing.T) {
	tr := synth.History(time.Date(2026, 11, 10, 5, 0, 0, 0, time.UTC), time.Minute)
	var om bytes.Buffer
	if err := tr.WriteOpenMetrics(&om, tr.End.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	testenv.Backfill(t, dataDir, &om)
	const retention = 15 * 24 * time.Hour
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir, Retention: retention})
	c, err := promapi.New(promapi.Options{URL: prom.URL(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	q := &rangeRecorder{Client: c}
	at := time.Date(2026, 11, 10, 3, 30, 0, 0, time.UTC)
	unknown := calendarSLO("rolling-unknown", slo.CalendarMonth, "UTC")
	unknown.Calendar, unknown.Window = nil, 30*24*time.Hour
	partial := calendarSLO("rolling-partial", slo.CalendarMonth, "UTC")
	partial.Calendar, partial.Window = nil, 30*24*time.Hour
	partial.Gate.OnIncompleteWindow = slo.IncompletePartial
	ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetDefinitions(&slo.Set{SLOs: []*slo.SLO{unknown, partial}}); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), at)

	if covered := at.Add(-retention); q.earliest.Before(covered) {
		t.Errorf("a range query started at %s, before the %s Prometheus keeps", q.earliest, covered)
	}
	for _, name := range []string{"rolling-unknown", "rolling-partial"} {
		st, _ := ev.SLO(name)
		ws := st.Windows[len(st.Windows)-1]
		if ws.Window != "30d" || ws.Complete || math.Abs(float64(ws.Coverage)-0.5) > 1e-3 {
			t.Errorf("%s: window %s complete %v coverage %v, want 30d incomplete at 1/2", name, ws.Window, ws.Complete, ws.Coverage)
		}
		for _, w := range st.Windows[:len(st.Windows)-1] {
			if !w.Complete || w.Coverage != 1 {
				t.Errorf("%s: window %s complete %v coverage %v, want complete", name, w.Window, w.Complete, w.Coverage)
			}
		}
	}
	if st, _ := ev.SLO("rolling-unknown"); st.BudgetRemaining.Valid() || st.SLI.Valid() {
		t.Errorf("onIncompleteWindow unknown: SLI %v budget %v, want both unknown", st.SLI, st.BudgetRemaining)
	}
	st, _ := ev.SLO("rolling-partial")
	direct := prom.QueryAt(t, `sum(rate(http_requests_total{job="shop",code=~"5.."}[15d])) / sum(rate(http_requests_total{job="shop"}[15d]))`, at)
	truth := tr.TruthBetween(at.Add(-retention), at)
	got := 1 - float64(st.SLI)
	if rel := math.Abs(got-direct) / direct; rel > 1e-3 {
		t.Errorf("partial: error ratio %g, direct query over the 15 days covered %g: relative error %.5f > 0.1%%", got, direct, rel)
	}
	if want := truth.Errors / truth.Total; math.Abs(got-want)/want > 1e-3 {
		t.Errorf("partial: error ratio %g, generated truth %g", got, want)
	}
	if want := 1 - direct/0.005; math.Abs(float64(st.BudgetRemaining)-want) > 1e-3*math.Max(1, math.Abs(want)) {
		t.Errorf("partial: budget remaining %v, from the direct query %g", st.BudgetRemaining, want)
	}
}
