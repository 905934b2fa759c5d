package slo

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Events is an indicator normalized into the event queries everything else
// reads: the evaluator measures slices with them, `slogate rules` records
// them, and backtests replay them, so the three cannot disagree about what
// an SLO counts. Every field is a template with {{.window}} to fill in
// (FillWindow) that returns a per-second rate over the window.
//
// Bad and Good exclusive; with Good, bad = total - good. Raw marks a
// time-weighted error-ratio SLI, whose "events" are seconds, and then the
// other three are empty.
type Events struct {
	Bad, Good, Total string
	Raw              string
	// Ratio, when set, is the error ratio written directly, equal to
	// (total - good) / total: a native histogram's 1 - histogram_fraction.
	// Recording rules read better with it; the counts are the same.
	Ratio string
	// Slices says Bad and Total answer counts of time slices in the
	// window, not per-second rates (a Timeslices SLO).
	Slices bool
}

// Key identifies the measurement: two SLOs (or two versions of one) with
// the same key count the same events.
func (e Events) Key() string {
	return strings.Join([]string{e.Bad, e.Good, e.Total, e.Raw}, "\x00")
}

// Templates are the non-empty templates, bad, good, total, raw in order.
func (e Events) Templates() []string {
	var out []string
	for _, t := range []string{e.Bad, e.Good, e.Total, e.Raw} {
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}

// Events normalizes the SLO's indicator. A latency indicator becomes the
// good requests (the bucket of the threshold, or histogram_fraction for a
// native histogram) and all requests, built from the parsed selector so
// that label values stay escaped.
func (o *SLO) Events() (Events, error) {
	if o.Timeslices != nil {
		return o.timesliceEvents()
	}
	ind := o.Indicator
	switch {
	case ind.Ratio != nil:
		return Events{Bad: ind.Ratio.Errors, Good: ind.Ratio.Good, Total: ind.Ratio.Total}, nil
	case ind.Raw != nil:
		return Events{Raw: ind.Raw.ErrorRatio}, nil
	case ind.Latency != nil:
		e, err := latencyEvents(ind.Latency)
		if err != nil {
			return Events{}, fmt.Errorf("slo %q: %w", o.Name, err)
		}
		return e, nil
	}
	return Events{}, fmt.Errorf("slo %q: no indicator", o.Name)
}

func latencyEvents(l *LatencyIndicator) (Events, error) {
	expr, err := promql.ParseExpr(l.Histogram)
	if err != nil {
		return Events{}, fmt.Errorf("latency histogram %q: %w", l.Histogram, err)
	}
	vs, ok := expr.(*parser.VectorSelector)
	if !ok {
		return Events{}, fmt.Errorf("latency histogram %q: must be a series selector", l.Histogram)
	}
	name := vs.Name
	var matchers []*labels.Matcher
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel {
			if name == "" && m.Type == labels.MatchEqual {
				name = m.Value
			}
			continue
		}
		matchers = append(matchers, m)
	}
	if name == "" {
		return Events{}, fmt.Errorf("latency histogram %q: needs a metric name", l.Histogram)
	}
	rate := func(metric string, extra ...*labels.Matcher) parser.Expr {
		ms := append(append([]*labels.Matcher{}, matchers...), extra...)
		sel := &parser.VectorSelector{Name: metric, LabelMatchers: append(ms, labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, metric))}
		call := &parser.Call{
			Func: parser.Functions["rate"],
			Args: parser.Expressions{&parser.MatrixSelector{VectorSelector: sel, Range: windowSentinel}},
		}
		return &parser.AggregateExpr{Op: parser.SUM, Expr: call}
	}
	if l.Native {
		count := &parser.Call{Func: parser.Functions["histogram_count"], Args: parser.Expressions{rate(name)}}
		frac := &parser.Call{Func: parser.Functions["histogram_fraction"], Args: parser.Expressions{
			&parser.NumberLiteral{Val: 0}, &parser.NumberLiteral{Val: l.Threshold}, rate(name),
		}}
		good := &parser.BinaryExpr{Op: parser.MUL, LHS: frac, RHS: count, VectorMatching: &parser.VectorMatching{Card: parser.CardOneToOne}}
		ratio := &parser.BinaryExpr{Op: parser.SUB, LHS: &parser.NumberLiteral{Val: 1}, RHS: frac}
		return Events{Good: templated(good), Total: templated(count), Ratio: templated(ratio)}, nil
	}
	le, err := labels.NewMatcher(labels.MatchRegexp, model.BucketLabel, leSpellings(l.Threshold))
	if err != nil {
		return Events{}, fmt.Errorf("latency threshold %v: %w", l.Threshold, err)
	}
	return Events{Good: templated(rate(name+"_bucket", le)), Total: templated(rate(name + "_count"))}, nil
}

