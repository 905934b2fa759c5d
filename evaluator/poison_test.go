package evaluator

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/slo"
)

// poisonQuerier answers a steady 50 % error ratio (rates 0.5 and 1), except
// that while faulty the errors query answers bad, whatever time it asks:
// a backend gone wrong for a while (+Inf, a negative rate), whose data is
// fine once it recovers.
type poisonQuerier struct {
	faulty bool
	bad    float64
}

func (q *poisonQuerier) value(query string, _ time.Time) model.SampleValue {
	if !strings.Contains(query, `code=~"5.."`) {
		return 1
	}
	if q.faulty {
		return model.SampleValue(q.bad)
	}
	return 0.5
}

func (q *poisonQuerier) Query(_ context.Context, query string, ts time.Time) (model.Value, error) {
	return model.Vector{{Metric: model.Metric{}, Value: q.value(query, ts), Timestamp: model.TimeFromUnixNano(ts.UnixNano())}}, nil
}

func (q *poisonQuerier) QueryRange(_ context.Context, query string, r Range) (model.Value, error) {
	s := &model.SampleStream{Metric: model.Metric{}}
	for t := r.Start; !t.After(r.End); t = t.Add(r.Step) {
		s.Values = append(s.Values, model.SamplePair{Timestamp: model.TimeFromUnixNano(t.UnixNano()), Value: q.value(query, t)})
	}
	return model.Matrix{s}, nil
}

// TestPoisonedAnswersAreMissingSlices: a backend answering +Inf or a
// negative rate for a while must not poison the SLO's windows (they used to
// turn NaN for as long as the window, resolving the firing alerts): such a
// slice is a failed query (bad_result), missing and asked again like a
// slice lost in an outage; the data is not fresh meanwhile, the firing page
// holds, and one cycle after the fault every window is right again.
func TestPoisonedAnswersAreMissingSlices(t *testing.T) {
	for _, bad := range []float64{math.Inf(1), math.Inf(-1), -3} {
		t.Run(model.SampleValue(bad).String(), func(t *testing.T) {
			start := time.Date(2026, 5, 31, 23, 40, 0, 0, time.UTC)
			const step = 30 * time.Second
			q := &poisonQuerier{bad: bad}
			reg := prometheus.NewRegistry()
			now := start
			e, err := New(Options{Querier: q, Interval: step, Registerer: reg, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			o := jobSLO("shop")
			o.Alerting = slo.Alerting{Enabled: true, Page: slo.AlertTier{Enabled: true}, Ticket: slo.AlertTier{Enabled: true}}
			if err := e.SetDefinitions(&slo.Set{SLOs: []*slo.SLO{o}}); err != nil {
				t.Fatal(err)
			}
			page := func(s SLOStatus) bool {
				for _, a := range s.Alerts {
					if a.Severity == slo.SeverityPage {
						return a.Firing
					}
				}
				return false
			}
			badResults := func() float64 {
				return testutil.ToFloat64(e.metrics.queryFailures.WithLabelValues(ReasonBadResult))
			}
			for i := 0; i < 40; i++ {
				now = start.Add(time.Duration(i) * step)
				q.faulty = i >= 20 && i < 30
				e.Evaluate(context.Background(), now)
				s, _ := e.Snapshot().SLO("shop")
				switch {
				case i < 20:
					if !s.Fresh || !page(s) {
						t.Fatalf("cycle %d before the fault: fresh %v, page firing %v; want both (a 50%% error ratio)", i, s.Fresh, page(s))
					}
				case q.faulty:
					if s.Fresh {
						t.Errorf("cycle %d: data fresh while the newest slice was answered %v", i, bad)
					}
					if !page(s) {
						t.Fatalf("cycle %d: the page resolved on a poisoned answer", i)
					}
					for _, w := range s.Windows {
						if b := float64(w.BurnRate); w.Complete && (math.IsNaN(b) || math.IsInf(b, 0)) {
							t.Fatalf("cycle %d: window %s complete with burn rate %v", i, w.Window, b)
						}
					}
				case i >= 30: // the first cycle after the fault refetches
					if !s.Fresh || !page(s) || s.Error != "" {
						t.Fatalf("cycle %d after the fault: fresh %v, page %v, error %q", i, s.Fresh, page(s), s.Error)
					}
					for _, w := range s.Windows {
						if !w.Complete || math.Abs(float64(w.BurnRate)-500) > 1e-6 {
							t.Fatalf("cycle %d after the fault: window %s complete %v, burn rate %v; want 500 (50%% of a 0.1%% budget)", i, w.Window, w.Complete, w.BurnRate)
						}
					}
				}
			}
			if badResults() < 10 {
				t.Errorf("slogate_query_failures_total{reason=\"bad_result\"} = %v, want one per poisoned cycle at least", badResults())
			}
		})
	}
}

// matrixQuerier answers every instant query with a matrix, as a broken
// proxy or a backend mistaking the query for a range query might.
type matrixQuerier struct{}

func (matrixQuerier) Query(context.Context, string, time.Time) (model.Value, error) {
	return model.Matrix{{Metric: model.Metric{}, Values: []model.SamplePair{{Timestamp: 0, Value: 1}}}}, nil
}

func (matrixQuerier) QueryRange(context.Context, string, Range) (model.Value, error) {
	return model.Matrix{}, nil
}

// TestMatrixAnswerIsAFailedQuery: a matrix where an instant query's vector
// belongs makes the probe unknown, names the query in the error, and counts
// as bad_result.
func TestMatrixAnswerIsAFailedQuery(t *testing.T) {
	reg := prometheus.NewRegistry()
	at := time.Date(2026, 2, 28, 23, 59, 30, 0, time.UTC)
	e, err := New(Options{Querier: matrixQuerier{}, Interval: 30 * time.Second, Registerer: reg, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	const probe = `sum(rate(http_requests_total{code="500"}[1m]))`
	h := &slo.Hypothesis{Name: "steady", FailAfter: 1, PassAfter: 1, OnNoData: slo.PolicyUnknown, OnError: slo.PolicyUnknown, Series: slo.SeriesAll,
		Probes: []*slo.Probe{{Name: "errors", Query: probe, Tolerance: &slo.Tolerance{Op: slo.OpLT, Value: 1}}}}
	if err := e.SetDefinitions(&slo.Set{Hypotheses: []*slo.Hypothesis{h}}); err != nil {
		t.Fatal(err)
	}
	e.Evaluate(context.Background(), at)
	hs, _ := e.Snapshot().Hypothesis("steady")
	if hs.Verdict != slo.Unknown || len(hs.Probes) != 1 || !strings.Contains(hs.Probes[0].Error, strconv.Quote(probe)) || !strings.Contains(hs.Probes[0].Error, "matrix") {
		t.Fatalf("verdict %s, probes %+v: want unknown with an error naming the query and the matrix", hs.Verdict, hs.Probes)
	}
	if n := testutil.ToFloat64(e.metrics.queryFailures.WithLabelValues(ReasonBadResult)); n != 1 {
		t.Errorf("slogate_query_failures_total{reason=\"bad_result\"} = %v, want 1", n)
	}
}
