package evaluator_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/promapi"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// instantCounter counts instant requests, and those that were unions.
type instantCounter struct {
	evaluator.Querier
	instant, unions atomic.Int64
}

func (c *instantCounter) Query(ctx context.Context, q string, at time.Time) (model.Value, error) {
	c.instant.Add(1)
	if strings.Contains(q, "__slogate_union") {
		c.unions.Add(1)
	}
	return c.Querier.Query(ctx, q, at)
}

// heterogeneousSLOs are SLOs that share nothing: each its own metric, and
// shapes batching by label values cannot group (a histogram, `or
// vector(0)`, a by clause summed again, a raw ratio of a gauge).
func heterogeneousSLOs(n int) *slo.Set {
	set := &slo.Set{}
	for i := range n {
		m := fmt.Sprintf("svc%d_requests_total", i)
		o := &slo.SLO{Name: fmt.Sprintf("svc-%d", i), Service: fmt.Sprintf("svc%d", i), Objective: 99, Window: 24 * time.Hour,
			Alerting: slo.Alerting{Enabled: true, Page: slo.AlertTier{Enabled: true}, Ticket: slo.AlertTier{Enabled: true}}}
		switch i % 4 {
		case 0:
			o.Indicator.Ratio = &slo.RatioIndicator{Errors: `sum(rate(` + m + `{code="500"}[{{.window}}]))`, Total: `sum(rate(` + m + `[{{.window}}]))`}
		case 1:
			o.Indicator.Ratio = &slo.RatioIndicator{Errors: `sum(rate(` + m + `{code="500"}[{{.window}}])) or vector(0)`, Total: `sum(rate(` + m + `[{{.window}}]))`}
		case 2:
			o.Indicator.Ratio = &slo.RatioIndicator{Good: `sum(sum by (code) (rate(` + m + `{code="200"}[{{.window}}])))`, Total: `sum(sum by (code) (rate(` + m + `[{{.window}}])))`}
		case 3:
			o.Indicator.Raw = &slo.RawIndicator{ErrorRatio: fmt.Sprintf(`1 - avg(avg_over_time(svc%d_up[{{.window}}]))`, i)}
		}
		set.SLOs = append(set.SLOs, o)
	}
	return set
}

