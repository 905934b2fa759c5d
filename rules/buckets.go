package rules

import (
	"maps"
	"time"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// Values of the type label of EventsMetric.
const (
	EventsBad   = "bad"
	EventsTotal = "total"
)

// bucketRules record the events of the last bucketStep: rates over 5m of
// the indicator queries times 300 seconds, which is what increase() gives
// for counters and also works for the time-weighted raw indicators, whose
// events are seconds.
func bucketRules(s *sli) ([]rulefmt.Rule, error) {
	secs := number(bucketStep.Seconds())
	var bad, total parser.Expr
	if s.raw {
		// A raw ratio is clamped to [0, 1] like the evaluator does, and
		// NaN (a 0/0 ratio) is dropped by the comparison rather than
		// poisoning 30 days of sums: such a bucket counts as no data.
		r, err := s.ratio(bucketStep)
		if err != nil {
			return nil, err
		}
		known := binary(parser.GTE, call("clamp", r, number(0), number(1)), number(0))
		bad = binary(parser.MUL, known, secs)
		total = binary(parser.ADD, binary(parser.MUL, known, number(0)), secs)
	} else {
		b, err := s.bad(bucketStep)
		if err != nil {
			return nil, err
		}
		t, err := s.total(bucketStep)
		if err != nil {
			return nil, err
		}
		bad, total = binary(parser.MUL, b, secs), binary(parser.MUL, t, secs)
	}
	return []rulefmt.Rule{
		{Record: EventsMetric, Expr: bad.String(), Labels: eventLabels(s, EventsBad)},
		{Record: EventsMetric, Expr: total.String(), Labels: eventLabels(s, EventsTotal)},
	}, nil
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
