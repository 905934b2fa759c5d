// Package stats holds the statistics behind a verdict: a rank test that
// compares an experiment group of per-slice samples with a control group,
// and the rule that turns its p-values into pass, fail or "not yet".
//
// Per-slice error ratios and latencies are skewed, bounded below and full
// of ties (many slices see no error at all), so a rank test is used rather
// than a t-test: it assumes no distribution, and one bad slice cannot move
// it further than one rank.
package stats

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// MannWhitneyGreater tests the alternative "x is stochastically greater
// than y" against the null that both come from one distribution. It
// returns U of x (the pairs with x > y, ties counting one half) and the
// one-sided p-value of the normal approximation with tie and continuity
// corrections, the p-value that scipy.stats.mannwhitneyu(x, y,
// alternative="greater", method="asymptotic") and R's wilcox.test(x, y,
// alternative="greater", exact=FALSE, correct=TRUE) give, so that a
// verdict can be checked with either.
//
// The approximation rather than the exact distribution: ties are the rule
// in slogate's data, and the exact distribution without ties would be
// wrong for them.
//
// NaN and ±Inf are left out, as R leaves them out: a slice whose ratio
// had no requests has nothing to rank. An empty group, or a pooled sample
// of one repeated value, carries no evidence either way: p is 1, never NaN.
func MannWhitneyGreater(x, y []float64) (u, p float64) {
	u, sd, mean := mannWhitneyU(x, y)
	return u, upperTail(u, mean, sd)
}

// mannWhitneyU returns U of x, and the mean and the standard deviation
// (reduced for ties) of U under the null, over the finite values.
func mannWhitneyU(x, y []float64) (u, sd, mean float64) {
	return mannWhitneySorted(sortedFinite(x), sortedFinite(y))
}

// mannWhitneySorted is mannWhitneyU of sorted, finite samples. Both
// one-sided tests of a pair come from one call, which is why Decide uses
// it rather than MannWhitneyGreater twice: U of y is n·m − U of x.
//
// It counts pairs directly in one merge of the two sorted groups rather
// than summing ranks: for each run of equal values, every x in the run
// beats the y below it and ties the y in it. The run's size t also gives
// its t³ − t, what ties take away from the variance.
func mannWhitneySorted(xs, ys []float64) (u, sd, mean float64) {
	if len(xs) == 0 || len(ys) == 0 {
		return 0, 0, 0
	}
	var ties float64
	i, j := 0, 0
	for i < len(xs) || j < len(ys) {
		// v: the smallest value not yet counted, from either group.
		v := ys[min(j, len(ys)-1)]
		if j == len(ys) || (i < len(xs) && xs[i] < v) {
			v = xs[i]
		}
		ix, jy := i, j
		for i < len(xs) && xs[i] == v {
			i++
		}
		for j < len(ys) && ys[j] == v {
			j++
		}
		inX, inY := float64(i-ix), float64(j-jy)
		u += inX * (float64(jy) + inY/2)
		t := inX + inY
		ties += t*t*t - t
	}

	n, m := float64(len(xs)), float64(len(ys))
	total := n + m
	mean = n * m / 2
	variance := n * m / 12 * ((total + 1) - ties/(total*(total-1)))
	if variance <= 0 { // every value equal: U sits at its mean
		return u, 0, mean
	}
	return u, math.Sqrt(variance), mean
}

// upperTail is P(U ≥ u) under the null, by the normal approximation with
// U moved half a unit towards its mean: U is discrete and the normal is
// not, and without the half unit small groups would show more evidence
// than they hold.
func upperTail(u, mean, sd float64) float64 {
	if sd == 0 {
		return 1
	}
	z := (u - mean - 0.5) / sd
	// CDF(−z) rather than 1 − CDF(z): the same number, but without losing
	// the digits of a small p to cancellation.
	return distuv.UnitNormal.CDF(-z)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// sortedFinite is a sorted copy of the finite values of xs.
func sortedFinite(xs []float64) []float64 {
	out := make([]float64, 0, len(xs))
	for _, x := range xs {
		if finite(x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}
