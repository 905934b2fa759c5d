package slo

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
)

// Timeslices makes an SLO count time slices instead of events (OpenSLO's
// Timeslices and RatioTimeslices budgeting methods): the window is cut into
// slices of Window, and the SLO's objective is the share of good slices.
//
// With Timeslices a slice is good when its SLI reaches Target (a ratio
// indicator's good share, or a threshold indicator's condition); with
// RatioTimeslices (Ratio) each slice counts its good share, so the SLI is
// the mean of the slices' ratios. A slice without data counts as NoData
// says.
type Timeslices struct {
	Window time.Duration
	// Target is the good share a slice's SLI must reach (0.99); unused by
	// RatioTimeslices and threshold indicators.
	Target float64
	Ratio  bool
	NoData SliceNoData
}

// SliceNoData is what a slice without data counts as.
type SliceNoData string

// No-data policies of time slices.
const (
	SliceSkip SliceNoData = "skip" // not counted: neither good nor bad
	SliceGood SliceNoData = "good" // good, as OpenSLO's "low traffic is as important" examples count it against nothing
	SliceBad  SliceNoData = "bad"
)

// Method names the budgeting method, as the API and UI show it.
func (t *Timeslices) Method() string {
	switch {
	case t == nil:
		return "occurrences"
	case t.Ratio:
		return "ratioTimeslices"
	}
	return "timeslices"
}

// ThresholdIndicator is a value compared with a tolerance in each time
// slice (OpenSLO's thresholdMetric): p99 latency under 300 ms in every
// minute, say. Query is an instant query, evaluated at the end of each
// slice; several series must all hold.
type ThresholdIndicator struct {
	Query     string
	Tolerance Tolerance
}

// timesliceEvents are the events of a time-slice SLO: slices. Bad and
// Total are templates whose {{.window}} is the span measured (a fine or
// hourly slice of the evaluator, a window of backtest); they count, with a
// subquery at the time-slice resolution, the bad slices (for
// RatioTimeslices, the sum of their bad shares) and the slices counted in
// it. The answers are counts, not rates (Events.Slices).
func (o *SLO) timesliceEvents() (Events, error) {
	ts := o.Timeslices
	w := model.Duration(ts.Window).String()
	good, err := o.sliceGood(ts)
	if err != nil {
		return Events{}, err
	}
	switch ts.NoData {
	case SliceGood:
		good = "(" + good + ") or vector(1)"
	case SliceBad:
		good = "(" + good + ") or vector(0)"
	}
	bad := fmt.Sprintf("sum_over_time((1 - (%s))[%s:%s])", good, WindowPlaceholder, w)
	total := fmt.Sprintf("count_over_time((%s)[%s:%s])", good, WindowPlaceholder, w)
	for _, q := range []string{bad, total} {
		if _, err := promql.ParseExpr(FillWindow(q, time.Hour)); err != nil {
			return Events{}, fmt.Errorf("time-slice query %q: %w", q, err)
		}
	}
	return Events{Bad: bad, Total: total, Slices: true}, nil
}

// sliceGood is the PromQL of one time slice's good share, ending at each
// evaluation: 1 or 0 for Timeslices (is it good?), the good ratio for
// RatioTimeslices, and no sample when the slice has no data.
func (o *SLO) sliceGood(ts *Timeslices) (string, error) {
	if th := o.Indicator.Threshold; th != nil {
		q := "(" + th.Query + ")"
		var cond string
		t := th.Tolerance
		f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
		if t.Op == OpBetween {
			cond = fmt.Sprintf("(%s >= bool %s) * (%s <= bool %s)", q, f(t.Value), q, f(t.Value2))
		} else {
			cond = fmt.Sprintf("%s %s bool %s", q, t.Op, f(t.Value))
		}
		// Every series must hold; NaN (no data in the slice) is no sample.
		return fmt.Sprintf("min((%s) and (%s == %s))", cond, q, q), nil
	}
	base := *o
	base.Timeslices = nil
	ev, err := base.Events()
	if err != nil {
		return "", err
	}
	fill := func(tmpl string) string { return "(" + FillWindow(tmpl, ts.Window) + ")" }
	var ratio, known string // the slice's error ratio, and the condition that it has traffic
	switch {
	case ev.Raw != "":
		ratio = "clamp(avg(" + FillWindow(ev.Raw, ts.Window) + "), 0, 1)"
		known = ratio + " == " + ratio
	case ev.Good != "":
		ratio = "(1 - sum" + fill(ev.Good) + " / sum" + fill(ev.Total) + ")"
		known = "sum" + fill(ev.Total) + " > 0"
	default:
		ratio = "((sum" + fill(ev.Bad) + " or vector(0)) / sum" + fill(ev.Total) + ")"
		known = "sum" + fill(ev.Total) + " > 0"
	}
	if ts.Ratio {
		return fmt.Sprintf("(1 - %s) and (%s)", ratio, known), nil
	}
	// A slice exactly on the target is good; 1e-9 absorbs the float noise
	// of the ratio of two extrapolated rates.
	return fmt.Sprintf("(%s <= bool %s) and (%s)", ratio, strconv.FormatFloat(1-ts.Target+1e-9, 'g', 12, 64), known), nil
}

// validate checks what the loaders cannot check field by field.
func (ts *Timeslices) validate() error {
	switch {
	case ts.Window < time.Minute:
		return fmt.Errorf("time slices of %s: at least 1m, so that a slice holds two samples at the usual scrape intervals", FormatDuration(ts.Window))
	case time.Hour%ts.Window != 0:
		return fmt.Errorf("time slices of %s: must divide an hour evenly (1m, 2m, 5m, 10m, 15m, 30m, 1h)", FormatDuration(ts.Window))
	}
	return nil
}
