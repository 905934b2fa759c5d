package stats

import (
	"fmt"
	"math"
)

// Direction says which way is worse for the measured value: a verdict
// needs it because a 10 % rise is a regression for an error ratio and an
// improvement for throughput.
type Direction int

const (
	// Increase is the zero value because most steady-state indicators
	// (error ratios, latency) get worse by rising.
	Increase Direction = iota
	Decrease
)

func (d Direction) String() string {
	switch d {
	case Increase:
		return "increase"
	case Decrease:
		return "decrease"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// Test is a comparison of an experiment group with a control group.
//
// A difference alone is not what matters: with enough slices any
// difference is significant, and a chaos experiment is meant to cost a
// little. MinEffect says how much worse counts, and the two one-sided
// tests around it (TOST) let a run end either way: fail when the
// experiment is worse by MinEffect or more, pass when a worsening of
// MinEffect is ruled out.
type Test struct {
	Confidence float64 // e.g. 0.95; the level is 1 − Confidence
	MinEffect  float64 // smallest relative worsening that matters, > 0 (0.1 = 10 %)
	MinSamples int     // per group; fewer gives TooFew
	Worse      Direction
}

// Decision is the outcome of one look.
type Decision string

const (
	Pass         Decision = "pass"         // enough data to rule out a worsening of MinEffect or more
	Fail         Decision = "fail"         // worse than control by at least MinEffect, with Confidence
	Inconclusive Decision = "inconclusive" // enough samples but neither: keep looking
	TooFew       Decision = "too-few"      // fewer than MinSamples in a group: never a pass for lack of data
)

// Result is a Decision with what it was made from, so that a verdict can
// be explained and rechecked.
type Result struct {
	Decision                        Decision
	Control, Experiment             int     // finite samples used; NaN and ±Inf are dropped
	ControlMedian, ExperimentMedian float64 // NaN for an empty group
	PFail, PPass                    float64 // one-sided p-values of the two tests; NaN when TooFew
	Alpha                           float64 // the level this look was held to
}

// Validate reports the first setting that would make Decide meaningless.
// Confidence is at least 0.5 so that the two tests can never both reject
// (a one-sided p-value is below 0.5 only when the opposite one is above
// it). MinSamples is at least 3 because with two slices per group even a
// complete separation has p ≈ 0.12: it could not fail at any usual confidence.
func (t Test) Validate() error {
	if !(t.Confidence >= 0.5 && t.Confidence < 1) {
		return fmt.Errorf("confidence must be at least 0.5 and below 1, got %v", t.Confidence)
	}
	switch t.Worse {
	case Increase:
		if !(t.MinEffect > 0) || math.IsInf(t.MinEffect, 1) {
			return fmt.Errorf("minEffect must be a finite number above 0, got %v", t.MinEffect)
		}
	case Decrease:
		if !(t.MinEffect > 0 && t.MinEffect < 1) {
			return fmt.Errorf("minEffect must be above 0 and below 1 when lower is worse (a drop of 100 %% or more cannot happen), got %v", t.MinEffect)
		}
	default:
		return fmt.Errorf("worse must be increase or decrease, got %v", t.Worse)
	}
	if t.MinSamples < 3 {
		return fmt.Errorf("minSamples must be at least 3, got %d", t.MinSamples)
	}
	return nil
}

// Decide compares the samples of one look.
//
// look is the 1-based number of this look in a run that decides again at
// every evaluation cycle as slices accrue; look ≤ 0 means a single test.
// Testing the growing data again and again at the full level would fail
// a healthy run far more often than 1 − Confidence (every look is another
// chance), so look k is held to alpha/(k(k+1)): those levels add up to
// alpha over any number of looks (the sum of 1/(k(k+1)) is 1), which
// bounds the chance of a false verdict over the whole run by alpha
// without knowing in advance how many looks there will be. The price is
// that late looks need stronger evidence.
//
// Fail is checked first, so that a worsening is never reported as
// anything else.
//
// Decide expects a Test that Validate accepts; samples are assumed
// non-negative, as a relative effect means nothing otherwise.
func (t Test) Decide(control, experiment []float64, look int) Result {
	control, experiment = sortedFinite(control), sortedFinite(experiment)
	r := Result{
		Control:          len(control),
		Experiment:       len(experiment),
		ControlMedian:    median(control),
		ExperimentMedian: median(experiment),
		PFail:            math.NaN(),
		PPass:            math.NaN(),
		Alpha:            t.level(look),
	}
	if r.Control < t.MinSamples || r.Experiment < t.MinSamples || r.Control == 0 || r.Experiment == 0 {
		r.Decision = TooFew
		return r
	}

	// The threshold is control moved by MinEffect towards worse; the
	// experiment is compared with it rather than with control itself.
	// Scaling by a positive factor keeps the (own) copy sorted.
	scale := 1 + t.MinEffect
	if t.Worse == Decrease {
		scale = 1 - t.MinEffect
	}
	threshold := control
	for i := range threshold {
		threshold[i] *= scale
	}

	u, sd, mean := mannWhitneySorted(experiment, threshold)
	above := upperTail(u, mean, sd)        // experiment stochastically greater than threshold
	below := upperTail(2*mean-u, mean, sd) // … stochastically less: U of threshold is n·m − u
	r.PFail, r.PPass = above, below
	if t.Worse == Decrease {
		r.PFail, r.PPass = below, above
	}

	switch {
	case r.PFail < r.Alpha:
		r.Decision = Fail
	case r.PPass < r.Alpha:
		r.Decision = Pass
	default:
		r.Decision = Inconclusive
	}
	return r
}

// level is the significance level spent on one look (see Decide).
func (t Test) level(look int) float64 {
	alpha := 1 - t.Confidence
	if look <= 0 {
		return alpha
	}
	k := float64(look)
	return alpha / (k * (k + 1))
}

// median of sorted values; NaN for none.
func median(sorted []float64) float64 {
	n := len(sorted)
	switch {
	case n == 0:
		return math.NaN()
	case n%2 == 1:
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