// leSpellings matches the bucket bound of threshold however it is written:
// Prometheus 3 normalizes le values to floats ("1" becomes "1.0"), older
// exporters and backends may not.
func leSpellings(threshold float64) string {
	thr := strconv.FormatFloat(threshold, 'f', -1, 64)
	spellings := []string{thr}
	if !strings.ContainsAny(thr, ".eE") {
		spellings = append(spellings, thr+".0")
	}
	for i, s := range spellings {
		spellings[i] = strings.ReplaceAll(s, ".", `\.`)
	}
	return strings.Join(spellings, "|")
}

// templated prints a tree built with windowSentinel ranges as a template.
func templated(e parser.Expr) string {
	return strings.ReplaceAll(e.String(), "["+model.Duration(windowSentinel).String()+"]", "["+WindowPlaceholder+"]")
}

// Counts are events: bad ones and all of them.
type Counts struct {
	Bad, Total float64
}

// Add returns c + d.
func (c Counts) Add(d Counts) Counts { return Counts{Bad: c.Bad + d.Bad, Total: c.Total + d.Total} }

// Rates are what the event queries of one slice answered, as per-second
// rates; a Has flag is false when the query returned no series.
type Rates struct {
	Bad, Good, Total, Raw             float64
	HasBad, HasGood, HasTotal, HasRaw bool
}

// SliceCounts turns the rates measured over a slice of length step into
// event counts. A missing total is no traffic: neither an error nor good. A
// missing numerator with a total counts as no bad events for Bad ("no 5xx
// series yet" is the common case) and as all bad for Good (no good
// requests). A raw error ratio is clamped to [0, 1] and counts seconds.
func (e Events) SliceCounts(step time.Duration, r Rates) Counts {
	if e.Slices {
		// Counts of time slices already: bad ones (or bad shares) and all.
		if !r.HasTotal || math.IsNaN(r.Total) || r.Total <= 0 {
			return Counts{}
		}
		bad := 0.0
		if r.HasBad && !math.IsNaN(r.Bad) {
			bad = math.Max(0, math.Min(r.Bad, r.Total))
		}
		return Counts{Bad: bad, Total: r.Total}
	}
	secs := step.Seconds()
	if e.Raw != "" {
		if !r.HasRaw || math.IsNaN(r.Raw) || math.IsInf(r.Raw, 0) {
			return Counts{}
		}
		return Counts{Bad: math.Max(0, math.Min(1, r.Raw)) * secs, Total: secs}
	}
	if !r.HasTotal || math.IsNaN(r.Total) || r.Total <= 0 {
		return Counts{}
	}
	c := Counts{Total: r.Total * secs}
	if e.Good != "" {
		if r.HasGood && !math.IsNaN(r.Good) {
			c.Bad = (r.Total - r.Good) * secs
		} else {
			c.Bad = c.Total
		}
	} else if r.HasBad && !math.IsNaN(r.Bad) {
		c.Bad = r.Bad * secs
	}
	c.Bad = math.Max(0, math.Min(c.Bad, c.Total))
	return c
}
