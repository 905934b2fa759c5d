package evaluator_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/slo"
)

// fakeQuerier answers instant queries from a table the test changes.
type fakeQuerier struct {
	mu      sync.Mutex
	answers map[string]func() (model.Value, error)
	calls   map[string]int
}

func newFake() *fakeQuerier {
	return &fakeQuerier{answers: map[string]func() (model.Value, error){}, calls: map[string]int{}}
}

func (f *fakeQuerier) set(query string, fn func() (model.Value, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[query] = fn
}

func (f *fakeQuerier) Query(_ context.Context, q string, ts time.Time) (model.Value, error) {
	f.mu.Lock()
	fn, ok := f.answers[q]
	f.calls[q]++
	f.mu.Unlock()
	if !ok {
		return model.Vector{}, nil
	}
	return fn()
}

func (f *fakeQuerier) QueryRange(context.Context, string, evaluator.Range) (model.Value, error) {
	return model.Matrix{}, nil
}

func vec(values ...float64) func() (model.Value, error) {
	return func() (model.Value, error) {
		v := model.Vector{}
		for i, x := range values {
			v = append(v, &model.Sample{Metric: model.Metric{"pod": model.LabelValue(rune('a' + i))}, Value: model.SampleValue(x)})
		}
		return v, nil
	}
}

func fails(reason string) func() (model.Value, error) {
	return func() (model.Value, error) {
		return nil, &evaluator.QueryError{Reason: reason, Err: errors.New("boom")}
	}
}

func hypothesis(series slo.SeriesPolicy, onNoData, onError slo.Policy) *slo.Hypothesis {
	return &slo.Hypothesis{
		Name: "h", FailAfter: 1, PassAfter: 1, OnNoData: onNoData, OnError: onError, Series: series,
		Probes: []*slo.Probe{{Name: "p", Query: "q", Tolerance: &slo.Tolerance{Op: slo.OpLT, Value: 1}}},
	}
}

func TestProbePolicies(t *testing.T) {
	inf := math.Inf(1)
	cases := []struct {
		name     string
		answer   func() (model.Value, error)
		series   slo.SeriesPolicy
		onNoData slo.Policy
		onError  slo.Policy
		want     slo.Verdict
		outcome  string
	}{
		{"value within", vec(0.5), slo.SeriesAll, slo.PolicyUnknown, slo.PolicyUnknown, slo.Pass, "value"},
		{"value outside", vec(2), slo.SeriesAll, slo.PolicyUnknown, slo.PolicyUnknown, slo.Fail, "value"},
		{"+Inf is a value and fails < 1", vec(inf), slo.SeriesAll, slo.PolicyPass, slo.PolicyPass, slo.Fail, "value"},
		{"NaN is no data: unknown", vec(math.NaN()), slo.SeriesAll, slo.PolicyUnknown, slo.PolicyPass, slo.Unknown, "NaN"},
		{"NaN under onNoData=fail", vec(math.NaN()), slo.SeriesAll, slo.PolicyFail, slo.PolicyPass, slo.Fail, "NaN"},
		{"NaN under onNoData=pass", vec(math.NaN()), slo.SeriesAll, slo.PolicyPass, slo.PolicyFail, slo.Pass, "NaN"},
		{"empty: unknown", vec(), slo.SeriesAll, slo.PolicyUnknown, slo.PolicyPass, slo.Unknown, "no data"},
		{"empty under onNoData=fail", vec(), slo.SeriesAll, slo.PolicyFail, slo.PolicyPass, slo.Fail, "no data"},
		{"empty under onNoData=pass", vec(), slo.SeriesAll, slo.PolicyPass, slo.PolicyUnknown, slo.Pass, "no data"},
		{"error: unknown", fails(evaluator.ReasonTimeout), slo.SeriesAll, slo.PolicyPass, slo.PolicyUnknown, slo.Unknown, "error"},
		{"error under onError=fail", fails(evaluator.ReasonServer), slo.SeriesAll, slo.PolicyPass, slo.PolicyFail, slo.Fail, "error"},
		{"error under onError=pass", fails(evaluator.ReasonUnreachable), slo.SeriesAll, slo.PolicyFail, slo.PolicyPass, slo.Pass, "error"},
		{"all: every series within", vec(0.1, 0.2), slo.SeriesAll, slo.PolicyUnknown, slo.PolicyUnknown, slo.Pass, "several series"},
		{"all: one series outside", vec(0.1, 5), slo.SeriesAll, slo.PolicyUnknown, slo.PolicyUnknown, slo.Fail, "several series"},
		{"all: a NaN series is no data", vec(0.1, math.NaN()), slo.SeriesAll, slo.PolicyUnknown, slo.PolicyPass, slo.Unknown, "several series"},
		{"all: a miss beats a NaN", vec(7, math.NaN()), slo.SeriesAll, slo.PolicyPass, slo.PolicyPass, slo.Fail, "several series"},
		{"any: one series within", vec(5, 0.2), slo.SeriesAny, slo.PolicyUnknown, slo.PolicyUnknown, slo.Pass, "several series"},
		{"any: none within", vec(5, 6), slo.SeriesAny, slo.PolicyUnknown, slo.PolicyUnknown, slo.Fail, "several series"},
		{"any: NaN and a miss is no data", vec(5, math.NaN()), slo.SeriesAny, slo.PolicyUnknown, slo.PolicyPass, slo.Unknown, "several series"},
		{"any: +Inf series fails, other passes", vec(inf, 0.5), slo.SeriesAny, slo.PolicyFail, slo.PolicyFail, slo.Pass, "several series"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.set("q", tc.answer)
			now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
			ev, err := evaluator.New(evaluator.Options{Querier: f, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			if err := ev.SetDefinitions(&slo.Set{Hypotheses: []*slo.Hypothesis{hypothesis(tc.series, tc.onNoData, tc.onError)}}); err != nil {
				t.Fatal(err)
			}
			ev.Evaluate(context.Background(), now)
			st, _ := ev.Hypothesis("h")
			if st.Verdict != tc.want {
				t.Errorf("verdict %s, want %s (probe %+v)", st.Verdict, tc.want, st.Probes[0])
			}
			if st.Probes[0].Outcome != tc.outcome {
				t.Errorf("outcome %q, want %q", st.Probes[0].Outcome, tc.outcome)
			}
		})
	}
}

// TestDebounce counts evaluations: failAfter misses in a row turn the
// verdict to fail, passAfter hits turn it back, an unknown is immediate.
func TestDebounce(t *testing.T) {
	f := newFake()
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	ev, err := evaluator.New(evaluator.Options{Querier: f, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	h := hypothesis(slo.SeriesAll, slo.PolicyUnknown, slo.PolicyUnknown)
	h.FailAfter, h.PassAfter = 3, 2
	if err := ev.SetDefinitions(&slo.Set{Hypotheses: []*slo.Hypothesis{h}}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		answer func() (model.Value, error)
		want   slo.Verdict
	}{
		{vec(0.5), slo.Unknown},
		{vec(0.5), slo.Pass},
		{vec(5), slo.Pass},
		{vec(5), slo.Pass},
		{vec(5), slo.Fail},
		{vec(0.5), slo.Fail},
		{vec(0.5), slo.Pass},
		{fails(evaluator.ReasonTimeout), slo.Unknown},
		{vec(0.5), slo.Unknown},
		{vec(0.5), slo.Pass},
	}
	for i, s := range steps {
		f.set("q", s.answer)
		ev.Evaluate(context.Background(), now)
		st, _ := ev.Hypothesis("h")
		if st.Verdict != s.want {
			t.Fatalf("evaluation %d: verdict %s, want %s", i+1, st.Verdict, s.want)
		}
		now = now.Add(30 * time.Second)
	}
}

// TestStalePassIsUnknown: a pass not refreshed for two intervals reads as
// unknown, so a stuck loop never keeps a gate open.
func TestStalePassIsUnknown(t *testing.T) {
	f := newFake()
	f.set("q", vec(0.5))
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ev, err := evaluator.New(evaluator.Options{Querier: f, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetDefinitions(&slo.Set{Hypotheses: []*slo.Hypothesis{hypothesis(slo.SeriesAll, slo.PolicyUnknown, slo.PolicyUnknown)}}); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), clock())
	if st, _ := ev.Hypothesis("h"); st.Verdict != slo.Pass {
		t.Fatalf("verdict %s, want pass", st.Verdict)
	}
	mu.Lock()
	now = now.Add(5 * time.Minute)
	mu.Unlock()
	if st, _ := ev.Hypothesis("h"); st.Verdict != slo.Unknown || st.Fresh {
		t.Fatalf("after 5m without evaluation: verdict %s fresh %v, want unknown and stale", st.Verdict, st.Fresh)
	}
}

// TestIdenticalQueriesOnce: two probes with the same query cost one query.
func TestIdenticalQueriesOnce(t *testing.T) {
	f := newFake()
	f.set("q", vec(0.5))
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	ev, _ := evaluator.New(evaluator.Options{Querier: f, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return now }})
	h1 := hypothesis(slo.SeriesAll, slo.PolicyUnknown, slo.PolicyUnknown)
	h2 := hypothesis(slo.SeriesAll, slo.PolicyUnknown, slo.PolicyUnknown)
	h2.Name = "h2"
	if err := ev.SetDefinitions(&slo.Set{Hypotheses: []*slo.Hypothesis{h1, h2}}); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), now)
	if f.calls["q"] != 1 {
		t.Fatalf("query made %d times in one cycle, want 1", f.calls["q"])
	}
}

// TestStaleAfter: a verdict reads as unknown exactly once its newest good
// evaluation is StaleAfter old, read by read, whatever the loop does in the
// meantime (here: nothing, as while it waits on a silent Prometheus); the
// default is two and a half intervals.
func TestStaleAfter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		staleAfter time.Duration
		want       time.Duration
	}{
		{"default", 0, 75 * time.Second},
		{"interval plus timeout", 47500 * time.Millisecond, 47500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.set("q", vec(0.5))
			at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
			now := at
			var mu sync.Mutex
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			ev, err := evaluator.New(evaluator.Options{Querier: f, Interval: 30 * time.Second, StaleAfter: tc.staleAfter, Registerer: prometheus.NewRegistry(), Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			if err := ev.SetDefinitions(&slo.Set{Hypotheses: []*slo.Hypothesis{hypothesis(slo.SeriesAll, slo.PolicyUnknown, slo.PolicyUnknown)}}); err != nil {
				t.Fatal(err)
			}
			ev.Evaluate(context.Background(), at)
			for _, step := range []struct {
				age  time.Duration
				want slo.Verdict
			}{{0, slo.Pass}, {tc.want - time.Millisecond, slo.Pass}, {tc.want, slo.Unknown}} {
				mu.Lock()
				now = at.Add(step.age)
				mu.Unlock()
				if st, _ := ev.Hypothesis("h"); st.Verdict != step.want || st.Fresh != (step.want == slo.Pass) {
					t.Errorf("read %s after the evaluation: verdict %s fresh %v, want %s", step.age, st.Verdict, st.Fresh, step.want)
				}
			}
		})
	}
}

// TestNotEvaluatedSLOHasNoWindowsYet: before its first cycle an SLO has no
// window statuses, and says so with an empty list, not null, in the API.
func TestNotEvaluatedSLOHasNoWindowsYet(t *testing.T) {
	ev, err := evaluator.New(evaluator.Options{Querier: newFake(), Interval: 30 * time.Second, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	def := &slo.SLO{Name: "s", Objective: 99, Window: 24 * time.Hour, Indicator: slo.Indicator{Ratio: &slo.RatioIndicator{Errors: "e[{{.window}}]", Total: "t[{{.window}}]"}}}
	if err := ev.SetDefinitions(&slo.Set{SLOs: []*slo.SLO{def}}); err != nil {
		t.Fatal(err)
	}
	st, _ := ev.SLO("s")
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"windows":[]`) {
		t.Errorf("status of an SLO not evaluated yet: %s, want \"windows\":[]", b)
	}
}
