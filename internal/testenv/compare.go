package testenv

import "math"

// RelErr is the relative error of got against want, for comparisons of
// error ratios and budgets: 0 when they are equal, 0 against 0 included (a
// window without errors on both sides agrees; dividing would give NaN,
// which fails every tolerance), +Inf when only want is 0, and NaN when
// either is NaN, so that a missing value never passes.
func RelErr(got, want float64) float64 {
	if got == want {
		return 0
	}
	return math.Abs(got-want) / math.Abs(want)
}
