package evaluator_test

import (
	"bytes"
	"context"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/promapi"
	"github.com/slogate/slogate/internal/synth"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// TestAccuracyPrometheus backfills 30 days of synthetic history (uneven
// traffic, a counter reset, a scrape gap) into a real Prometheus and checks
// that the evaluator's SLI and budget match a direct full-window query and
// the generated truth within 0.1 %.
func TestAccuracyPrometheus(t *testing.T) {
	// Prometheus keeps recent history only: the one reading of the wall
	// clock. The history, and so every expectation, is relative to its end.
	tr := synth.History(time.Now().Truncate(time.Hour).Add(-2*time.Hour+30*time.Minute), time.Minute)
	end := tr.End
	var om bytes.Buffer
	if err := tr.WriteOpenMetrics(&om, end.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	testenv.Backfill(t, dataDir, &om)
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir})

	q, err := promapi.New(promapi.Options{URL: prom.URL(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	at := end.Add(-90 * time.Second)
	ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetDefinitions(testSLOs()); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), at)
	truth := tr.TruthBetween(at.Add(-30*24*time.Hour), at)
	cases := []struct {
		slo, direct string
		truth       float64 // error ratio
	}{
		{"availability", `sum(rate(http_requests_total{job="shop",code=~"5.."}[30d])) / sum(rate(http_requests_total{job="shop"}[30d]))`, truth.Errors / truth.Total},
		{"availability-good", `1 - sum(rate(http_requests_total{job="shop",code!~"5.."}[30d])) / sum(rate(http_requests_total{job="shop"}[30d]))`, truth.Errors / truth.Total},
		{"latency", `1 - sum(rate(http_request_duration_seconds_bucket{job="shop",le=~"0.3"}[30d])) / sum(rate(http_request_duration_seconds_count{job="shop"}[30d]))`, truth.Slow[0.3] / truth.Total},
		{"uptime", `1 - avg_over_time(service_up{job="shop"}[30d])`, truth.Down / truth.Duration},
	}
	for _, tc := range cases {
		t.Run(tc.slo, func(t *testing.T) {
			st, ok := ev.SLO(tc.slo)
			if !ok || !st.Fresh || st.Error != "" {
				t.Fatalf("status not fresh: %+v", st)
			}
			got := 1 - float64(st.SLI)
			direct := prom.QueryAt(t, tc.direct, at)
			if rel := math.Abs(got-direct) / direct; rel > 1e-3 {
				t.Errorf("error ratio %g, direct query %g: relative error %.5f > 0.1%%", got, direct, rel)
			}
			if rel := math.Abs(got-tc.truth) / tc.truth; rel > 1e-3 {
				t.Errorf("error ratio %g, generated truth %g: relative error %.5f > 0.1%%", got, tc.truth, rel)
			}
			wantBudget := 1 - direct/0.005
			if d := math.Abs(float64(st.BudgetRemaining) - wantBudget); d > 1e-3*math.Max(1, math.Abs(wantBudget)) {
				t.Errorf("budget remaining %g, from the direct query %g", st.BudgetRemaining, wantBudget)
			}
		})
	}
}

// liveEnv is a real Prometheus scraping a synthetic target every second,
// and an evaluator over it driven cycle by cycle on a clock of the test's.
type liveEnv struct {
	prom     *testenv.Prometheus
	q        evaluator.Querier
	requests *prometheus.CounterVec
	ev       *evaluator.Evaluator
	reg      *prometheus.Registry
	clock    *testClock
	last     time.Time // of the latest cycle
}

func startLive(t *testing.T, set *slo.Set) *liveEnv {
	target := testenv.NewTarget(t)
	requests := target.Counter("http_requests_total", "code")
	requests.WithLabelValues("200").Add(0)
	requests.WithLabelValues("500").Add(0)
	prom := testenv.StartPrometheus(t, testenv.PromOptions{ScrapeInterval: time.Second, Targets: []testenv.ScrapeTarget{target.ScrapeTarget("shop")}})
	q, err := promapi.New(promapi.Options{URL: prom.URL(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	clock := &testClock{}
	ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: time.Second, MinRange: 5 * time.Second, Registerer: reg, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetDefinitions(set); err != nil {
		t.Fatal(err)
	}
	return &liveEnv{prom: prom, q: q, requests: requests, ev: ev, reg: reg, clock: clock}
}

// traffic increments the counters every 100ms until ctx ends; errShare
// returns the share of errors to send.
func (l *liveEnv) traffic(ctx context.Context, errShare func() float64) {
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				e := errShare()
				l.requests.WithLabelValues("500").Add(10 * e)
				l.requests.WithLabelValues("200").Add(10 * (1 - e))
			}
		}
	}()
}

// cycle evaluates once, a second after the previous cycle (or at the
// current second, if the test waited since), as soon as Prometheus has
// scraped past that second.
func (l *liveEnv) cycle(t *testing.T) {
	at := nextCycle(l.last, time.Second)
	waitIngested(t, l.q, at)
	l.evaluate(at)
}

// cycleDown is cycle while Prometheus is down: there is no data to wait
// for, the evaluation just comes a second after the previous one.
func (l *liveEnv) cycleDown() {
	l.evaluate(nextCycle(l.last, time.Second))
}

func (l *liveEnv) evaluate(at time.Time) {
	l.clock.Set(at)
	l.ev.Evaluate(context.Background(), at)
	l.last = at
}

func (l *liveEnv) failures(t *testing.T) float64 {
	mfs, err := l.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "slogate_query_failures_total" {
			for _, m := range mf.Metric {
				total += counterValue(m)
			}
		}
	}
	return total
}

