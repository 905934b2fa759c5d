package web

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/chaos"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/slo"
)

// The UI tests run the real evaluator and run manager over a small fake
// Prometheus: a few services whose request rates are functions of time, so
// that each colour of the UI has a row (a burning SLO, an overspent one, a
// nearly spent one, a perfect one and one whose queries fail).

// clock is the shared test time of the evaluator and the run manager.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// service is the traffic of one fake job: total and error rates per second,
// with an error spike from spikeFrom on.
type service struct {
	total, errors, spike float64
	spikeFrom            time.Time
	fail                 bool
}

// errorsOver is the average error rate over (t-w, t], as rate(x[w]) reads it.
func (s service) errorsOver(t time.Time, w time.Duration) float64 {
	r := s.errors
	if !s.spikeFrom.IsZero() && t.After(s.spikeFrom) {
		overlap := min(t.Sub(s.spikeFrom), w)
		r += s.spike * float64(overlap) / float64(w)
	}
	return r
}

type fakeProm struct {
	services map[string]service
	// probes answer hypothesis queries by exact text.
	probes map[string]func() (model.Value, error)
}

var (
	jobRe      = regexp.MustCompile(`job="([^"]+)"`)
	jobGroupRe = regexp.MustCompile(`job=~"([^"]+)"`)
	windowRe   = regexp.MustCompile(`\[([0-9a-z]+)\]`)
)

func (f *fakeProm) value(q string, t time.Time) (float64, bool, error) {
	m := jobRe.FindStringSubmatch(q)
	if m == nil {
		return 0, false, nil
	}
	s, ok := f.services[m[1]]
	if !ok {
		return 0, false, nil
	}
	if s.fail {
		return 0, false, &evaluator.QueryError{Reason: evaluator.ReasonTimeout, Query: q, Err: errors.New("context deadline exceeded after 10s")}
	}
	w := time.Minute
	if wm := windowRe.FindStringSubmatch(q); wm != nil {
		d, err := model.ParseDuration(wm[1])
		if err != nil {
			return 0, false, err
		}
		w = time.Duration(d)
	}
	switch {
	case strings.Contains(q, "avg_over_time"):
		return 0, true, nil // a raw error ratio: always up
	case strings.Contains(q, `code=~"5.."`):
		return s.errorsOver(t, w), true, nil
	}
	return s.total, true, nil
}

// grouped splits a grouped `sum by (job)` query of slogate's batching into
// one query per job, with the job's label for its answer.
func grouped(q string) (jobs []string, per func(job string) string) {
	m := jobGroupRe.FindStringSubmatch(q)
	if m == nil || !strings.Contains(q, "sum by (job)") {
		return nil, nil
	}
	return strings.Split(m[1], "|"), func(job string) string {
		return strings.Replace(q, m[0], `job="`+job+`"`, 1)
	}
}

func (f *fakeProm) Query(ctx context.Context, q string, ts time.Time) (model.Value, error) {
	if p, ok := f.probes[q]; ok {
		return p()
	}
	if jobs, per := grouped(q); jobs != nil {
		out := model.Vector{}
		for _, job := range jobs {
			v, err := f.Query(ctx, per(job), ts)
			if err != nil {
				return nil, err
			}
			for _, s := range v.(model.Vector) {
				out = append(out, &model.Sample{Metric: model.Metric{"job": model.LabelValue(job)}, Value: s.Value, Timestamp: s.Timestamp})
			}
		}
		return out, nil
	}
	v, ok, err := f.value(q, ts)
	if err != nil || !ok {
		return model.Vector{}, err
	}
	return model.Vector{{Metric: model.Metric{}, Value: model.SampleValue(v), Timestamp: model.TimeFromUnixNano(ts.UnixNano())}}, nil
}

func (f *fakeProm) QueryRange(ctx context.Context, q string, r evaluator.Range) (model.Value, error) {
	if jobs, per := grouped(q); jobs != nil {
		out := model.Matrix{}
		for _, job := range jobs {
			v, err := f.QueryRange(ctx, per(job), r)
			if err != nil {
				return nil, err
			}
			for _, s := range v.(model.Matrix) {
				out = append(out, &model.SampleStream{Metric: model.Metric{"job": model.LabelValue(job)}, Values: s.Values})
			}
		}
		return out, nil
	}
	ss := &model.SampleStream{Metric: model.Metric{}}
	for t := r.Start; !t.After(r.End); t = t.Add(r.Step) {
		v, ok, err := f.value(q, t)
		if err != nil {
			return nil, err
		}
		if ok {
			ss.Values = append(ss.Values, model.SamplePair{Timestamp: model.TimeFromUnixNano(t.UnixNano()), Value: model.SampleValue(v)})
		}
	}
	return model.Matrix{ss}, nil
}

