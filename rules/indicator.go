package rules

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/slo"
)

// promql parses with default options: the syntax a stock Prometheus
// accepts, since that is what loads the rule files.
var promql = parser.NewParser(parser.Options{})

// sli builds the PromQL of an SLO's indicator for any window from the
// SLO's event queries (slo.Events), the same queries the evaluator measures
// slices with, so that rules and slogate agree on the numbers:
//
//   - every query is summed (sum() unless it already is one), because the
//     evaluator adds up the series of each answer;
//   - a missing numerator (errors, good) counts as 0 events, since "no 5xx
//     series yet" is the common case and not missing data, while a missing
//     total is no traffic, which leaves the ratio empty;
//   - with good events, bad = total - good;
//   - a raw error ratio is time-weighted: its events are seconds.
type sli struct {
	o *slo.SLO
	// bad and total return per-second event rates over the window; ratio
	// the error ratio. bad and total are nil for raw indicators.
	bad, total, ratio func(w time.Duration) (parser.Expr, error)
	raw               bool
	// slices says bad and total count time slices in the window instead
	// of giving rates (slo.Events.Slices).
	slices bool
}

func newSLI(o *slo.SLO) (*sli, error) {
	ev, err := o.Events()
	if err != nil {
		return nil, err
	}
	s := &sli{o: o, slices: ev.Slices}
	switch {
	case ev.Raw != "":
		s.raw = true
		s.ratio = s.templateAvg(ev.Raw)
	case ev.Ratio != "":
		// A direct error ratio (a native histogram's 1 - histogram_fraction):
		// already one series, recorded as it is.
		s.ratio, s.total = s.parsed(ev.Ratio), s.parsed(ev.Total)
		s.bad = func(w time.Duration) (parser.Expr, error) {
			r, err := s.ratio(w)
			if err != nil {
				return nil, err
			}
			t, err := s.total(w)
			if err != nil {
				return nil, err
			}
			return binary(parser.MUL, r, t), nil
		}
	case ev.Bad != "":
		errs, total := s.template(ev.Bad), s.template(ev.Total)
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
	default:
		s.fromGood(s.template(ev.Good), s.template(ev.Total))
	}
	return s, nil
}

// parsed parses an event query with the window filled in, as it is.
func (s *sli) parsed(q string) func(time.Duration) (parser.Expr, error) {
	return func(w time.Duration) (parser.Expr, error) {
		filled := slo.FillWindow(q, w)
		e, err := promql.ParseExpr(filled)
		if err != nil {
			// The loader parsed the same query; failing here is a bug.
			return nil, fmt.Errorf("%w: slo %q: query %q: %w", ErrInternal, s.o.Name, filled, err)
		}
		return e, nil
	}
}

// template parses an indicator query with the window filled in, summed.
func (s *sli) template(q string) func(time.Duration) (parser.Expr, error) {
	return s.wrapped(q, summed)
}

// templateAvg is template for a raw error ratio: several series (one per
// instance, say) are averaged, as the evaluator does, since adding ratios
// could exceed 1.
func (s *sli) templateAvg(q string) func(time.Duration) (parser.Expr, error) {
	return s.wrapped(q, averaged)
}

func (s *sli) wrapped(q string, wrap func(parser.Expr) parser.Expr) func(time.Duration) (parser.Expr, error) {
	parse := s.parsed(q)
	return func(w time.Duration) (parser.Expr, error) {
		e, err := parse(w)
		if err != nil {
			return nil, err
		}
		return wrap(e), nil
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

// selector is name{label="value",...} with the labels sorted by the printer.
func selector(name string, lbls map[string]string) *parser.VectorSelector {
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, name)}
	for k, v := range lbls {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, k, v))
	}
	return &parser.VectorSelector{Name: name, LabelMatchers: ms}
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
