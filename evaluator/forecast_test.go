package evaluator

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/slo"
)

// stepQuerier answers 1 request a second, failing at errorRate from since
// on and not at all before: a service that started burning its budget at
// twice the allowed rate at a known time.
type stepQuerier struct {
	since     time.Time
	errorRate float64
}

func (q stepQuerier) value(query string, ts time.Time) model.SampleValue {
	if !strings.Contains(query, `code=~"5.."`) {
		return 1
	}
	if ts.After(q.since) {
		return model.SampleValue(q.errorRate)
	}
	return 0
}

func (q stepQuerier) Query(_ context.Context, query string, ts time.Time) (model.Value, error) {
	return model.Vector{{Metric: model.Metric{}, Value: q.value(query, ts), Timestamp: model.TimeFromUnixNano(ts.UnixNano())}}, nil
}

func (q stepQuerier) QueryRange(_ context.Context, query string, r Range) (model.Value, error) {
	s := &model.SampleStream{Metric: model.Metric{}}
	for t := r.Start; !t.After(r.End); t = t.Add(r.Step) {
		s.Values = append(s.Values, model.SamplePair{Timestamp: model.TimeFromUnixNano(t.UnixNano()), Value: q.value(query, t)})
	}
	return model.Matrix{s}, nil
}

// TestForecast: a service burning twice its budget for the last days, on a
// 99.9 % SLO, with answers worked out by hand (slo.ForecastRolling and
// ForecastPeriod say why).
func TestForecast(t *testing.T) {
	day := 24 * time.Hour
	monthly := jobSLO("monthly")
	monthly.Calendar, monthly.Window = &slo.Calendar{Unit: slo.CalendarMonth, Location: time.UTC}, slo.CalendarMonth.Longest()
	tests := []struct {
		name        string
		def         *slo.SLO
		now, since  time.Time
		remaining   float64
		exhaustedIn time.Duration
		atEnd       float64
		horizon     time.Duration
	}{
		// 10 of the 30 days at 2×: 1/3 of the budget left; at 2× the
		// budget lasts (1/3)·30d/(2-1+1/3) = 7.5 days; a window from now
		// the ratio is all 2×: -1.
		{"rolling 30d", jobSLO("rolling"), time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 1.0 / 3, 7*day + 12*time.Hour, -1, 30 * day},
		// November 1 to 11, the last 3 days at 2×: 0.4 left; 4 days at 2×
		// spend it (0.4·10d/(2-1)); at the end 1 - (0.6·10 + 2·20)/30.
		{"calendar month", monthly, time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC), 0.4, 4 * day, 1 - 46.0/30, 20 * day},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			reg := prometheus.NewRegistry()
			e, err := New(Options{Querier: stepQuerier{since: tt.since, errorRate: 0.002}, Interval: 30 * time.Second, Registerer: reg, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.SetDefinitions(&slo.Set{SLOs: []*slo.SLO{tt.def}}); err != nil {
				t.Fatal(err)
			}
			e.Evaluate(context.Background(), now)
			st, _ := e.SLO(tt.def.Name)
			if math.Abs(float64(st.BudgetRemaining)-tt.remaining) > 1e-6 {
				t.Fatalf("budget remaining %v, want %v", st.BudgetRemaining, tt.remaining)
			}
			f := st.Forecast
			if f == nil {
				t.Fatal("no forecast")
			}
			if f.Window != "1d" || math.Abs(float64(f.BurnRate)-2) > 1e-6 {
				t.Errorf("forecast over %s at burn rate %v, want 1d and 2", f.Window, f.BurnRate)
			}
			if got := time.Duration(float64(f.ExhaustedIn) * float64(time.Second)); (got - tt.exhaustedIn).Abs() > time.Minute {
				t.Errorf("exhausted in %s, want %s", got, tt.exhaustedIn)
			}
			if math.Abs(float64(f.BudgetAtEnd)-tt.atEnd) > 1e-6 || f.Horizon != tt.horizon.Seconds() {
				t.Errorf("budget at the end %v over %gs, want %v over %gs", f.BudgetAtEnd, f.Horizon, tt.atEnd, tt.horizon.Seconds())
			}

			// The same as metrics; a calendar SLO's period too.
			want := map[string]float64{
				"slogate_slo_error_budget_exhaustion_seconds": tt.exhaustedIn.Seconds(),
				"slogate_slo_error_budget_forecast_ratio":     tt.atEnd,
			}
			if tt.def.Calendar != nil {
				want["slogate_slo_period_start_timestamp_seconds"] = float64(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Unix())
				want["slogate_slo_period_end_timestamp_seconds"] = float64(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Unix())
				want["slogate_slo_period_remaining_seconds"] = tt.horizon.Seconds()
			}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					got[mf.GetName()] = m.GetGauge().GetValue()
				}
			}
			for name, v := range want {
				tol := 1e-6
				if strings.HasSuffix(name, "_seconds") {
					tol = 60 // the exhaustion is worked out to the minute above
				}
				if g, ok := got[name]; !ok || math.Abs(g-v) > tol {
					t.Errorf("%s = %v (exported %v), want %v", name, g, ok, v)
				}
			}
		})
	}
}

// TestTimeslicesNeedWholeIntervals: a time slice that does not end on an
// evaluation is refused when the definitions are set, naming the SLO.
func TestTimeslicesNeedWholeIntervals(t *testing.T) {
	e, err := New(Options{Querier: stepQuerier{}, Interval: time.Minute, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	o := jobSLO("minutes")
	o.Timeslices = &slo.Timeslices{Window: 2 * time.Minute, Target: 0.99}
	if err := e.SetDefinitions(&slo.Set{SLOs: []*slo.SLO{o}}); err != nil {
		t.Fatalf("2m slices at a 1m interval: %v", err)
	}
	e, err = New(Options{Querier: stepQuerier{}, Interval: 5 * time.Minute, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	err = e.SetDefinitions(&slo.Set{SLOs: []*slo.SLO{o}})
	if err == nil || !strings.Contains(err.Error(), `slo "minutes": time slices of 2m: must be a multiple of the evaluation interval 5m`) {
		t.Errorf("2m slices at a 5m interval: %v", err)
	}
}
