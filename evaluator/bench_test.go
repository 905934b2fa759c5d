package evaluator_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/slo"
)

// constQuerier answers every query at once: errors 1/s, totals 100/s, one
// series, or one per job for a grouped `sum by (job)` query. It counts
// queries so the benchmark can report them.
type constQuerier struct {
	instant, ranges atomic.Int64
	// groups is how many zones the discovery of a grouped SLO (group by
	// (zone)) finds; 0 means 3.
	groups int
	mu     sync.Mutex
	unions map[string][]unionTerm // parsed unions
}

func (c *constQuerier) value(q string) model.SampleValue {
	switch {
	case strings.Contains(q, `code=~"5.."`):
		return 1
	case strings.HasPrefix(q, "1 - "): // a raw error ratio, between 0 and 1
		return 0.01
	}
	return 100
}

var (
	groupedBy     = regexp.MustCompile(`^sum by \((\w+)\)`)
	groupedValues = regexp.MustCompile(`(\w+)=~"([^"]*)"`)
)

// series are the label sets of q's answer: one per value of a batched
// query, one per zone of a discovery.
func (c *constQuerier) series(q string) []model.Metric {
	if strings.HasPrefix(q, "group by (zone)") {
		out := make([]model.Metric, max(c.groups, 3))
		for i := range out {
			out[i] = model.Metric{"zone": model.LabelValue(fmt.Sprintf("z%d", i))}
		}
		return out
	}
	by := groupedBy.FindStringSubmatch(q)
	if by == nil {
		return []model.Metric{{}}
	}
	for _, m := range groupedValues.FindAllStringSubmatch(q, -1) {
		if m[1] != by[1] {
			continue
		}
		var out []model.Metric
		for v := range strings.SplitSeq(m[2], "|") {
			out = append(out, model.Metric{model.LabelName(by[1]): model.LabelValue(v)})
		}
		return out
	}
	return []model.Metric{{}}
}

func (c *constQuerier) Query(_ context.Context, q string, ts time.Time) (model.Value, error) {
	c.instant.Add(1)
	var v model.Vector
	if strings.Contains(q, unionMarker) {
		// A union: each term's answer, with its union label.
		for _, t := range c.unionTerms(q) {
			for _, m := range c.series(t.query) {
				lm := m.Clone()
				lm["__slogate_union"] = model.LabelValue(t.index)
				v = append(v, &model.Sample{Metric: lm, Value: c.value(t.query), Timestamp: model.TimeFromUnixNano(ts.UnixNano())})
			}
		}
		return v, nil
	}
	val := c.value(q) // once: a grouped query names 10,000 members
	for _, m := range c.series(q) {
		v = append(v, &model.Sample{Metric: m, Value: val, Timestamp: model.TimeFromUnixNano(ts.UnixNano())})
	}
	return v, nil
}

// unionMarker is where a term of a union names its index.
const unionMarker = `, "__slogate_union", "`

// unionTerm is one member of a union: its query and its index.
type unionTerm struct{ query, index string }

// unionTerms are the members of the union q, parsed once per union (the
// same unions come every cycle, and the benchmark times the querier too).
func (c *constQuerier) unionTerms(q string) []unionTerm {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ts, ok := c.unions[q]; ok {
		return ts
	}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	if err != nil {
		panic(fmt.Sprintf("the evaluator asked an invalid union: %v", err))
	}
	var ts []unionTerm
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if call, ok := n.(*parser.Call); ok && call.Func.Name == "label_replace" {
			if dst, ok := call.Args[1].(*parser.StringLiteral); ok && dst.Val == "__slogate_union" {
				ts = append(ts, unionTerm{call.Args[0].String(), call.Args[2].(*parser.StringLiteral).Val})
			}
		}
		return nil
	})
	if c.unions == nil {
		c.unions = map[string][]unionTerm{}
	}
	c.unions[q] = ts
	return ts
}

func (c *constQuerier) QueryRange(_ context.Context, q string, r evaluator.Range) (model.Value, error) {
	c.ranges.Add(1)
	var out model.Matrix
	val := c.value(q)
	for _, m := range c.series(q) {
		ss := &model.SampleStream{Metric: m}
		for t := r.Start; !t.After(r.End); t = t.Add(r.Step) {
			ss.Values = append(ss.Values, model.SamplePair{Timestamp: model.TimeFromUnixNano(t.UnixNano()), Value: val})
		}
		out = append(out, ss)
	}
	return out, nil
}

func benchSet(n int) *slo.Set {
	set := &slo.Set{}
	for i := range n {
		job := fmt.Sprintf("svc-%d", i)
		set.SLOs = append(set.SLOs, &slo.SLO{
			Name: job + "-availability", Service: job, Objective: 99.9, Window: 30 * 24 * time.Hour,
			Indicator: slo.Indicator{Ratio: &slo.RatioIndicator{
				Errors: fmt.Sprintf(`sum(rate(http_requests_total{job=%q,code=~"5.."}[{{.window}}]))`, job),
				Total:  fmt.Sprintf(`sum(rate(http_requests_total{job=%q}[{{.window}}]))`, job),
			}},
			Alerting: slo.Alerting{Enabled: true, Page: slo.AlertTier{Enabled: true}, Ticket: slo.AlertTier{Enabled: true}},
		})
	}
	return set
}

