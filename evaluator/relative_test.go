package evaluator_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/slo"
)

func ratioPtr(v float64) *float64 { return &v }

// TestRelativeProbePolicies judges relative probes and low-traffic guards
// on answers the test chooses: every way the reference or the events can
// be missing must end in the hypothesis' policies, never in a pass.
func TestRelativeProbePolicies(t *testing.T) {
	const q = "q"
	baseline := `avg_over_time((q)[1h:1m])`
	mk := func(p *slo.Probe) *slo.Hypothesis {
		p.Name, p.Query = "p", q
		return &slo.Hypothesis{Name: "h", FailAfter: 1, PassAfter: 1, OnNoData: slo.PolicyUnknown, OnError: slo.PolicyUnknown,
			OnLowTraffic: slo.PolicyUnknown, Probes: []*slo.Probe{p}}
	}
	base := func() *slo.Probe {
		return &slo.Probe{Relative: &slo.Relative{Baseline: &slo.BaselineSpec{Window: time.Hour, Step: time.Minute}, MaxIncrease: ratioPtr(0.5)}}
	}
	guarded := func() *slo.Probe {
		return &slo.Probe{Tolerance: &slo.Tolerance{Op: slo.OpLT, Value: 0.01}, Events: "events", MinEvents: 100}
	}
	cmp := func() *slo.Probe {
		return &slo.Probe{Relative: &slo.Relative{Compare: &slo.CompareSpec{Control: `{z="b"}`, Experiment: `{z="a"}`, ControlQuery: "control", ExperimentQuery: "experiment"}, MaxIncrease: ratioPtr(0.2)}}
	}
	cases := []struct {
		name    string
		probe   *slo.Probe
		answers map[string]func() (model.Value, error)
		want    slo.Verdict
		outcome string
	}{
		{"baseline: within", base(), map[string]func() (model.Value, error){q: vec(0.012), baseline: vec(0.01)}, slo.Pass, "value"},
		{"baseline: above +50%", base(), map[string]func() (model.Value, error){q: vec(0.016), baseline: vec(0.01)}, slo.Fail, "value"},
		{"baseline: no history is no data", base(), map[string]func() (model.Value, error){q: vec(0.016)}, slo.Unknown, "no data"},
		{"baseline: failed query is an error", base(), map[string]func() (model.Value, error){q: vec(0.016), baseline: fails(evaluator.ReasonTimeout)}, slo.Unknown, "error"},
		{"baseline: several series is an error", base(), map[string]func() (model.Value, error){q: vec(0.016, 0.01), baseline: vec(0.01, 0.01)}, slo.Unknown, "error"},
		{"guard: enough events", guarded(), map[string]func() (model.Value, error){q: vec(0.5), "events": vec(1000)}, slo.Fail, "value"},
		{"guard: 5 events is low traffic, not a fail", guarded(), map[string]func() (model.Value, error){q: vec(0.6), "events": vec(5)}, slo.Unknown, evaluator.OutcomeLowTraffic},
		{"guard: no events series is low traffic", guarded(), map[string]func() (model.Value, error){q: vec(0.6)}, slo.Unknown, evaluator.OutcomeLowTraffic},
		{"guard: failed events query is an error", guarded(), map[string]func() (model.Value, error){q: vec(0.001), "events": fails(evaluator.ReasonServer)}, slo.Unknown, "error"},
		{"compare: within", cmp(), map[string]func() (model.Value, error){"experiment": vec(0.011), "control": vec(0.01)}, slo.Pass, "value"},
		{"compare: worse", cmp(), map[string]func() (model.Value, error){"experiment": vec(0.02), "control": vec(0.01)}, slo.Fail, "value"},
		{"compare: no control is no data", cmp(), map[string]func() (model.Value, error){"experiment": vec(0.01)}, slo.Unknown, "no data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			for k, v := range tc.answers {
				f.set(k, v)
			}
			now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
			// The fake answers each query by its text: no unions.
			ev, err := evaluator.New(evaluator.Options{Querier: f, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return now }, DisableBatching: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := ev.SetDefinitions(&slo.Set{Hypotheses: []*slo.Hypothesis{mk(tc.probe)}}); err != nil {
				t.Fatal(err)
			}
			ev.Evaluate(context.Background(), now)
			st, _ := ev.Hypothesis("h")
			p := st.Probes[0]
			if st.Verdict != tc.want || p.Outcome != tc.outcome {
				t.Errorf("verdict %s outcome %q, want %s %q (%+v)", st.Verdict, p.Outcome, tc.want, tc.outcome, p)
			}
		})
	}
}

// TestMannWhitneyTooFewIsUnknown: without samples (the range queries
// answer nothing) a test probe is unknown even under onNoData: pass.
func TestMannWhitneyTooFewIsUnknown(t *testing.T) {
	h := &slo.Hypothesis{Name: "h", FailAfter: 1, PassAfter: 1, OnNoData: slo.PolicyPass, OnError: slo.PolicyPass, OnLowTraffic: slo.PolicyPass,
		Probes: []*slo.Probe{{Name: "p", Query: "q", Relative: &slo.Relative{
			Compare: &slo.CompareSpec{ControlQuery: "c", ExperimentQuery: "e", Window: 30 * time.Minute, Step: time.Minute},
			Test:    &slo.StatTest{Method: slo.TestMannWhitney, Confidence: 0.95, MinEffect: 0.1, MinSamples: 10, Worse: slo.WorseIncrease}}}}}
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	ev, err := evaluator.New(evaluator.Options{Querier: newFake(), Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetDefinitions(&slo.Set{Hypotheses: []*slo.Hypothesis{h}}); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), now)
	st, _ := ev.Hypothesis("h")
	p := st.Probes[0]
	if st.Verdict != slo.Unknown || p.Outcome != evaluator.OutcomeTooFew || p.Baseline == nil || p.Baseline.Test == nil || p.Baseline.Test.Decision != "too-few" {
		t.Errorf("verdict %s outcome %q baseline %+v, want unknown for too few samples", st.Verdict, p.Outcome, p.Baseline)
	}
}
