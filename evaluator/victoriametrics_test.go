package evaluator_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/promapi"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// TestVictoriaMetricsCompatibility evaluates the same definitions against
// a real Prometheus and a real VictoriaMetrics scraping the same target:
// the verdicts must agree at every step (steady, 100 % errors, recovered)
// and the SLIs must be close (MetricsQL's rate() does not extrapolate, so
// they are not identical).
func TestVictoriaMetricsCompatibility(t *testing.T) {
	target := testenv.NewTarget(t)
	requests := target.Counter("http_requests_total", "code")
	requests.WithLabelValues("200").Add(0)
	requests.WithLabelValues("500").Add(0)
	prom := testenv.StartPrometheus(t, testenv.PromOptions{ScrapeInterval: time.Second, Targets: []testenv.ScrapeTarget{target.ScrapeTarget("shop")}})
	vm := testenv.StartVictoriaMetrics(t, time.Second, target.ScrapeTarget("shop"))

	// Both evaluators run on the test's clock, cycle by cycle.
	clock := &testClock{}
	queriers := map[string]evaluator.Querier{}
	backends := map[string]*evaluator.Evaluator{}
	for name, url := range map[string]string{"prometheus": prom.URL(), "victoriametrics": vm.URL()} {
		q, err := promapi.New(promapi.Options{URL: url, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: time.Second, MinRange: 5 * time.Second, Registerer: prometheus.NewRegistry(), Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.SetDefinitions(liveSet()); err != nil {
			t.Fatal(err)
		}
		queriers[name], backends[name] = q, ev
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var share atomicFloat
	share.Store(0.01)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				e := share.Load()
				requests.WithLabelValues("500").Add(10 * e)
				requests.WithLabelValues("200").Add(10 * (1 - e))
			}
		}
	}()

	// cycle evaluates both at the same instant, a second after the
	// previous cycle (or the current second, if the test waited since),
	// once both backends have ingested the scrapes up to it.
	var last time.Time
	cycle := func() map[string]slo.Verdict {
		at := nextCycle(last, time.Second)
		for _, q := range queriers {
			waitIngested(t, q, at)
		}
		clock.Set(at)
		last = at
		out := map[string]slo.Verdict{}
		for name, ev := range backends {
			ev.Evaluate(context.Background(), at)
			h, _ := ev.Hypothesis("steady")
			out[name] = h.Verdict
		}
		return out
	}
	// waitBoth evaluates until both backends give want, and fails if they
	// disagree for more than the debounce allows once one of them got there.
	waitBoth := func(want slo.Verdict) {
		t.Helper()
		disagree := 0
		for i := 0; i < 40; i++ {
			v := cycle()
			if v["prometheus"] == want && v["victoriametrics"] == want {
				return
			}
			if v["prometheus"] != v["victoriametrics"] {
				if disagree++; disagree > 3 {
					t.Fatalf("backends disagree for %d evaluations: %v", disagree, v)
				}
			}
		}
		for name, ev := range backends {
			h, _ := ev.Hypothesis("steady")
			st, _ := ev.SLO("live")
			t.Logf("%s: hypothesis %+v; slo fresh %v error %q", name, h, st.Fresh, st.Error)
		}
		t.Fatalf("verdicts never both %s", want)
	}

	waitBoth(slo.Pass)
	ps, _ := backends["prometheus"].SLO("live")
	vs, _ := backends["victoriametrics"].SLO("live")
	if !ps.Fresh || !vs.Fresh {
		t.Fatalf("SLOs not fresh: prometheus %v (%s), victoriametrics %v (%s)", ps.Fresh, ps.Error, vs.Fresh, vs.Error)
	}
	// 1 % errors on both: the error ratios of the hour must agree closely.
	pw, _ := ps.WindowStatus(time.Hour)
	vw, _ := vs.WindowStatus(time.Hour)
	pe, ve := 1-float64(pw.SLI), 1-float64(vw.SLI)
	if math.Abs(pe-ve) > 0.2*pe {
		t.Errorf("1h error ratio: prometheus %g, victoriametrics %g", pe, ve)
	}

	share.Store(1)
	waitBoth(slo.Fail)
	share.Store(0)
	waitBoth(slo.Pass)
}
