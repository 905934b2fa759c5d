package rules

import (
	"maps"
	"time"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/slo"
)

// Values of the type label of EventsMetric.
const (
	EventsBad   = "bad"
	EventsTotal = "total"
)

// bucketRules record the events of the last bucketStep (eventExprs).
func bucketRules(s *sli) ([]rulefmt.Rule, error) {
	bad, total, err := s.events(bucketStep)
	if err != nil {
		return nil, err
	}
	return []rulefmt.Rule{
		{Record: EventsMetric, Expr: bad.String(), Labels: eventLabels(s, EventsBad)},
		{Record: EventsMetric, Expr: total.String(), Labels: eventLabels(s, EventsTotal)},
	}, nil
}

// events are the bad and total events in the w before each evaluation:
// rates over w of the indicator queries times w in seconds, which is what
// increase() gives for counters and also works for the time-weighted raw
// indicators, whose events are seconds.
func (s *sli) events(w time.Duration) (bad, total parser.Expr, err error) {
	secs := number(w.Seconds())
	if s.raw {
		// A raw ratio is clamped to [0, 1] like the evaluator does, and
		// NaN (a 0/0 ratio) is dropped by the comparison rather than
		// poisoning 30 days of sums: such a bucket counts as no data.
		r, err := s.ratio(w)
		if err != nil {
			return nil, nil, err
		}
		known := binary(parser.GTE, call("clamp", r, number(0), number(1)), number(0))
		return binary(parser.MUL, known, secs), binary(parser.ADD, binary(parser.MUL, known, number(0)), secs), nil
	}
	b, err := s.bad(w)
	if err != nil {
		return nil, nil, err
	}
	t, err := s.total(w)
	if err != nil {
		return nil, nil, err
	}
	if s.slices {
		return b, t, nil // counts of time slices already
	}
	return binary(parser.MUL, b, secs), binary(parser.MUL, t, secs), nil
}

// EventQueries are the PromQL of an SLO's bad and total events in the w
// before each evaluation, the expressions the buckets style records for
// 5m: summed step by step they give any span's counts (a calendar period's
// so far, in backtest).
func EventQueries(o *slo.SLO, w time.Duration) (bad, total string, err error) {
	s, err := newSLI(o)
	if err != nil {
		return "", "", err
	}
	b, t, err := s.events(w)
	if err != nil {
		return "", "", err
	}
	return b.String(), t.String(), nil
}

func eventLabels(s *sli, typ string) map[string]string {
	l := maps.Clone(sloLabels(s.o))
	l["type"] = typ
	return l
}

// bucketWindowRules compute each window as the bad buckets over the total
// buckets inside it. Until the buckets cover a window (30 days after the
// rules were loaded, for a 30d SLO) its ratio is that of the part covered.
func bucketWindowRules(s *sli) []rulefmt.Rule {
	lbls := sloLabels(s.o)
	sum := func(typ string, w time.Duration) parser.Expr {
		sel := idLabels(s.o)
		sel["type"] = typ
		return call("sum_over_time", &parser.MatrixSelector{VectorSelector: selector(EventsMetric, sel), Range: w})
	}
	var out []rulefmt.Rule
	for _, w := range RecordedWindows(s.o) {
		ratio := binary(parser.DIV, sum(EventsBad, w), sum(EventsTotal, w))
		// The two sides carry different type labels.
		ratio.(*parser.BinaryExpr).VectorMatching = &parser.VectorMatching{Card: parser.CardOneToOne, MatchingLabels: []string{"type"}}
		out = append(out, rulefmt.Rule{Record: SLIErrorMetric(w), Expr: ratio.String(), Labels: lbls})
	}
	return out
}