func scalar(v float64) func() (model.Value, error) {
	return func() (model.Value, error) {
		return model.Vector{{Metric: model.Metric{}, Value: model.SampleValue(v)}}, nil
	}
}

func ratioSLO(name, job string, objective float64, window time.Duration) *slo.SLO {
	return &slo.SLO{
		Name: name, Service: job, Objective: objective, Window: window,
		Indicator: slo.Indicator{Ratio: &slo.RatioIndicator{
			Errors: `sum(rate(http_requests_total{job="` + job + `",code=~"5.."}[{{.window}}]))`,
			Total:  `sum(rate(http_requests_total{job="` + job + `"}[{{.window}}]))`,
		}},
		Alerting: slo.Alerting{Enabled: true, Name: slo.DefaultAlertName, Page: slo.AlertTier{Enabled: true}, Ticket: slo.AlertTier{Enabled: true}},
	}
}

func ptr[T any](v T) *T { return &v }

const (
	checkoutErrors = `sum(rate(http_requests_total{job="checkout",code=~"5.."}[1m])) / sum(rate(http_requests_total{job="checkout"}[1m]))`
	searchP99      = `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{job="search"}[1m])))`
	inventoryStock = `min(inventory_stock_level{job="inventory"})`
	inventoryErrs  = `sum(rate(inventory_errors_total[1m]))`
)

func fixtureDefinitions() *slo.Set {
	checkout := ratioSLO("checkout-availability", "checkout", 99.9, 30*24*time.Hour)
	checkout.Description = `Checkout <API> & "cart" requests that succeed`
	checkout.Labels = map[string]string{"team": "payments", "tier": `<1>`}
	checkout.Gate = slo.GatePolicy{MinBudgetRemaining: ptr(0.25), MaxBurnRate: ptr(6.0)}
	payments := ratioSLO("payments-availability", "payments", 99.5, 28*24*time.Hour)
	search := ratioSLO("search-availability", "search", 99.9, 30*24*time.Hour)
	search.Alerting.Ticket.Enabled = false
	inventory := ratioSLO("inventory-availability", "inventory", 99, 30*24*time.Hour)
	catalog := &slo.SLO{
		Name: "catalog-uptime", Service: "catalog", Objective: 99.95, Window: 7 * 24 * time.Hour,
		Indicator: slo.Indicator{Raw: &slo.RawIndicator{ErrorRatio: `1 - avg_over_time(up{job="catalog"}[{{.window}}])`}},
		Gate:      slo.GatePolicy{MinBudgetRemaining: ptr(0.5)},
	}
	hyp := func(name string, probes ...*slo.Probe) *slo.Hypothesis {
		return &slo.Hypothesis{Name: name, FailAfter: 1, PassAfter: 1, OnNoData: slo.PolicyUnknown, OnError: slo.PolicyUnknown, Series: slo.SeriesAll, Probes: probes}
	}
	return &slo.Set{
		SLOs: []*slo.SLO{checkout, payments, search, inventory, catalog},
		Hypotheses: []*slo.Hypothesis{
			hyp("checkout-steady",
				&slo.Probe{Name: "error-rate", Query: checkoutErrors, Tolerance: &slo.Tolerance{Op: slo.OpLT, Value: 0.05}},
				&slo.Probe{Name: "budget", SLO: "checkout-availability", BudgetRemaining: &slo.Tolerance{Op: slo.OpGE, Value: 0.5},
					BurnRate: &slo.BurnRateTolerance{Window: time.Hour, Below: 6}}),
			hyp("search-steady",
				&slo.Probe{Name: "p99-latency", Query: searchP99, Tolerance: &slo.Tolerance{Op: slo.OpLT, Value: 0.3}},
				&slo.Probe{Name: "catalog-budget", SLO: "catalog-uptime", BudgetRemaining: &slo.Tolerance{Op: slo.OpGE, Value: 0.5}}),
			hyp("inventory-steady",
				&slo.Probe{Name: "stock-level", Query: inventoryStock, Tolerance: &slo.Tolerance{Op: slo.OpGT, Value: 10}},
				&slo.Probe{Name: "errors", Query: inventoryErrs, Tolerance: &slo.Tolerance{Op: slo.OpBetween, Value: 0, Value2: 0.5}}),
		},
		Experiments: []*slo.Experiment{
			{Name: "kill-checkout-pod", Hypotheses: []string{"checkout-steady"}, SLOs: []string{"checkout-availability"}, MaxBudgetSpend: 0.05, MaxDuration: 15 * time.Minute, Recovery: 2 * time.Minute, OnUnknown: slo.GateClosed},
			{Name: "slow-search", Hypotheses: []string{"search-steady"}, SLOs: []string{"catalog-uptime"}, Recovery: time.Minute, OnUnknown: slo.GateClosed},
			{Name: "restart-catalog", Hypotheses: []string{"search-steady"}, SLOs: []string{"catalog-uptime"}, Recovery: time.Minute, OnUnknown: slo.GateClosed},
			{Name: "drain-inventory", Hypotheses: []string{"inventory-steady"}, OnUnknown: slo.GateClosed},
		},
	}
}

