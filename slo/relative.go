package slo

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Relative is a tolerance that compares a probe's value with a reference
// measured by slogate instead of a fixed number: the probe's own recent
// past (Baseline) or a control group measured at the same time (Compare).
// Fixed thresholds must be found by hand for every service and go wrong
// after every traffic change; a relative one says "no worse than usual".
type Relative struct {
	// Exactly one of Baseline and Compare is set.
	Baseline *BaselineSpec
	Compare  *CompareSpec
	// Bounds on the value v against the reference r; every one set must
	// hold: v <= r × (1 + MaxIncrease), v >= r × (1 − MaxDecrease),
	// |v − r| <= MaxDelta. Without Test at least one is set.
	MaxIncrease, MaxDecrease, MaxDelta *float64
	// Test, with Compare only, decides on per-slice samples of both
	// groups with a statistical test instead of bounds.
	Test *StatTest
}

// BaselineSpec is where the baseline is taken: the average of the probe's
// query over Window, ending Offset before the reference time (the start of
// the run that watches the hypothesis, frozen for the run; else trailing,
// now).
type BaselineSpec struct {
	Window time.Duration
	Offset time.Duration
	// Step is the resolution of the average (a subquery step).
	Step time.Duration
}

// CompareSpec measures the probe's query in two groups: Control and
// Experiment are label matchers added to every series selector of the
// query (ControlQuery, ExperimentQuery).
type CompareSpec struct {
	Control, Experiment           string
	ControlQuery, ExperimentQuery string
	// Window and Step are where the samples of a Test come from: the
	// query's value every Step since the run started, or over the trailing
	// Window outside runs.
	Window, Step time.Duration
}

// StatTest is a statistical comparison of the two groups' samples.
type StatTest struct {
	Method     string // TestMannWhitney
	Confidence float64
	// MinEffect is the smallest relative worsening that matters: the test
	// fails when the experiment is worse by at least this much with
	// Confidence, and passes when the data rule out a worsening that large.
	MinEffect  float64
	MinSamples int
	// Worse is the direction that is worse: increase (error ratios,
	// latency) or decrease (throughput, success ratio).
	Worse Direction
}

// Direction is which way a value gets worse.
type Direction string

const (
	WorseIncrease Direction = "increase"
	WorseDecrease Direction = "decrease"
)

// TestMannWhitney is the one statistical test slogate runs.
const TestMannWhitney = "mann-whitney"

// Defaults of relative tolerances.
const (
	DefaultBaselineStep  = time.Minute
	DefaultCompareStep   = time.Minute
	DefaultCompareWindow = 30 * time.Minute
	DefaultConfidence    = 0.95
	DefaultMinSamples    = 10
)

// Mode names the kind of relative tolerance: baseline, compare or
// mann-whitney.
func (r *Relative) Mode() string {
	switch {
	case r.Baseline != nil:
		return "baseline"
	case r.Test != nil:
		return r.Test.Method
	}
	return "compare"
}

// Holds reports whether v is within the bounds around the reference ref.
// A NaN on either side never holds: the caller says what no data means.
func (r *Relative) Holds(v, ref float64) bool {
	if math.IsNaN(v) || math.IsNaN(ref) {
		return false
	}
	if r.MaxIncrease != nil && v > ref*(1+*r.MaxIncrease) {
		return false
	}
	if r.MaxDecrease != nil && v < ref*(1-*r.MaxDecrease) {
		return false
	}
	if r.MaxDelta != nil && math.Abs(v-ref) > *r.MaxDelta {
		return false
	}
	return true
}

// String renders the tolerance as the API and the UI show it, e.g.
// "≤ baseline(1h) +50%" or "mann-whitney experiment vs control, 95%, effect 10%".
func (r *Relative) String() string {
	var ref string
	switch {
	case r.Baseline != nil:
		ref = "baseline(" + FormatDuration(r.Baseline.Window)
		if r.Baseline.Offset > 0 {
			ref += " offset " + FormatDuration(r.Baseline.Offset)
		}
		ref += ")"
	default:
		ref = "control " + r.Compare.Control
	}
	if t := r.Test; t != nil {
		return fmt.Sprintf("%s: experiment %s vs %s, confidence %s, minEffect %s, worse on %s",
			t.Method, r.Compare.Experiment, ref, percentText(t.Confidence), percentText(t.MinEffect), t.Worse)
	}
	var parts []string
	if r.MaxIncrease != nil {
		parts = append(parts, "+"+percentText(*r.MaxIncrease))
	}
	if r.MaxDecrease != nil {
		parts = append(parts, "-"+percentText(*r.MaxDecrease))
	}
	if r.MaxDelta != nil {
		parts = append(parts, "±"+formatFloat(*r.MaxDelta))
	}
	s := "within " + strings.Join(parts, ", ") + " of " + ref
	if r.Compare != nil {
		s = "experiment " + r.Compare.Experiment + " " + s
	}
	return s
}

func percentText(v float64) string { return formatFloat(math.Round(v*1e6)/1e4) + "%" }

// groupQuery adds the matchers of a group selector ({zone="a"}) to every
// series selector of a probe's query.
func groupQuery(query, selector string) (string, error) {
	ms, err := promql.ParseMetricSelector(selector)
	if err != nil {
		return "", fmt.Errorf("invalid label matchers %q: %s; write them like {zone=\"eu-1a\"}", selector, parseErrorText(err))
	}
	for _, m := range ms {
		if m.Name == model.MetricNameLabel {
			return "", fmt.Errorf("%q matches on the metric name; a group selects series by their labels, like {zone=\"eu-1a\"}", selector)
		}
	}
	if len(ms) == 0 {
		return "", fmt.Errorf("%q has no label matchers", selector)
	}
	return InjectMatchers(query, ms)
}

// BaselineQuery is the PromQL of the baseline of a probe's query: its
// average over the window at the step, evaluated at the window's end (the
// reference time less the offset).
func (b *BaselineSpec) BaselineQuery(query string) string {
	return "avg_over_time((" + query + ")[" + model.Duration(b.Window).String() + ":" + model.Duration(b.Step).String() + "])"
}