func counterValue(m *dto.Metric) float64 { return m.GetCounter().GetValue() }

const errorRatioQuery = `sum(rate(http_requests_total{code="500"}[5s])) / sum(rate(http_requests_total[5s]))`

func liveSet() *slo.Set {
	return &slo.Set{
		SLOs: []*slo.SLO{{
			Name: "live", Service: "shop", Objective: 99, Window: 24 * time.Hour,
			Indicator: slo.Indicator{Ratio: &slo.RatioIndicator{
				Errors: `sum(rate(http_requests_total{code="500"}[{{.window}}]))`,
				Total:  `sum(rate(http_requests_total[{{.window}}]))`,
			}},
			Alerting: slo.Alerting{Enabled: true, Page: slo.AlertTier{Enabled: true}, Ticket: slo.AlertTier{Enabled: true}},
		}},
		Hypotheses: []*slo.Hypothesis{{
			Name: "steady", FailAfter: 2, PassAfter: 2, OnNoData: slo.PolicyUnknown, OnError: slo.PolicyUnknown, Series: slo.SeriesAll,
			Probes: []*slo.Probe{{Name: "error-rate", Query: errorRatioQuery, Tolerance: &slo.Tolerance{Op: slo.OpLT, Value: 0.1}}},
		}},
	}
}

// TestReaction: the target switches to 100 % errors and back; the verdict
// follows within failAfter / passAfter evaluations of Prometheus having the
// data (evaluations are counted, not seconds).
func TestReaction(t *testing.T) {
	l := startLive(t, liveSet())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var share atomicFloat
	l.traffic(ctx, share.Load)

	verdict := func() slo.Verdict { s, _ := l.ev.Hypothesis("steady"); return s.Verdict }
	waitVerdict := func(want slo.Verdict, maxCycles int) int {
		for i := 1; i <= maxCycles; i++ {
			l.cycle(t)
			if verdict() == want {
				return i
			}
		}
		s, _ := l.ev.Hypothesis("steady")
		t.Fatalf("verdict %s after %d evaluations, want %s: %+v", verdict(), maxCycles, want, s)
		return 0
	}
	l.prom.WaitForQuery(t, errorRatioQuery, func(v float64) bool { return v < 0.1 }, 30*time.Second)
	waitVerdict(slo.Pass, 10)

	share.Store(1)
	l.prom.WaitForQuery(t, errorRatioQuery, func(v float64) bool { return v >= 0.1 }, 30*time.Second)
	if n := waitVerdict(slo.Fail, 4); n > 2+1 {
		t.Errorf("verdict turned fail after %d evaluations, want within failAfter=2 (+1 for the evaluation in flight)", n)
	}

	share.Store(0)
	l.prom.WaitForQuery(t, errorRatioQuery, func(v float64) bool { return v < 0.1 }, 30*time.Second)
	if n := waitVerdict(slo.Pass, 4); n > 2+1 {
		t.Errorf("verdict turned pass after %d evaluations, want within passAfter=2 (+1)", n)
	}
	if st, _ := l.ev.SLO("live"); !st.Fresh || float64(st.BudgetRemaining) >= 1 {
		t.Errorf("SLO after an error burst: fresh %v budget remaining %v, want fresh and spent", st.Fresh, st.BudgetRemaining)
	}
}

