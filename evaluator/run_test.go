package evaluator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// slowQuerier takes longer than the evaluation interval for every query.
type slowQuerier struct{ d time.Duration }

func (s slowQuerier) Query(ctx context.Context, _ string, _ time.Time) (model.Value, error) {
	select {
	case <-time.After(s.d):
		return model.Vector{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s slowQuerier) QueryRange(ctx context.Context, q string, _ evaluator.Range) (model.Value, error) {
	return s.Query(ctx, q, time.Time{})
}

// TestRunSkipsMissedIterations: a cycle that overruns the interval makes
// the loop skip the missed boundaries (counted) rather than catch up in a
// burst, and Run returns promptly, leaking nothing, when ctx ends.
func TestRunSkipsMissedIterations(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	reg := prometheus.NewRegistry()
	ev, err := evaluator.New(evaluator.Options{Querier: slowQuerier{d: 2500 * time.Millisecond}, Interval: time.Second, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetDefinitions(&slo.Set{Hypotheses: []*slo.Hypothesis{hypothesis(slo.SeriesAll, slo.PolicyUnknown, slo.PolicyUnknown)}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ev.Run(ctx) }()

	missed := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "slogate_evaluation_iterations_missed_total" {
				return mf.Metric[0].GetCounter().GetValue()
			}
		}
		return 0
	}
	// Metrics are read once the first cycle has published its statuses:
	// before that, the collector's Hypotheses() reads the status a cycle's
	// worker is writing (a data race in the evaluator, reported, not this
	// test's subject).
	testenv.Eventually(t, 20*time.Second, "a first cycle", func() error {
		if !ev.Ready() {
			return errors.New("no cycle completed")
		}
		return nil
	})
	testenv.Eventually(t, 20*time.Second, "a missed iteration counted while every cycle overruns the interval", func() error {
		if missed() == 0 {
			return errors.New("slogate_evaluation_iterations_missed_total is 0")
		}
		return nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v on cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if st, _ := ev.Hypothesis("h"); st.Verdict == slo.Pass {
		t.Errorf("verdict pass with a querier that never answered in time")
	}
}
