package stats

import (
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/stat"
)

// The simulated service: per-slice error ratios around 0.8 %, each slice
// 1000 requests, and a run that looks once per new slice in each group
// from MinSamples up to maxSlices.
const (
	baseRatio = 0.008
	requests  = 1000
	maxSlices = 60
)

func simulated() Test { return Test{Confidence: 0.95, MinEffect: 0.1, MinSamples: 5} }

// runOutcome is how one simulated run went: the number of slices per
// group at its first Fail and at its first Pass, 0 for never.
type runOutcome struct{ failAt, passAt int }

// simulateRun plays one run to maxSlices. It does not stop at a Pass, as
// a run that stops there could not fail later: counting every Fail up to
// maxSlices bounds the false failures of a run that does stop.
func simulateRun(seed uint64, test Test, controlRatio, experimentRatio float64) runOutcome {
	rng := rand.New(rand.NewPCG(seed, 0x5106a7e))
	control := sliceRatios(rng, maxSlices, controlRatio, requests)
	experiment := sliceRatios(rng, maxSlices, experimentRatio, requests)
	var out runOutcome
	for n := test.MinSamples; n <= maxSlices; n++ {
		look := n - test.MinSamples + 1
		switch test.Decide(control[:n], experiment[:n], look).Decision {
		case Fail:
			out.failAt = n
			return out
		case Pass:
			if out.passAt == 0 {
				out.passAt = n
			}
		}
	}
	return out
}

// simulate plays runs runs, seeded 0 … runs−1, and returns the slices
// per group at which those that failed (and passed) first did so.
func simulate(runs int, test Test, controlRatio, experimentRatio float64) (failedAt, passedAt []float64) {
	for seed := range uint64(runs) {
		o := simulateRun(seed, test, controlRatio, experimentRatio)
		if o.failAt > 0 {
			failedAt = append(failedAt, float64(o.failAt))
		}
		if o.passAt > 0 {
			passedAt = append(passedAt, float64(o.passAt))
		}
	}
	return failedAt, passedAt
}

// meanP95 summarises slices-to-decision for the documentation.
func meanP95(xs []float64) (mean, p95 float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return stat.Mean(s, nil), stat.Quantile(0.95, stat.Empirical, s, nil)
}

// A run with no real difference must fail at most 1 − Confidence of the
// time over ALL its looks, not per look. The boundary case, an experiment
// worse by exactly MinEffect, is where the fail test's null is hardest to
// keep; without the spending over looks both would fail far more often.
func TestFalseFailureRate(t *testing.T) {
	runs := 2000
	if testing.Short() {
		runs = 1000
	}
	test := simulated()
	alpha := 1 - test.Confidence
	tests := []struct {
		name            string
		experimentRatio float64
	}{
		{name: "no difference", experimentRatio: baseRatio},
		{name: "worse by exactly minEffect", experimentRatio: baseRatio * (1 + test.MinEffect)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			failedAt, passedAt := simulate(runs, test, baseRatio, tt.experimentRatio)
			rate := float64(len(failedAt)) / float64(runs)
			passMean, passP95 := meanP95(passedAt)
			t.Logf("%d runs of %d…%d slices per group, error ratio %.2f %% vs %.2f %%: %d failed (rate %.4f, alpha %.2f); %d passed at some look, first after %.1f slices on average, p95 %.0f",
				runs, test.MinSamples, maxSlices, 100*baseRatio, 100*tt.experimentRatio,
				len(failedAt), rate, alpha, len(passedAt), passMean, passP95)
			if rate > alpha {
				t.Errorf("false-failure rate %.4f over all looks, want at most alpha = %.2f", rate, alpha)
			}
		})
	}
}

// With the experiment's error ratio doubled, nearly every run must fail
// within maxSlices; how many slices that takes is what the service
// documents as the expected length of a failing run.
func TestPower(t *testing.T) {
	runs := 1000
	test := simulated()
	failedAt, _ := simulate(runs, test, baseRatio, 2*baseRatio)
	rate := float64(len(failedAt)) / float64(runs)
	mean, p95 := meanP95(failedAt)
	t.Logf("%d runs, error ratio %.2f %% vs %.2f %% (minEffect %.0f %%): %d failed (%.1f %%) within %d slices per group; slices per group at the failure: mean %.1f, p95 %.0f",
		runs, 100*baseRatio, 200*baseRatio, 100*test.MinEffect, len(failedAt), 100*rate, maxSlices, mean, p95)
	if rate < 0.95 {
		t.Errorf("%.1f %% of runs with a doubled error ratio failed, want at least 95 %%", 100*rate)
	}
}

func BenchmarkDecide(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	control := sliceRatios(rng, 60, baseRatio, requests)
	experiment := sliceRatios(rng, 60, baseRatio, requests)
	test := simulated()
	for b.Loop() {
		test.Decide(control, experiment, 56)
	}
}
