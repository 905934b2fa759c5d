package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/slo"
)

// promql parses with default options: the syntax a stock Prometheus
// accepts, since that is what loads the rule files.
var promql = parser.NewParser(parser.Options{})

// sli builds the PromQL of an SLO's indicator for any window. It follows
// the evaluator's arithmetic (evaluator/sli.go), so that rules and slogate
// agree on the numbers:
//
//   - every query is summed (sum() unless it already is one), because the
//     evaluator adds up the series of each answer;
//   - a missing numerator (errors, good, good buckets) counts as 0 events,
//     since "no 5xx series yet" is the common case and not missing data,
//     while a missing total is no traffic, which leaves the ratio empty;
//   - with good events, bad = total - good;
//   - a raw error ratio is time-weighted: its events are seconds.
type sli struct {
	o *slo.SLO
	// bad and total return per-second event rates over the window; ratio
	// the error ratio. bad and total are nil for raw indicators.
	bad, total, ratio func(w time.Duration) (parser.Expr, error)
	raw               bool
}

func newSLI(o *slo.SLO) (*sli, error) {
	s := &sli{o: o}
	ind := o.Indicator
	switch {
	case ind.Ratio != nil && ind.Ratio.Errors != "":
		errs, total := s.template(ind.Ratio.Errors), s.template(ind.Ratio.Total)
		s.total = total
		s.bad = func(w time.Duration) (parser.Expr, error) {
			e, err := errs(w)
			return orZero(e), err
		}
		s.ratio = func(w time.Duration) (parser.Expr, error) {
			bad, err := s.bad(w)
			if err != nil {
				return nil, err
			}
			t, err := total(w)
			if err != nil {
				return nil, err
			}
			return binary(parser.DIV, bad, t), nil
		}
	case ind.Ratio != nil:
		s.fromGood(s.template(ind.Ratio.Good), s.template(ind.Ratio.Total))
	case ind.Latency != nil && ind.Latency.Native:
		if err := s.native(ind.Latency); err != nil {
			return nil, err
		}
	case ind.Latency != nil:
		good, total, err := classicLatency(ind.Latency)
		if err != nil {
			return nil, fmt.Errorf("slo %q: %w", o.Name, err)
		}
		s.fromGood(good, total)
	case ind.Raw != nil:
		s.raw = true
		s.ratio = s.templateAvg(ind.Raw.ErrorRatio)
	default:
		return nil, fmt.Errorf("slo %q: no indicator", o.Name)
	}
	return s, nil
}

// template parses an indicator query with the window filled in, summed.
func (s *sli) template(q string) func(time.Duration) (parser.Expr, error) {
	return func(w time.Duration) (parser.Expr, error) {
		filled := slo.FillWindow(q, w)
		e, err := promql.ParseExpr(filled)
		if err != nil {
			// The loader parsed the same query; failing here is a bug.
			return nil, fmt.Errorf("%w: slo %q: query %q: %w", ErrInternal, s.o.Name, filled, err)
		}
		return summed(e), nil
	}
}

// templateAvg is template for a raw error ratio: several series (one per
// instance, say) are averaged, as the evaluator does, since adding ratios
// could exceed 1.
func (s *sli) templateAvg(q string) func(time.Duration) (parser.Expr, error) {
	return func(w time.Duration) (parser.Expr, error) {
		filled := slo.FillWindow(q, w)
		e, err := promql.ParseExpr(filled)
		if err != nil {
			return nil, fmt.Errorf("%w: slo %q: query %q: %w", ErrInternal, s.o.Name, filled, err)
		}
		return averaged(e), nil
	}
}

// averaged makes e one series: an aggregation without grouping stays as it
// is, a scalar becomes vector(e), anything else is wrapped in avg().
func averaged(e parser.Expr) parser.Expr {
	inner := e
	for {
		p, ok := inner.(*parser.ParenExpr)
		if !ok {
			break
		}
		inner = p.Expr
	}
	if a, ok := inner.(*parser.AggregateExpr); ok && len(a.Grouping) == 0 && !a.Without {
		return e
	}
	if e.Type() == parser.ValueTypeScalar {
		return call("vector", e)
	}
	return &parser.AggregateExpr{Op: parser.AVG, Expr: e}
}

// fromGood sets bad = total - good and ratio = 1 - good/total.
func (s *sli) fromGood(good, total func(time.Duration) (parser.Expr, error)) {
	both := func(w time.Duration) (g, t parser.Expr, err error) {
		if g, err = good(w); err != nil {
			return nil, nil, err
		}
		t, err = total(w)
		return orZero(g), t, err
	}
	s.total = total
	s.bad = func(w time.Duration) (parser.Expr, error) {
		g, t, err := both(w)
		if err != nil {
			return nil, err
		}
		return binary(parser.SUB, t, g), nil
	}
	s.ratio = func(w time.Duration) (parser.Expr, error) {
		g, t, err := both(w)
		if err != nil {
			return nil, err
		}
		return binary(parser.SUB, number(1), binary(parser.DIV, g, t)), nil
	}
}

// native handles a native histogram: the share above the threshold is
// 1 - histogram_fraction(0, threshold, h).
func (s *sli) native(l *slo.LatencyIndicator) error {
	vs, err := histogramSelector(l.Histogram)
	if err != nil {
		return fmt.Errorf("slo %q: %w", s.o.Name, err)
	}
	h := func(w time.Duration) parser.Expr {
		return summed(rateOf(cloneSelector(vs, vs.Name), w))
	}
	s.ratio = func(w time.Duration) (parser.Expr, error) {
		frac := call("histogram_fraction", number(0), number(l.Threshold), h(w))
		return binary(parser.SUB, number(1), frac), nil
	}
	s.total = func(w time.Duration) (parser.Expr, error) {
		return call("histogram_count", h(w)), nil
	}
	s.bad = func(w time.Duration) (parser.Expr, error) {
		r, _ := s.ratio(w)
		t, _ := s.total(w)
		return binary(parser.MUL, r, t), nil
	}
	return nil
}