// TestUnionsGiveTheSameNumbersPrometheus: SLOs that share nothing are
// asked their newest slices in unions, a few requests per cycle instead of
// one per query, and every window, budget and burn rate is exactly what
// asking each query on its own gives, on a real Prometheus.
func TestUnionsGiveTheSameNumbersPrometheus(t *testing.T) {
	const n = 12
	end := time.Now().Truncate(time.Hour).Add(-90 * time.Minute)
	start := end.Add(-26 * time.Hour)
	om := testenv.NewOMWriter(t)
	for i := range n {
		if i%4 == 3 {
			continue
		}
		om.Family(fmt.Sprintf("svc%d_requests_total", i), testenv.OMCounter)
		ok, bad := 0.0, 0.0
		for ts := start; !ts.After(end); ts = ts.Add(15 * time.Second) {
			rate := 10 + float64(i) + 3*math.Sin(float64(ts.Unix())/1800)
			ratio := 0.002 * float64(i%5+1) * (1 + math.Sin(float64(ts.Unix())/700))
			ok += rate * (1 - ratio) * 15
			bad += rate * ratio * 15
			om.Sample(map[string]string{"code": "200"}, ts, ok)
			om.Sample(map[string]string{"code": "500"}, ts, bad)
		}
	}
	for i := 3; i < n; i += 4 {
		om.Family(fmt.Sprintf("svc%d_up", i), testenv.OMGauge)
		for ts := start; !ts.After(end); ts = ts.Add(15 * time.Second) {
			up := 1.0
			if ts.Unix()/60%97 == 0 {
				up = 0
			}
			om.Sample(map[string]string{"instance": "a"}, ts, up)
		}
	}
	dataDir := t.TempDir()
	testenv.BackfillFile(t, dataDir, om.Close())
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir})
	pq, err := promapi.New(promapi.Options{URL: prom.URL(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	set := heterogeneousSLOs(n)
	at := end.Add(-30 * time.Minute)
	clock := &testClock{}
	start2 := func(disable bool) (*evaluator.Evaluator, *instantCounter) {
		q := &instantCounter{Querier: pq}
		ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), DisableBatching: disable, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.SetDefinitions(set); err != nil {
			t.Fatal(err)
		}
		return ev, q
	}
	united, uq := start2(false)
	single, sq := start2(true)
	const cycles = 20
	for c := range cycles {
		clock.Set(at)
		united.Evaluate(context.Background(), at)
		single.Evaluate(context.Background(), at)
		if c == 0 {
			uq.instant.Store(0)
			sq.instant.Store(0)
		}
		at = at.Add(30 * time.Second)
	}
	for _, o := range set.SLOs {
		u, _ := united.SLO(o.Name)
		s, _ := single.SLO(o.Name)
		if !u.Fresh || u.Error != "" || len(u.Windows) != len(s.Windows) {
			t.Fatalf("%s: status with unions %+v", o.Name, u)
		}
		for i := range u.Windows {
			uw, sw := u.Windows[i], s.Windows[i]
			if uw.Bad != sw.Bad || uw.Total != sw.Total || uw.Complete != sw.Complete {
				t.Errorf("%s window %s: with unions %v/%v (complete %v), one by one %v/%v (complete %v)",
					o.Name, uw.Window, uw.Bad, uw.Total, uw.Complete, sw.Bad, sw.Total, sw.Complete)
			}
		}
		if !sameNum(u.BudgetRemaining, s.BudgetRemaining) || !sameNum(u.SLI, s.SLI) {
			t.Errorf("%s: budget %v SLI %v with unions, %v %v one by one", o.Name, u.BudgetRemaining, u.SLI, s.BudgetRemaining, s.SLI)
		}
	}
	// One by one: every template of every SLO each cycle (ratios have two,
	// raw ones one). With unions: one request per cycle.
	per := float64(sq.instant.Load()) / (cycles - 1)
	unions := float64(uq.instant.Load()) / (cycles - 1)
	t.Logf("instant requests per cycle: %.1f one by one, %.1f with unions (%d unions in all)", per, unions, uq.unions.Load())
	if per < 2*n-n/4 || unions > 1.5 {
		t.Errorf("instant requests per cycle: %.1f one by one, %.1f with unions; want %d and about 1", per, unions, 2*n-n/4)
	}
}

func sameNum(a, b evaluator.Num) bool {
	return a == b || math.IsNaN(float64(a)) && math.IsNaN(float64(b))
}

// TestUnionQueryIsBalanced: a union's `or`s form a balanced tree (a chain
// costs Prometheus the square of its length), with every term labelled by
// its index, in order.
func TestUnionQueryIsBalanced(t *testing.T) {
	if got, want := evaluator.UnionQuery([]string{"a", "b", "c"}),
		`(label_replace(a, "__slogate_union", "0", "", "") or (label_replace(b, "__slogate_union", "1", "", "") or label_replace(c, "__slogate_union", "2", "", "")))`; got != want {
		t.Errorf("UnionQuery(a, b, c) =\n%s\nwant\n%s", got, want)
	}
	for _, n := range []int{2, 7, 250} {
		terms := make([]string, n)
		for i := range terms {
			terms[i] = fmt.Sprintf("sum(rate(m%d[2m]))", i)
		}
		expr, err := parser.NewParser(parser.Options{}).ParseExpr(evaluator.UnionQuery(terms))
		if err != nil {
			t.Fatalf("%d terms: %v", n, err)
		}
		var depth func(parser.Node) int
		depth = func(e parser.Node) int {
			switch e := e.(type) {
			case *parser.ParenExpr:
				return depth(e.Expr)
			case *parser.BinaryExpr:
				return 1 + max(depth(e.LHS), depth(e.RHS))
			}
			return 0
		}
		var seen []string
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			if call, ok := n.(*parser.Call); ok && call.Func.Name == "label_replace" {
				seen = append(seen, call.Args[0].String()+"="+call.Args[2].(*parser.StringLiteral).Val)
			}
			return nil
		})
		if d, most := depth(expr), int(math.Ceil(math.Log2(float64(n)))); d != most {
			t.Errorf("%d terms: `or` nested %d deep, want %d", n, d, most)
		}
		for i, s := range seen {
			if want := fmt.Sprintf("sum(rate(m%d[2m]))=%d", i, i); s != want {
				t.Errorf("%d terms: term %d is %s, want %s", n, i, s, want)
			}
		}
		if len(seen) != n {
			t.Errorf("%d terms: %d labelled", n, len(seen))
		}
	}
}
