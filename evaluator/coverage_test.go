package evaluator

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/slo"
)

// retainingQuerier is a backend that keeps retention of history before
// now(): 1 request a second, errorRate of them failing, and nothing older.
type retainingQuerier struct {
	now       func() time.Time
	retention time.Duration
	errorRate float64
	// oldest is the oldest time a query asked for; queries run in
	// parallel.
	mu     sync.Mutex
	oldest time.Time
}

func (q *retainingQuerier) Retention(context.Context) (time.Duration, bool, error) {
	return q.retention, true, nil
}

func (q *retainingQuerier) sample(query string, ts time.Time) (model.SampleValue, bool) {
	q.mu.Lock()
	if q.oldest.IsZero() || ts.Before(q.oldest) {
		q.oldest = ts
	}
	q.mu.Unlock()
	if !ts.After(q.now().Add(-q.retention)) {
		return 0, false // deleted by the retention
	}
	if strings.Contains(query, `code=~"5.."`) {
		return model.SampleValue(q.errorRate), true
	}
	return 1, true
}

func (q *retainingQuerier) Query(_ context.Context, query string, ts time.Time) (model.Value, error) {
	v, ok := q.sample(query, ts)
	if !ok {
		return model.Vector{}, nil
	}
	return model.Vector{{Metric: model.Metric{}, Value: v, Timestamp: model.TimeFromUnixNano(ts.UnixNano())}}, nil
}

func (q *retainingQuerier) QueryRange(_ context.Context, query string, r Range) (model.Value, error) {
	s := &model.SampleStream{Metric: model.Metric{}}
	for t := r.Start; !t.After(r.End); t = t.Add(r.Step) {
		if v, ok := q.sample(query, t); ok {
			s.Values = append(s.Values, model.SamplePair{Timestamp: model.TimeFromUnixNano(t.UnixNano()), Value: v})
		}
	}
	return model.Matrix{s}, nil
}

// TestCoverageGrowsWithSlogatesOwnHistory: a 30-day SLO on a backend that
// keeps 20 days is 2/3 covered at first (coverage metric too), its budget
// unknown, and nothing older is asked for; the slices slogate fetched while
// they were retained
// stay in its buffers, so 10 days later the window is complete although the
// backend no longer has its first 10 days.
func TestCoverageGrowsWithSlogatesOwnHistory(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	now := start
	q := &retainingQuerier{now: func() time.Time { return now }, retention: 20 * 24 * time.Hour, errorRate: 0.0005}
	reg := prometheus.NewRegistry()
	e, err := New(Options{Querier: q, Interval: 30 * time.Second, Registerer: reg, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	o := jobSLO("shop")
	if err := e.SetDefinitions(&slo.Set{SLOs: []*slo.SLO{o}}); err != nil {
		t.Fatal(err)
	}
	coverage := func() float64 {
		return testutil.ToFloat64(collectorGauge(t, reg, "slogate_slo_window_coverage_ratio"))
	}

	e.Evaluate(context.Background(), now)
	st, _ := e.SLO("shop")
	if full := st.Windows[len(st.Windows)-1]; full.Complete || math.Abs(float64(full.Coverage)-2.0/3) > 1e-3 || st.BudgetRemaining.Valid() {
		t.Errorf("first cycle: 30d window complete %v coverage %v budget %v; want incomplete, 2/3, unknown", full.Complete, full.Coverage, st.BudgetRemaining)
	}
	if c := coverage(); math.Abs(c-2.0/3) > 1e-3 {
		t.Errorf("slogate_slo_window_coverage_ratio = %g, want 2/3", c)
	}
	if oldest := now.Add(-q.retention); q.oldest.Before(oldest) {
		t.Errorf("asked for %s, older than the %s the backend keeps", q.oldest, oldest)
	}

	now = start.Add(10 * 24 * time.Hour)
	q.oldest = time.Time{}
	e.Evaluate(context.Background(), now)
	st, _ = e.SLO("shop")
	full := st.Windows[len(st.Windows)-1]
	if !full.Complete || full.Coverage != 1 || math.Abs(float64(st.BudgetRemaining)-0.5) > 1e-6 {
		t.Errorf("10 days later: 30d window complete %v coverage %v budget %v; want complete, 1, 0.5 (burning at 0.5)", full.Complete, full.Coverage, st.BudgetRemaining)
	}
	if c := coverage(); c != 1 {
		t.Errorf("slogate_slo_window_coverage_ratio = %g 10 days later, want 1", c)
	}
}

// collectorGauge gathers reg and returns the one series of name as a
// collector testutil can read.
func collectorGauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name})
			g.Set(mf.GetMetric()[0].GetGauge().GetValue())
			return g
		}
	}
	t.Fatalf("%s: not exported once", name)
	return nil
}