// BenchmarkEvaluationCycle measures one steady-state evaluation cycle (the
// newest slice of every SLO, windows summed from the buffers, alert
// tiers), after the backfill, against a Querier that costs nothing: what
// is left is slogate's own CPU.
//
// SLOGATE_BENCH_CYCLE_SLOS sets the SLO counts (default 100,1000,10000;
// 50000 shows how it scales). Grouped SLOs differ only in a label value;
// heterogeneous ones each have their own metric, so that their newest
// slices are asked in unions.
func BenchmarkEvaluationCycle(b *testing.B) {
	counts := []int{100, 1000, 10000}
	if env := os.Getenv("SLOGATE_BENCH_CYCLE_SLOS"); env != "" {
		counts = nil
		for f := range strings.SplitSeq(env, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("SLOGATE_BENCH_CYCLE_SLOS=%q: %q is not a count of SLOs", env, f)
			}
			counts = append(counts, n)
		}
	}
	for _, shape := range []string{"grouped", "heterogeneous"} {
		for _, n := range counts {
			benchmarkCycle(b, shape, n)
		}
	}
}

func benchmarkCycle(b *testing.B, shape string, n int) {
	name := fmt.Sprintf("slos=%d", n)
	if shape != "grouped" {
		name = fmt.Sprintf("shape=%s/slos=%d", shape, n)
	}
	b.Run(name, func(b *testing.B) {
		q := &constQuerier{}
		at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
		set := benchSet(n)
		if shape == "heterogeneous" {
			set = heterogeneousBenchSet(n)
		}
		// Heap held per SLO: buffers, statuses and definitions, after backfill.
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, slotsBefore := evaluator.SlotMemory()
		ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return at }})
		if err != nil {
			b.Fatal(err)
		}
		if err := ev.SetDefinitions(set); err != nil {
			b.Fatal(err)
		}
		ev.Evaluate(context.Background(), at) // backfill
		runtime.GC()
		runtime.ReadMemStats(&after)
		heapPerSLO := float64(after.HeapAlloc-min(after.HeapAlloc, before.HeapAlloc)) / float64(n)
		_, slotsAfter := evaluator.SlotMemory()
		slotsPerSLO := float64(slotsAfter-slotsBefore) / float64(n)
		q.instant.Store(0)
		q.ranges.Store(0)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			at = at.Add(30 * time.Second)
			ev.Evaluate(context.Background(), at)
		}
		b.StopTimer()
		b.ReportMetric(heapPerSLO, "heap-bytes/slo")
		b.ReportMetric(slotsPerSLO, "slot-bytes/slo")
		b.ReportMetric(float64(q.instant.Load())/float64(b.N)/float64(n), "instant-queries/slo")
		b.ReportMetric(float64(q.ranges.Load())/float64(b.N)/float64(n), "range-queries/slo")
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
		if st, _ := ev.SLO(set.SLOs[0].Name); !st.Fresh {
			b.Fatalf("SLO not fresh after the benchmark: %+v", st)
		}
	})
}

// heterogeneousBenchSet is benchSet with a metric of its own per SLO: no
// two can be grouped by label values.
func heterogeneousBenchSet(n int) *slo.Set {
	set := benchSet(n)
	for i, o := range set.SLOs {
		m := fmt.Sprintf("svc%d_requests_total", i)
		o.Indicator.Ratio.Errors = `sum(rate(` + m + `{code=~"5.."}[{{.window}}]))`
		o.Indicator.Ratio.Total = `sum(rate(` + m + `[{{.window}}]))`
	}
	return set
}

// BenchmarkBackfill measures filling the buffers of SLOs from nothing.
func BenchmarkBackfill(b *testing.B) {
	set := benchSet(100)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		q := &constQuerier{}
		at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
		ev, _ := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return at }})
		if err := ev.SetDefinitions(set); err != nil {
			b.Fatal(err)
		}
		ev.Evaluate(context.Background(), at)
	}
}

// BenchmarkGroupedCycle measures one steady-state cycle of one SLO grouped
// by zone with n groups (maxGroups raised to n), after the groups were
// found and backfilled: the heap each group holds (its buffers, status and
// derived definition) and the queries per cycle, which batching keeps at a
// few whatever n (the groups' newest slices differ only in the zone).
func BenchmarkGroupedCycle(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("groups=%d", n), func(b *testing.B) {
			q := &constQuerier{groups: n}
			at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
			def := benchSet(1).SLOs[0]
			def.Name, def.GroupBy, def.MaxGroups = "zones", []string{"zone"}, n
			// Heap held per group, the aggregate's share included.
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return at }})
			if err != nil {
				b.Fatal(err)
			}
			if err := ev.SetDefinitions(&slo.Set{SLOs: []*slo.SLO{def}}); err != nil {
				b.Fatal(err)
			}
			ev.Evaluate(context.Background(), at) // the aggregate's backfill, the discovery
			ev.Evaluate(context.Background(), at) // the groups' backfill
			runtime.GC()
			runtime.ReadMemStats(&after)
			heapPerGroup := float64(after.HeapAlloc-min(after.HeapAlloc, before.HeapAlloc)) / float64(n)
			if st, _ := ev.SLO("zones"); st.Groups == nil || st.Groups.Tracked != n {
				b.Fatalf("groups %+v, want %d followed", st.Groups, n)
			}
			q.instant.Store(0)
			q.ranges.Store(0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				at = at.Add(30 * time.Second)
				ev.Evaluate(context.Background(), at)
			}
			b.StopTimer()
			b.ReportMetric(heapPerGroup, "heap-bytes/group")
			b.ReportMetric(float64(q.instant.Load()+q.ranges.Load())/float64(b.N), "queries/cycle")
			if st, _ := ev.SLO(`zones{zone="z1"}`); !st.Fresh {
				b.Fatalf("a group is not fresh after the benchmark: %+v", st)
			}
		})
	}
}
