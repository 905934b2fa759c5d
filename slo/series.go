package slo

import "math"

// JudgeSeries applies the hypothesis' series policy to the values of a probe
// that returned several series (in label order). With "all" the first value
// out of tolerance fails the probe; with "any" the first value within
// tolerance passes it. When no value decides, a NaN among them, or no value
// at all, is no data (ok false); else the first value stands for the others
// (all within tolerance, or none). index is the value that decides.
func (h *Hypothesis) JudgeSeries(values []float64, tol *Tolerance) (index int, holds, ok bool) {
	first, nan := -1, false
	for i, v := range values {
		if math.IsNaN(v) {
			nan = true
			continue
		}
		if first < 0 {
			first = i
		}
		if tol.Holds(v) == (h.Series == SeriesAny) {
			return i, h.Series == SeriesAny, true
		}
	}
	if nan || first < 0 {
		return -1, false, false
	}
	return first, h.Series != SeriesAny, true
}
