package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// UnionSizesEnv chooses the union sizes BenchmarkUnionCost compares:
// members per request, comma-separated (default 1,10,50,250; 1 is one
// query per request, 250 the evaluator's largest union).
const UnionSizesEnv = "SLOGATE_BENCH_UNION_SIZES"

// minRange is the range of the newest slice: evaluation.min-range's
// default, longer than the 30 s interval.
const minRange = 2 * time.Minute

// BenchmarkUnionCost measures what one newest-slice query of a
// heterogeneous SLO costs Prometheus when it is asked alone and when it is
// one member of a union of k (built by evaluator.UnionQuery, as the
// evaluator builds them: label_replace(<q>, "__slogate_union", "<i>", "",
// "") terms in a balanced tree of `or`): every SLO's
// event templates over 2m, at the cycle times of BenchmarkPrometheusCost,
// against the same history. It tells the per-request cost that unions
// save from the per-member cost they do not. It runs only when
// SLOGATE_BENCH_DEFINITIONS includes heterogeneous, for the SLO counts of
// SLOGATE_BENCH_SLOS and the sizes of SLOGATE_BENCH_UNION_SIZES.
func BenchmarkUnionCost(b *testing.B) {
	if !slices.Contains(definitionsList(b), defsHeterogeneous) {
		b.Skipf("%s does not include %s", DefinitionsEnv, defsHeterogeneous)
	}
	sizes := envList(b, UnionSizesEnv, []int{1, 10, 50, 250})
	for _, n := range sloCounts(b) {
		b.Run("slos="+strconv.Itoa(n)+"-"+defsHeterogeneous, func(b *testing.B) {
			prom := testenv.StartPrometheus(b, testenv.PromOptions{DataDir: historyDir(b, defsHeterogeneous, n)})
			c := newStatClient(prom.URL())
			defer c.close()
			settle(b, c)
			members, err := newestSliceQueries(heterogeneousSLOs(n))
			if err != nil {
				b.Fatal(err)
			}
			for _, k := range sizes {
				b.Run("members="+strconv.Itoa(k), func(b *testing.B) {
					reqs := unionRequests(members, k)
					var per cost
					for range b.N {
						per = measureRuns(b, c, func(cycle int) error {
							return askUnions(context.Background(), c, reqs, cycleTime(cycle))
						})
					}
					b.ReportMetric(per.cpu*1000, "prom-cpu-ms/cycle")
					b.ReportMetric(per.cpu*1e6/float64(len(members)), "prom-cpu-µs/query")
					b.ReportMetric(per.queries, "requests/cycle")
					b.ReportMetric(per.samples, "samples/cycle")
					b.Logf("%d queries of %d SLOs in %d requests of up to %d: %.1f ms of Prometheus CPU per cycle, %.0f µs per query, %s samples, %d cycles measured",
						len(members), n, len(reqs), k, per.cpu*1000, per.cpu*1e6/float64(len(members)), humanCount(per.samples), per.cycles)
				})
			}
		})
	}
}

// newestSliceQueries are the event templates of every SLO over minRange,
// printed from their parsed trees as the evaluator embeds them in unions.
func newestSliceQueries(set *slo.Set) ([]string, error) {
	p := parser.NewParser(parser.Options{})
	var out []string
	for _, o := range set.SLOs {
		ev, err := o.Events()
		if err != nil {
			return nil, err
		}
		for _, t := range ev.Templates() {
			expr, err := p.ParseExpr(slo.FillWindow(t, minRange))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", o.Name, err)
			}
			out = append(out, expr.String())
		}
	}
	return out, nil
}

// unionRequest is one request: a union of members, or one query alone.
type unionRequest struct {
	expr    string
	members int
}

// unionRequests puts the queries into requests of up to k members.
func unionRequests(qs []string, k int) []unionRequest {
	var out []unionRequest
	for len(qs) > 0 {
		m := min(k, len(qs))
		if m == 1 {
			out = append(out, unionRequest{qs[0], 1})
		} else {
			out = append(out, unionRequest{evaluator.UnionQuery(qs[:m]), m})
		}
		qs = qs[m:]
	}
	return out
}

// askUnions sends the requests at ts, queryConcurrency at a time, and
// fails unless every member of every union answered.
func askUnions(ctx context.Context, c *statClient, reqs []unionRequest, ts time.Time) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	work := make(chan unionRequest)
	for range queryConcurrency {
		wg.Go(func() {
			for r := range work {
				v, err := c.Query(ctx, r.expr, ts)
				if err == nil {
					err = checkUnion(v, r.members)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, r := range reqs {
		work <- r
	}
	close(work)
	wg.Wait()
	return first
}

// checkUnion fails unless each of the members answered a series.
func checkUnion(v model.Value, members int) error {
	vec, ok := v.(model.Vector)
	if !ok {
		return fmt.Errorf("a %s, not a vector", v.Type())
	}
	if members == 1 {
		if len(vec) == 0 {
			return errors.New("no data")
		}
		return nil
	}
	seen := map[model.LabelValue]bool{}
	for _, s := range vec {
		seen[s.Metric[unionLabel]] = true
	}
	if len(seen) != members {
		return fmt.Errorf("%d of %d members answered", len(seen), members)
	}
	return nil
}