// classicLatency returns the good and total templates of a classic
// histogram: requests in the bucket of the threshold, and all requests.
// Like the evaluator, the le matcher accepts "1" and "1.0": Prometheus 3
// normalises le values to floats, older exporters and backends may not.
func classicLatency(l *slo.LatencyIndicator) (good, total func(time.Duration) (parser.Expr, error), err error) {
	vs, err := histogramSelector(l.Histogram)
	if err != nil {
		return nil, nil, err
	}
	thr := strconv.FormatFloat(l.Threshold, 'f', -1, 64)
	spellings := []string{thr}
	if !strings.ContainsAny(thr, ".eE") {
		spellings = append(spellings, thr+".0")
	}
	for i, sp := range spellings {
		spellings[i] = strings.ReplaceAll(sp, ".", `\.`)
	}
	le, err := labels.NewMatcher(labels.MatchRegexp, model.BucketLabel, strings.Join(spellings, "|"))
	if err != nil {
		return nil, nil, fmt.Errorf("latency threshold %s: %w", thr, err)
	}
	good = func(w time.Duration) (parser.Expr, error) {
		return summed(rateOf(cloneSelector(vs, vs.Name+"_bucket", le), w)), nil
	}
	total = func(w time.Duration) (parser.Expr, error) {
		return summed(rateOf(cloneSelector(vs, vs.Name+"_count"), w)), nil
	}
	return good, total, nil
}

// histogramSelector parses the histogram of a latency indicator into a
// selector with its metric name in Name.
func histogramSelector(sel string) (*parser.VectorSelector, error) {
	e, err := promql.ParseExpr(sel)
	if err != nil {
		return nil, fmt.Errorf("%w: latency histogram %q: %w", ErrInternal, sel, err)
	}
	vs, ok := e.(*parser.VectorSelector)
	if !ok {
		return nil, fmt.Errorf("%w: latency histogram %q: not a series selector", ErrInternal, sel)
	}
	if vs.Name == "" {
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
				vs.Name = m.Value
			}
		}
	}
	if vs.Name == "" {
		return nil, fmt.Errorf("%w: latency histogram %q: no metric name", ErrInternal, sel)
	}
	return vs, nil
}

// cloneSelector copies vs under another metric name with extra matchers.
// Matchers are kept as parsed objects, so user label values stay escaped
// when the selector is printed.
func cloneSelector(vs *parser.VectorSelector, name string, extra ...*labels.Matcher) *parser.VectorSelector {
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, name)}
	for _, m := range vs.LabelMatchers {
		if m.Name != model.MetricNameLabel {
			ms = append(ms, m)
		}
	}
	return &parser.VectorSelector{Name: name, LabelMatchers: append(ms, extra...)}
}

// selector is name{label="value",...} with the labels sorted by the printer.
func selector(name string, lbls map[string]string) *parser.VectorSelector {
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, name)}
	for k, v := range lbls {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, k, v))
	}
	return &parser.VectorSelector{Name: name, LabelMatchers: ms}
}

func rateOf(vs *parser.VectorSelector, w time.Duration) parser.Expr {
	return call("rate", &parser.MatrixSelector{VectorSelector: vs, Range: w})
}

// summed makes e one series without labels, as the evaluator sees it: a
// plain sum() stays as it is, a scalar becomes vector(e), anything else
// is wrapped in sum().
func summed(e parser.Expr) parser.Expr {
	inner := e
	for {
		p, ok := inner.(*parser.ParenExpr)
		if !ok {
			break
		}
		inner = p.Expr
	}
	if a, ok := inner.(*parser.AggregateExpr); ok && a.Op == parser.SUM && len(a.Grouping) == 0 && !a.Without {
		return inner
	}
	if e.Type() == parser.ValueTypeScalar {
		return call("vector", e)
	}
	return &parser.AggregateExpr{Op: parser.SUM, Expr: e}
}

// orZero is e or vector(0): no series means no events.
func orZero(e parser.Expr) parser.Expr {
	return &parser.BinaryExpr{
		Op: parser.LOR, LHS: e, RHS: call("vector", number(0)),
		VectorMatching: &parser.VectorMatching{Card: parser.CardManyToMany},
	}
}

func call(name string, args ...parser.Expr) parser.Expr {
	return &parser.Call{Func: parser.Functions[name], Args: args}
}

func number(v float64) parser.Expr { return &parser.NumberLiteral{Val: v} }

// binary builds lhs op rhs, parenthesising operands that are binary
// expressions themselves, so the printed text means what the tree does
// whatever the precedence.
func binary(op parser.ItemType, lhs, rhs parser.Expr) parser.Expr {
	b := &parser.BinaryExpr{Op: op, LHS: paren(lhs), RHS: paren(rhs)}
	if lhs.Type() == parser.ValueTypeVector && rhs.Type() == parser.ValueTypeVector {
		b.VectorMatching = &parser.VectorMatching{Card: parser.CardOneToOne}
		if op == parser.LAND || op == parser.LOR || op == parser.LUNLESS {
			b.VectorMatching.Card = parser.CardManyToMany
		}
	}
	return b
}

func paren(e parser.Expr) parser.Expr {
	if _, ok := e.(*parser.BinaryExpr); ok {
		return &parser.ParenExpr{Expr: e}
	}
	return e
}
