package evaluator

import (
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Batching: past Prometheus's fixed cost per query (about 0.6 ms of CPU
// whatever it reads), the lever is the number of queries. SLOs whose
// newest-slice queries differ only in the values of equality matchers (one
// SLO per job, say) are asked as one grouped query,
//
//	sum by (job) (rate(x{job=~"a|b|c", code=~"5.."}[2m]))
//
// and the answer is split by label into the answers each SLO would have
// got, which are put in the cycle's cache under the SLO's own query. Only
// the plain shape sum(rate(selector[range])) is grouped; anything else is
// asked as it is.

// batchShape is a query of the shape sum(rate(selector[range])).
type batchShape struct {
	query    string
	name     string
	rng      time.Duration
	fixed    []*labels.Matcher // matchers other than equality ones
	eq       map[string]string // equality matchers
	function string
	key      string
}

func parseBatchShape(q string) (*batchShape, bool) {
	expr, err := promqlParser.ParseExpr(q)
	if err != nil {
		return nil, false
	}
	agg, ok := expr.(*parser.AggregateExpr)
	if !ok || agg.Op != parser.SUM || len(agg.Grouping) > 0 || agg.Without || agg.Param != nil {
		return nil, false
	}
	call, ok := agg.Expr.(*parser.Call)
	if !ok || (call.Func.Name != "rate" && call.Func.Name != "increase") || len(call.Args) != 1 {
		return nil, false
	}
	ms, ok := call.Args[0].(*parser.MatrixSelector)
	if !ok {
		return nil, false
	}
	vs, ok := ms.VectorSelector.(*parser.VectorSelector)
	if !ok || vs.Offset != 0 || vs.Timestamp != nil || vs.StartOrEnd != 0 || vs.Name == "" {
		return nil, false
	}
	s := &batchShape{query: q, name: vs.Name, rng: ms.Range, eq: map[string]string{}, function: call.Func.Name}
	for _, m := range vs.LabelMatchers {
		switch {
		case m.Name == model.MetricNameLabel:
		case m.Type == labels.MatchEqual && m.Value != "":
			s.eq[m.Name] = m.Value
		default:
			// Only printed: without the compiled regular expression, which
			// 10,000 SLOs would otherwise each keep (1.4 KB apiece).
			s.fixed = append(s.fixed, &labels.Matcher{Type: m.Type, Name: m.Name, Value: m.Value})
		}
	}
	s.key = s.groupKey()
	return s, true
}

// groupKey groups shapes that can share a query: same metric, function, range,
// non-equality matchers and set of equality labels.
func (s *batchShape) groupKey() string {
	var b strings.Builder
	b.WriteString(s.function + "\x00" + s.name + "\x00" + s.rng.String())
	fixed := make([]string, 0, len(s.fixed))
	for _, m := range s.fixed {
		fixed = append(fixed, m.String())
	}
	sort.Strings(fixed)
	for _, f := range fixed {
		b.WriteString("\x00" + f)
	}
	b.WriteString("\x01")
	for _, l := range sortedNames(s.eq) {
		b.WriteString("\x00" + l)
	}
	return b.String()
}

// groupQuery builds the grouped query of shapes with the same key, or ""
// when grouping would not save anything.
func groupQuery(shapes []*batchShape) (query string, by []string) {
	if len(shapes) < 2 {
		return "", nil
	}
	first := shapes[0]
	values := map[string]map[string]bool{}
	for _, s := range shapes {
		for l, v := range s.eq {
			if values[l] == nil {
				values[l] = map[string]bool{}
			}
			values[l][v] = true
		}
	}
	matchers := append([]*labels.Matcher{}, first.fixed...)
	for _, l := range sortedNames(values) {
		vs := sortedNames(values[l])
		if len(vs) == 1 {
			matchers = append(matchers, labels.MustNewMatcher(labels.MatchEqual, l, vs[0]))
			continue
		}
		quoted := make([]string, len(vs))
		for i, v := range vs {
			quoted[i] = regexp.QuoteMeta(v)
		}
		// Only printed: compiling an alternation of 10,000 values every
		// cycle cost more than the query.
		matchers = append(matchers, &labels.Matcher{Type: labels.MatchRegexp, Name: l, Value: strings.Join(quoted, "|")})
		by = append(by, l)
	}
	if len(by) == 0 {
		return "", nil // identical queries are deduplicated anyway
	}
	sel := &parser.VectorSelector{Name: first.name, LabelMatchers: append(matchers, labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, first.name))}
	call := &parser.Call{Func: parser.Functions[first.function], Args: parser.Expressions{&parser.MatrixSelector{VectorSelector: sel, Range: first.rng}}}
	agg := &parser.AggregateExpr{Op: parser.SUM, Expr: call, Grouping: by}
	return agg.String(), by
}

// splitAnswer indexes a grouped answer by its grouping labels; the function
// returns the answer one member would have got on its own (an empty one for
// a member with no series).
func splitAnswer(v model.Value, by []string) (func(tuple string) model.Value, bool) {
	switch val := v.(type) {
	case model.Vector:
		bySeries := map[string]*model.Sample{}
		for _, s := range val {
			bySeries[tupleKey(s.Metric, by)] = s
		}
		return func(tuple string) model.Value {
			if s, ok := bySeries[tuple]; ok {
				return model.Vector{{Metric: model.Metric{}, Value: s.Value, Timestamp: s.Timestamp}}
			}
			return model.Vector{}
		}, true
	case model.Matrix:
		bySeries := map[string]*model.SampleStream{}
		for _, s := range val {
			bySeries[tupleKey(s.Metric, by)] = s
		}
		return func(tuple string) model.Value {
			if s, ok := bySeries[tuple]; ok {
				return model.Matrix{{Metric: model.Metric{}, Values: s.Values}}
			}
			return model.Matrix{}
		}, true
	default:
		return nil, false
	}
}

func tupleKey(m model.Metric, by []string) string {
	var b strings.Builder
	for _, l := range by {
		b.WriteString(string(m[model.LabelName(l)]))
		b.WriteByte(0)
	}
	return b.String()
}

// promqlParser parses with default options: the syntax a stock Prometheus
// accepts.
var promqlParser = parser.NewParser(parser.Options{})
