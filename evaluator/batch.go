package evaluator

import (
	"context"
	"regexp"
	"sort"
	"strings"
	"sync"
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
			s.fixed = append(s.fixed, m)
		}
	}
	s.key = s.groupKey()
	return s, true
}

// batchShapes are the tracker's newest-slice queries that can be grouped,
// parsed once: the queries of a tracker never change.
func (t *sloTracker) batchShapes() []*batchShape {
	t.batchOnce.Do(func() {
		q := t.queries
		for _, tmpl := range []string{q.bad, q.good, q.total} {
			if tmpl == "" {
				continue
			}
			if s, ok := parseBatchShape(fill(tmpl, max(t.fine.step, t.minRange))); ok {
				t.batch = append(t.batch, s)
			}
		}
	})
	return t.batch
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
	for _, l := range sortedKeys(s.eq) {
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
	for _, l := range sortedKeys(values) {
		vs := sortedKeys(values[l])
		if len(vs) == 1 {
			matchers = append(matchers, labels.MustNewMatcher(labels.MatchEqual, l, vs[0]))
			continue
		}
		quoted := make([]string, len(vs))
		for i, v := range vs {
			quoted[i] = regexp.QuoteMeta(v)
		}
		m, err := labels.NewMatcher(labels.MatchRegexp, l, strings.Join(quoted, "|"))
		if err != nil {
			return "", nil
		}
		matchers = append(matchers, m)
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

// sliceRequest is what fetchSlices asks for slices a..b of a ring: an
// instant query at the end of a single slice, a range query otherwise.
type sliceRequest struct {
	r    Range
	span bool // a range query
}

func requestFor(r *ring, a, b int64) sliceRequest {
	return sliceRequest{r: Range{Start: r.end(a), End: r.end(b), Step: r.step}, span: a != b}
}

func (q sliceRequest) cacheKey(query string) string {
	if q.span {
		return rangeKey(query, q.r)
	}
	return instantKey(query, q.r.End)
}

// prefetchBatched asks the fine and start-edge slices that SLOs are about to
// fetch as grouped queries and primes the cycle's cache with the split
// answers: the newest slice every cycle, the start-edge slices of the long
// windows, which come due for every SLO in the same cycle of the hour, and
// the runs of fine slices missing after a start, a restart from a snapshot
// or an outage, which are the same for SLOs that started together. Hourly
// slices at start are asked per SLO.
func (e *Evaluator) prefetchBatched(ctx context.Context, f *cycleFetcher, slos map[string]*sloState, at time.Time) {
	type group struct {
		req    sliceRequest
		shapes map[string]*batchShape // by query
	}
	groups := map[string]*group{}
	add := func(req sliceRequest, shapes []*batchShape) {
		for _, s := range shapes {
			key := s.key + "\x02" + req.cacheKey("")
			g := groups[key]
			if g == nil {
				g = &group{req: req, shapes: map[string]*batchShape{}}
				groups[key] = g
			}
			g.shapes[s.query] = s
		}
	}
	for _, st := range slos {
		tr := st.tracker
		newest := tr.fine.sliceOf(at)
		shapes := tr.batchShapes()
		if len(shapes) == 0 {
			continue
		}
		for _, run := range tr.fineRuns(at) {
			for _, c := range (ringRun{ring: tr.fine, run: run}).chunks() {
				add(requestFor(tr.fine, c[0], c[1]), shapes)
			}
		}
		for _, rr := range tr.tailRuns(at, newest) {
			for _, c := range rr.chunks() {
				add(requestFor(rr.ring, c[0], c[1]), shapes)
			}
		}
	}
	// Groups of range queries are cut so that an answer holds at most
	// maxGroupPoints points: a start of 10,000 SLOs would otherwise ask for
	// 10h of 30 s slices of all of them in one answer of hundreds of MB.
	var wg sync.WaitGroup
	for _, key := range sortedKeys(groups) {
		g := groups[key]
		members := make([]*batchShape, 0, len(g.shapes))
		for _, q := range sortedKeys(g.shapes) {
			members = append(members, g.shapes[q])
		}
		points := 1
		if g.req.span {
			points = int(g.req.r.End.Sub(g.req.r.Start)/g.req.r.Step) + 1
		}
		size := max(2, maxGroupPoints/points)
		for len(members) > 0 {
			n := min(size, len(members))
			wg.Add(1)
			go func(req sliceRequest, members []*batchShape) {
				defer wg.Done()
				e.askGrouped(ctx, f, req, members)
			}(g.req, members[:n])
			members = members[n:]
		}
	}
	wg.Wait()
}

// maxGroupPoints bounds the points of one grouped answer.
const maxGroupPoints = 200_000

// askGrouped asks one grouped query for members and primes the cache with
// each member's share of the answer.
func (e *Evaluator) askGrouped(ctx context.Context, f *cycleFetcher, req sliceRequest, members []*batchShape) {
	query, by := groupQuery(members)
	if query == "" {
		return
	}
	var v model.Value
	var err error
	if req.span {
		v, err = f.rangeQuery(ctx, query, req.r)
	} else {
		v, err = f.instant(ctx, query, req.r.End)
	}
	if err != nil {
		// The members ask for themselves; their errors are counted then.
		return
	}
	answers, ok := splitAnswer(v, by)
	if !ok {
		return
	}
	for _, m := range members {
		key := make(model.Metric, len(by))
		for _, l := range by {
			key[model.LabelName(l)] = model.LabelValue(m.eq[l])
		}
		f.prime(req.cacheKey(m.query), answers(tupleKey(key, by)))
	}
	e.metrics.batched.Add(float64(len(members) - 1))
}

// answered reports whether every fine and start-edge slice query the tracker
// is about to make at `at` is in f's cache already, answered by grouped
// queries: such an SLO asks Prometheus nothing, so there is nothing to
// spread and its verdict need not wait.
func (t *sloTracker) answered(f *cycleFetcher, at time.Time) bool {
	var reqs []sliceRequest
	for _, run := range t.fineRuns(at) {
		for _, c := range (ringRun{ring: t.fine, run: run}).chunks() {
			reqs = append(reqs, requestFor(t.fine, c[0], c[1]))
		}
	}
	for _, rr := range t.tailRuns(at, t.fine.sliceOf(at)) {
		for _, c := range rr.chunks() {
			reqs = append(reqs, requestFor(rr.ring, c[0], c[1]))
		}
	}
	q := t.queries
	for _, req := range reqs {
		for _, tmpl := range []string{q.bad, q.good, q.total, q.raw} {
			if tmpl != "" && !f.cached(req.cacheKey(fill(tmpl, max(req.r.Step, t.minRange)))) {
				return false
			}
		}
	}
	return true
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