// TestPrometheusOutage stops Prometheus mid-test: verdicts turn unknown
// (never pass), failures are counted; once it is back the windows are
// refilled and match direct queries again.
func TestPrometheusOutage(t *testing.T) {
	l := startLive(t, liveSet())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var share atomicFloat
	share.Store(0.01)
	l.traffic(ctx, share.Load)
	l.prom.WaitForQuery(t, errorRatioQuery, func(v float64) bool { return v < 0.1 }, 30*time.Second)
	for range 4 {
		l.cycle(t)
	}
	if s, _ := l.ev.Hypothesis("steady"); s.Verdict != slo.Pass {
		t.Fatalf("before the outage: verdict %s, want pass", s.Verdict)
	}

	l.prom.Stop()
	before := l.failures(t)
	for range 3 {
		l.cycleDown()
		s, _ := l.ev.Hypothesis("steady")
		if s.Verdict == slo.Pass {
			t.Fatalf("verdict pass while Prometheus is down")
		}
	}
	if s, _ := l.ev.Hypothesis("steady"); s.Verdict != slo.Unknown {
		t.Errorf("verdict %s while Prometheus is down, want unknown", s.Verdict)
	}
	if st, _ := l.ev.SLO("live"); st.Fresh || st.Error == "" {
		t.Errorf("SLO fresh=%v error=%q while Prometheus is down, want stale with an error", st.Fresh, st.Error)
	}
	if after := l.failures(t); after <= before {
		t.Errorf("slogate_query_failures_total did not grow during the outage (%g → %g)", before, after)
	}

	restarted := float64(time.Now().Unix())
	l.prom.Restart(t)
	// Data from before the stop could satisfy a rate(); wait for samples
	// scraped after the restart.
	l.prom.WaitForQuery(t, `max(timestamp(http_requests_total))`, func(v float64) bool { return v > restarted+1 }, 30*time.Second)
	var st evaluator.SLOStatus
	for i := 0; i < 10; i++ {
		l.cycle(t)
		st, _ = l.ev.SLO("live")
		if s, _ := l.ev.Hypothesis("steady"); s.Verdict == slo.Pass && st.Fresh {
			break
		}
	}
	if !st.Fresh || st.Error != "" {
		t.Fatalf("after Prometheus came back: SLO fresh=%v error=%q", st.Fresh, st.Error)
	}
	for _, w := range st.Windows {
		if !w.Complete {
			t.Errorf("window %s still has holes after Prometheus came back", w.Window)
		}
	}
	// The 1h window sums the slices, the outage's refetched ones included;
	// its error ratio must agree with a direct query over the same hour.
	w, _ := st.WindowStatus(time.Hour)
	direct := l.prom.QueryAt(t, `sum(increase(http_requests_total{code="500"}[1h])) / sum(increase(http_requests_total[1h]))`, st.EvaluatedAt)
	if got := 1 - float64(w.SLI); math.Abs(got-direct)/direct > 0.1 {
		t.Errorf("1h error ratio %g, direct query %g", got, direct)
	}
}

type atomicFloat struct{ v atomic.Uint64 }

func (a *atomicFloat) Load() float64   { return math.Float64frombits(a.v.Load()) }
func (a *atomicFloat) Store(f float64) { a.v.Store(math.Float64bits(f)) }