type fixture struct {
	clock  *clock
	ev     *evaluator.Evaluator
	runs   *chaos.Manager
	server *Server
	end    time.Time
	// Run IDs by how they ended.
	aborted, passed, running string
}

// newFixture evaluates a few cycles ending now (real time, so the pages'
// "ago" read sensibly in screenshots) and leaves three runs behind: one
// aborted, one passed and one running.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	end := time.Now().UTC().Truncate(30 * time.Second)
	prom := &fakeProm{
		services: map[string]service{
			"checkout":  {total: 50, errors: 0.02, spike: 1.5, spikeFrom: end.Add(-40 * time.Minute)},
			"payments":  {total: 10, errors: 0.06},
			"search":    {total: 200, errors: 0.16},
			"inventory": {fail: true},
			"catalog":   {},
		},
		probes: map[string]func() (model.Value, error){
			checkoutErrors: scalar(0.0304),
			searchP99:      scalar(0.118),
			inventoryStock: func() (model.Value, error) { return model.Vector{}, nil },
			inventoryErrs: func() (model.Value, error) {
				return nil, &evaluator.QueryError{Reason: evaluator.ReasonServer, Query: inventoryErrs, Err: errors.New(`server error 503: "upstream unavailable"`)}
			},
		},
	}
	c := &clock{t: end.Add(-3 * time.Minute)}
	ev, err := evaluator.New(evaluator.Options{Querier: prom, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetDefinitions(fixtureDefinitions()); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mgr, err := chaos.New(chaos.Options{Store: st, Snapshots: func() chaos.Statuses { return ev }, Registerer: prometheus.NewRegistry(), Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ev.OnCycle(func(ctx context.Context, _ time.Time) { mgr.OnCycle(ctx, ev) })
	f := &fixture{clock: c, ev: ev, runs: mgr, end: end}

	ctx := context.Background()
	cycle := func() {
		ev.Evaluate(ctx, c.Now())
		c.Set(c.Now().Add(30 * time.Second))
	}
	start := func(exp string) string {
		t.Helper()
		r, ans, err := mgr.Start(exp)
		if err != nil {
			t.Fatalf("start %s: %v (gate %+v)", exp, err, ans)
		}
		return r.ID
	}
	cycle() // backfill at end-3m
	f.aborted = start("restart-catalog")
	cycle()
	cycle()
	if _, err := mgr.Abort(f.aborted, "stopped by the on-call: wrong cluster"); err != nil {
		t.Fatal(err)
	}
	f.passed = start("restart-catalog")
	cycle()
	cycle()
	if _, err := mgr.Finish(f.passed); err != nil {
		t.Fatal(err)
	}
	cycle()
	f.running = start("slow-search")
	cycle() // at end
	c.Set(end)

	f.server, err = New(Options{Evaluator: ev, Runs: mgr, Gatherer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := mgr.Get(f.passed); err != nil || r.State != api.StatePassed {
		t.Fatalf("run %s: %+v, %v; want passed", f.passed, r, err)
	}
	return f
}
