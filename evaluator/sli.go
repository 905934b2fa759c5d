package evaluator

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/slo"
)

// sliQueries are the templates that give an SLO's events over {{.window}}.
// bad and good are exclusive; with good, bad = total - good. raw marks a
// time-weighted error-ratio SLI, whose "events" are seconds.
type sliQueries struct {
	bad, good, total string
	raw              string
}

// key identifies the measurement, so a reload that keeps an SLO's queries
// keeps its buffers (and does not backfill again).
func (q sliQueries) key() string {
	return strings.Join([]string{q.bad, q.good, q.total, q.raw}, "\x00")
}

func sliQueriesFor(o *slo.SLO) (sliQueries, error) {
	ind := o.Indicator
	switch {
	case ind.Ratio != nil:
		return sliQueries{bad: ind.Ratio.Errors, good: ind.Ratio.Good, total: ind.Ratio.Total}, nil
	case ind.Raw != nil:
		return sliQueries{raw: ind.Raw.ErrorRatio}, nil
	case ind.Latency != nil:
		return latencyQueries(ind.Latency)
	}
	return sliQueries{}, fmt.Errorf("slo %q: no indicator", o.Name)
}

// windowPlaceholder is substituted into rendered PromQL and then replaced
// by the template marker; it is a valid duration so the tree can be built.
const windowPlaceholder = 1234567 * time.Millisecond

// latencyQueries builds good/total templates for a histogram. The selector is
// parsed and rebuilt rather than pasted, so matchers stay correctly escaped.
func latencyQueries(l *slo.LatencyIndicator) (sliQueries, error) {
	expr, err := promqlParser.ParseExpr(l.Histogram)
	if err != nil {
		return sliQueries{}, fmt.Errorf("latency histogram %q: %w", l.Histogram, err)
	}
	vs, ok := expr.(*parser.VectorSelector)
	if !ok {
		return sliQueries{}, fmt.Errorf("latency histogram %q: must be a series selector", l.Histogram)
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
		return sliQueries{}, fmt.Errorf("latency histogram %q: needs a metric name", l.Histogram)
	}
	rate := func(metric string, extra ...*labels.Matcher) string {
		ms := append(append([]*labels.Matcher{}, matchers...), extra...)
		sel := &parser.VectorSelector{Name: metric, LabelMatchers: append(ms, labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, metric))}
		call := &parser.Call{
			Func: parser.Functions["rate"],
			Args: parser.Expressions{&parser.MatrixSelector{VectorSelector: sel, Range: windowPlaceholder}},
		}
		return (&parser.AggregateExpr{Op: parser.SUM, Expr: call}).String()
	}
	thr := strconv.FormatFloat(l.Threshold, 'f', -1, 64)
	if l.Native {
		h := rate(name)
		total := "histogram_count(" + h + ")"
		good := "histogram_fraction(0, " + thr + ", " + h + ") * " + total
		return withWindow(sliQueries{good: good, total: total}), nil
	}
	// Prometheus 3 normalises le values to floats ("1" becomes "1.0"), older
	// exporters and backends may not: match both spellings.
	spellings := []string{thr}
	if !strings.ContainsAny(thr, ".eE") {
		spellings = append(spellings, thr+".0")
	}
	for i, s := range spellings {
		spellings[i] = strings.ReplaceAll(s, ".", `\.`)
	}
	le := labels.MustNewMatcher(labels.MatchRegexp, "le", strings.Join(spellings, "|"))
	return withWindow(sliQueries{
		good:  rate(name+"_bucket", le),
		total: rate(name + "_count"),
	}), nil
}

func withWindow(q sliQueries) sliQueries {
	ph := model.Duration(windowPlaceholder).String()
	f := func(s string) string { return strings.ReplaceAll(s, "["+ph+"]", "[{{.window}}]") }
	q.bad, q.good, q.total, q.raw = f(q.bad), f(q.good), f(q.total), f(q.raw)
	return q
}

// fill substitutes a window into a template. Both `{{.window}}` and
// `{{ .window }}` are accepted, as Sloth writes either.
func fill(tmpl string, window time.Duration) string {
	if tmpl == "" {
		return ""
	}
	w := model.Duration(window).String()
	if !strings.Contains(tmpl, "window") {
		return tmpl
	}
	for _, marker := range []string{"{{.window}}", "{{ .window }}", "{{ .window}}", "{{.window }}"} {
		tmpl = strings.ReplaceAll(tmpl, marker, w)
	}
	return tmpl
}

// sliceCounts turns the per-second rates measured over one slice into event
// counts. hasTotal=false means no traffic: not an error, not good either.
func (q sliQueries) sliceCounts(step time.Duration, bad, good, total, raw float64, hasBad, hasGood, hasTotal, hasRaw bool) counts {
	secs := step.Seconds()
	if q.raw != "" {
		if !hasRaw || math.IsNaN(raw) || math.IsInf(raw, 0) {
			return counts{}
		}
		return counts{bad: clamp01(raw) * secs, total: secs}
	}
	if !hasTotal || math.IsNaN(total) || total <= 0 {
		return counts{}
	}
	c := counts{total: total * secs}
	if q.good != "" {
		if hasGood && !math.IsNaN(good) {
			c.bad = (total - good) * secs
		} else {
			c.bad = c.total
		}
	} else if hasBad && !math.IsNaN(bad) {
		c.bad = bad * secs
	}
	if c.bad < 0 {
		c.bad = 0
	}
	if c.bad > c.total {
		c.bad = c.total
	}
	return c
}

func clamp01(v float64) float64 {
	return math.Max(0, math.Min(1, v))
}

var promqlParser = parser.NewParser(parser.Options{})
