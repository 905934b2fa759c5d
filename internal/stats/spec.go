package stats

import "github.com/slogate/slogate/slo"

// FromSpec is the test a definition's statistical tolerance asks for, the
// one the evaluator and the backtest both run.
func FromSpec(t *slo.StatTest) Test {
	out := Test{Confidence: t.Confidence, MinEffect: t.MinEffect, MinSamples: t.MinSamples, Worse: Increase}
	if t.Worse == slo.WorseDecrease {
		out.Worse = Decrease
	}
	return out
}
