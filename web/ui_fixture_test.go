package web

import (
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/chaos"
	"github.com/slogate/slogate/evaluator/embedded"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/slo"
)

// The UI tests run the real evaluator and run manager over Prometheus's
// own TSDB and PromQL engine (package evaluator/embedded, as `slogate demo`
// does), filled once per test binary with deterministic synthetic samples
// at fixed times: a few services at constant request and error rates, so
// that each colour of the UI has a row (a burning SLO, an overspent one, a
// nearly spent one, a perfect one and one whose queries fail). The failures
// are injected in front of the engine, by what a query reads, as a
// Prometheus timing out or answering 503 would. Every number the pages show
// comes from real PromQL, evaluated at fixtureEnd: nothing depends on the
// wall clock.

// fixtureEnd is the time of the fixture's last evaluation.
var fixtureEnd = time.Date(2026, 11, 27, 15, 30, 0, 0, time.UTC)

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

// service is the traffic of one synthetic job: total and error requests a
// second, with spike more errors a second from spikeFrom on.
type service struct {
	job                  string
	total, errors, spike float64
	spikeFrom            time.Time
}

// fixtureServices are the jobs of the fixture. search also has a latency
// histogram (searchBuckets), catalog an up series that is always 1.
var fixtureServices = []service{
	{job: "checkout", total: 50, errors: 0.02, spike: 1.5, spikeFrom: fixtureEnd.Add(-40 * time.Minute)},
	{job: "payments", total: 10, errors: 0.06},
	{job: "search", total: 200, errors: 0.16},
	// Its queries time out (fixtureFaults); the data is there all the same.
	{job: "inventory", total: 10},
}

// edgeGroup is the traffic of one cluster and route of the edge proxy,
// whose SLO is grouped by both: edge_requests_total{cluster,route,code}.
type edgeGroup struct {
	cluster, route string
	total, errors  float64
}

// edgeGroups: with maxGroups 3 the evaluator follows the first three by
// name and counts us /pay only in the aggregate. eu /cart spends more than
// its budget, us /cart most of it.
var edgeGroups = []edgeGroup{
	{cluster: "eu", route: "/cart", total: 5, errors: 0.01},
	{cluster: "eu", route: "/pay", total: 20, errors: 0},
	{cluster: "us", route: "/cart", total: 5, errors: 0.004},
	{cluster: "us", route: "/pay", total: 20, errors: 0.05},
}

// searchBuckets are the requests a second of search at or below each bound
// of http_request_duration_seconds: the 99th percentile is 0.12 s.
var searchBuckets = []struct {
	le   string
	rate float64
}{{"0.05", 150}, {"0.1", 190}, {"0.125", 200}, {"0.25", 200}, {"+Inf", 200}}

const (
	// fixtureHistory is how far back the samples go: the 30d windows of
	// the charts' oldest hour, and some.
	fixtureHistory = 32 * 24 * time.Hour
	// The samples are a minute apart, and 15 s apart for the last hours,
	// so that rate() over the probes' 1m has several.
	fixtureStep, fixtureFineStep, fixtureFineSpan = time.Minute, 15 * time.Second, 3 * time.Hour
)

// errorsAt is the errors counter of s at t (zero at the start of the
// history).
func (s service) errorsAt(t time.Time) float64 {
	v := s.errors * t.Sub(fixtureEnd.Add(-fixtureHistory)).Seconds()
	if !s.spikeFrom.IsZero() && t.After(s.spikeFrom) {
		v += s.spike * t.Sub(s.spikeFrom).Seconds()
	}
	return v
}

func (s service) totalAt(t time.Time) float64 {
	return s.total * t.Sub(fixtureEnd.Add(-fixtureHistory)).Seconds()
}

// fixtureStorage is the TSDB of the UI tests, written once and read by
// every fixture; TestMain removes it.
var fixtureStorage struct {
	once sync.Once
	dir  string
	db   *tsdb.DB
	err  error
}

func fixtureDB(t testing.TB) *tsdb.DB {
	t.Helper()
	fs := &fixtureStorage
	fs.once.Do(func() {
		if fs.dir, fs.err = os.MkdirTemp("", "slogate-web-test-tsdb"); fs.err != nil {
			return
		}
		opts := tsdb.DefaultOptions()
		opts.RetentionDuration = int64(2 * fixtureHistory / time.Millisecond)
		if fs.db, fs.err = tsdb.Open(fs.dir, nil, nil, opts, nil); fs.err != nil {
			return
		}
		fs.err = writeFixtureSamples(fs.db)
	})
	if fs.err != nil {
		t.Fatalf("the fixture's TSDB: %v", fs.err)
	}
	return fs.db
}

func closeFixtureDB() {
	fs := &fixtureStorage
	if fs.db != nil {
		fs.db.Close()
	}
	if fs.dir != "" {
		os.RemoveAll(fs.dir)
	}
}

// writeFixtureSamples writes the fixture's series from fixtureEnd -
// fixtureHistory to fixtureEnd.
func writeFixtureSamples(db *tsdb.DB) error {
	ctx := context.Background()
	app := db.Appender(ctx)
	add := func(v float64, t time.Time, kv ...string) error {
		_, err := app.Append(0, labels.FromStrings(kv...), t.UnixMilli(), v)
		return err
	}
	fineFrom := fixtureEnd.Add(-fixtureFineSpan)
	n := 0
	for t := fixtureEnd.Add(-fixtureHistory); !t.After(fixtureEnd); {
		for _, s := range fixtureServices {
			bad := s.errorsAt(t)
			if err := add(s.totalAt(t)-bad, t, "__name__", "http_requests_total", "job", s.job, "code", "200"); err != nil {
				return err
			}
			if err := add(bad, t, "__name__", "http_requests_total", "job", s.job, "code", "500"); err != nil {
				return err
			}
		}
		for _, g := range edgeGroups {
			since := t.Sub(fixtureEnd.Add(-fixtureHistory)).Seconds()
			bad := g.errors * since
			if err := add(g.total*since-bad, t, "__name__", "edge_requests_total", "cluster", g.cluster, "route", g.route, "code", "200"); err != nil {
				return err
			}
			if err := add(bad, t, "__name__", "edge_requests_total", "cluster", g.cluster, "route", g.route, "code", "500"); err != nil {
				return err
			}
		}
		if err := add(1, t, "__name__", "up", "job", "catalog", "instance", "catalog:8080"); err != nil {
			return err
		}
		if !t.Before(fineFrom) {
			for _, b := range searchBuckets {
				v := b.rate * t.Sub(fineFrom).Seconds()
				if err := add(v, t, "__name__", "http_request_duration_seconds_bucket", "job", "search", "le", b.le); err != nil {
					return err
				}
			}
		}
		if n++; n%1000 == 0 {
			if err := app.Commit(); err != nil {
				return err
			}
			app = db.Appender(ctx)
		}
		if t.Before(fineFrom) {
			t = t.Add(fixtureStep)
		} else {
			t = t.Add(fixtureFineStep)
		}
	}
	return app.Commit()
}

// fault is a Prometheus failure injected for the queries that read a
// series of metric (any, if empty) whose matcher on label (none, if empty)
// matches value.
type fault struct {
	metric, label, value string
	err                  func(query string) error
}

func (f fault) reads(vs *parser.VectorSelector) bool {
	name := vs.Name
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			name = m.Value
		}
	}
	if f.metric != "" && name != f.metric {
		return false
	}
	if f.label == "" {
		return true
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == f.label && m.Matches(f.value) {
			return true
		}
	}
	return false
}

// fixtureFaults: the queries of the inventory job's requests time out (its
// SLO has no fresh data), and those of its errors get a 503. Its stock
// level has no series at all: no data, not an error.
var fixtureFaults = []fault{
	{metric: "http_requests_total", label: "job", value: "inventory", err: func(q string) error {
		return &evaluator.QueryError{Reason: evaluator.ReasonTimeout, Query: q, Err: errors.New("context deadline exceeded after 10s")}
	}},
	{metric: "inventory_errors_total", err: func(q string) error {
		return &evaluator.QueryError{Reason: evaluator.ReasonServer, Query: q, Err: errors.New(`server error 503: "upstream unavailable"`)}
	}},
}

// faultyQuerier is the embedded engine behind fixtureFaults.
type faultyQuerier struct {
	evaluator.Querier
	faults []fault
}

func (f faultyQuerier) fault(q string) error {
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	if err != nil {
		return nil // the engine says what is wrong with it
	}
	var hit error
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok && hit == nil {
			for _, ft := range f.faults {
				if ft.reads(vs) {
					hit = ft.err(q)
					break
				}
			}
		}
		return nil
	})
	return hit
}

func (f faultyQuerier) Query(ctx context.Context, q string, ts time.Time) (model.Value, error) {
	if err := f.fault(q); err != nil {
		return nil, err
	}
	return f.Querier.Query(ctx, q, ts)
}

func (f faultyQuerier) QueryRange(ctx context.Context, q string, r evaluator.Range) (model.Value, error) {
	if err := f.fault(q); err != nil {
		return nil, err
	}
	return f.Querier.QueryRange(ctx, q, r)
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
	searchErrors   = `sum(rate(http_requests_total{job="search",code=~"5.."}[1m])) / sum(rate(http_requests_total{job="search"}[1m]))`
	paymentsErrors = `sum(rate(http_requests_total{job="payments",code=~"5.."}[1m])) / sum(rate(http_requests_total{job="payments"}[1m]))`
	// paymentsEvents counts payments' requests of the last minute: 600.
	paymentsEvents = `sum(increase(http_requests_total{job="payments"}[1m]))`
	edgeErrors     = `sum(rate(edge_requests_total{code=~"5.."}[1m])) / sum(rate(edge_requests_total[1m]))`
)

// edgeCompare is the edge proxy's eu cluster (error ratio 0.0004) against
// its us cluster (0.00216), with edgeErrors rewritten for each as the
// loader does.
func edgeCompare() *slo.CompareSpec {
	c := &slo.CompareSpec{Control: `{cluster="us"}`, Experiment: `{cluster="eu"}`, Window: slo.DefaultCompareWindow, Step: slo.DefaultCompareStep}
	var err error
	if c.ControlQuery, err = slo.InjectMatchers(edgeErrors, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "cluster", "us")}); err != nil {
		panic(err)
	}
	if c.ExperimentQuery, err = slo.InjectMatchers(edgeErrors, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "cluster", "eu")}); err != nil {
		panic(err)
	}
	return c
}

func fixtureDefinitions() *slo.Set {
	checkout := ratioSLO("checkout-availability", "checkout", 99.9, 30*24*time.Hour)
	checkout.Description = `Checkout <API> & "cart" requests that succeed`
	checkout.Labels = map[string]string{"team": "payments", "tier": `<1>`}
	checkout.Gate = slo.GatePolicy{MinBudgetRemaining: ptr(0.25), MaxBurnRate: ptr(6.0)}
	payments := ratioSLO("payments-availability", "payments", 99.5, 28*24*time.Hour)
	// 36,000 requests an hour: the page tier over 1h is held off, the one
	// over 6h (216,000) is not.
	payments.Alerting.Page.MinEvents = 50000
	search := ratioSLO("search-availability", "search", 99.9, 30*24*time.Hour)
	search.Alerting.Ticket.Enabled = false
	inventory := ratioSLO("inventory-availability", "inventory", 99, 30*24*time.Hour)
	catalog := &slo.SLO{
		Name: "catalog-uptime", Service: "catalog", Objective: 99.95, Window: 7 * 24 * time.Hour,
		Indicator: slo.Indicator{Raw: &slo.RawIndicator{ErrorRatio: `1 - avg_over_time(up{job="catalog"}[{{.window}}])`}},
		Gate:      slo.GatePolicy{MinBudgetRemaining: ptr(0.5)},
	}
	edge := &slo.SLO{
		Name: "edge-availability", Service: "edge", Objective: 99.9, Window: 30 * 24 * time.Hour,
		Indicator: slo.Indicator{Ratio: &slo.RatioIndicator{
			Errors: `sum(rate(edge_requests_total{code=~"5.."}[{{.window}}]))`,
			Total:  `sum(rate(edge_requests_total[{{.window}}]))`,
		}},
		GroupBy: []string{"cluster", "route"}, MaxGroups: 3,
		Alerting: slo.Alerting{Enabled: true, Name: slo.DefaultAlertName, Page: slo.AlertTier{Enabled: true}, Ticket: slo.AlertTier{Enabled: true}},
	}
	hyp := func(name string, probes ...*slo.Probe) *slo.Hypothesis {
		return &slo.Hypothesis{Name: name, FailAfter: 1, PassAfter: 1, OnNoData: slo.PolicyUnknown, OnError: slo.PolicyUnknown, Series: slo.SeriesAll, Probes: probes}
	}
	return &slo.Set{
		SLOs: []*slo.SLO{checkout, payments, search, inventory, catalog, edge},
		Hypotheses: []*slo.Hypothesis{
			hyp("checkout-steady",
				&slo.Probe{Name: "error-rate", Query: checkoutErrors, Tolerance: &slo.Tolerance{Op: slo.OpLT, Value: 0.05}},
				&slo.Probe{Name: "budget", SLO: "checkout-availability", BudgetRemaining: &slo.Tolerance{Op: slo.OpGE, Value: 0.5},
					BurnRate: &slo.BurnRateTolerance{Window: time.Hour, Below: 6}},
				// The spike (0.0304) against the hour before it (0.0004).
				&slo.Probe{Name: "errors-vs-last-hour", Query: checkoutErrors, Relative: &slo.Relative{
					Baseline: &slo.BaselineSpec{Window: time.Hour, Offset: time.Hour, Step: time.Minute}, MaxIncrease: ptr(0.5)}}),
			hyp("search-steady",
				&slo.Probe{Name: "p99-latency", Query: searchP99, Tolerance: &slo.Tolerance{Op: slo.OpLT, Value: 0.3}},
				&slo.Probe{Name: "catalog-budget", SLO: "catalog-uptime", BudgetRemaining: &slo.Tolerance{Op: slo.OpGE, Value: 0.5}},
				// Frozen at the start of the runs that watch search-steady.
				&slo.Probe{Name: "errors-vs-baseline", Query: searchErrors, Relative: &slo.Relative{
					Baseline: &slo.BaselineSpec{Window: time.Hour, Step: time.Minute}, MaxIncrease: ptr(0.5)}}),
			hyp("canary",
				&slo.Probe{Name: "eu-vs-us", Query: edgeErrors, Relative: &slo.Relative{Compare: edgeCompare(), MaxIncrease: ptr(0.2)}},
				&slo.Probe{Name: "eu-vs-us-test", Query: edgeErrors, Relative: &slo.Relative{Compare: edgeCompare(), Test: &slo.StatTest{
					Method: slo.TestMannWhitney, Confidence: 0.95, MinEffect: 0.1, MinSamples: 10, Worse: slo.WorseIncrease}}},
				&slo.Probe{Name: "payments-errors", Query: paymentsErrors, Tolerance: &slo.Tolerance{Op: slo.OpLT, Value: 0.05},
					Events: paymentsEvents, MinEvents: 1000}),
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

// newFixture evaluates a few cycles ending at fixtureEnd and leaves three
// runs behind: one aborted, one passed and one running.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	end := fixtureEnd
	engine, err := embedded.New(embedded.Options{Storage: fixtureDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	prom := faultyQuerier{Querier: engine, faults: fixtureFaults}
	c := &clock{t: end.Add(-3 * time.Minute)}
	var mgr *chaos.Manager
	ev, err := evaluator.New(evaluator.Options{Querier: prom, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: c.Now,
		// As app wires it: the baselines of hypotheses a run watches are
		// frozen at its start.
		RunStarts: func() map[string]time.Time {
			if mgr == nil {
				return nil
			}
			return mgr.RunStarts()
		}})
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
	mgr, err = chaos.New(chaos.Options{Store: st, Snapshots: func() chaos.Statuses { return ev.Snapshot() }, Registerer: prometheus.NewRegistry(), Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ev.OnCycle(func(ctx context.Context, snap *evaluator.Snapshot) { mgr.OnCycle(ctx, snap) })
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

// TestFixtureNumbers checks that what the UI tests show is what the
// fixture's samples imply, computed by hand: the evaluator read them
// through real PromQL, and the faults hit only what they should.
func TestFixtureNumbers(t *testing.T) {
	f := newFixture(t)
	near := func(got evaluator.Num, want float64) bool {
		return got.Valid() && math.Abs(float64(got)-want) <= 1e-3*math.Max(1, math.Abs(want))
	}
	// Error ratio over the SLO window → budget remaining = 1 - ratio/(1-objective).
	const month = 30 * 24 * 3600.0
	budgets := map[string]float64{
		"checkout-availability": 1 - (0.02*month+1.5*40*60)/(50*month)/0.001,
		"payments-availability": 1 - 0.06/10/0.005,
		"search-availability":   1 - 0.16/200/0.001,
		"catalog-uptime":        1,
		// (0.01 + 0.004 + 0.05) errors a second of 50, with us /pay, which
		// is not followed (maxGroups 3) but counts in the aggregate.
		"edge-availability":                             1 - 0.064/50/0.001,
		`edge-availability{cluster="eu",route="/cart"}`: 1 - 0.01/5/0.001,
		`edge-availability{cluster="eu",route="/pay"}`:  1,
		`edge-availability{cluster="us",route="/cart"}`: 1 - 0.004/5/0.001,
	}
	for _, s := range f.ev.SLOs() {
		want, ok := budgets[s.Name]
		if !ok {
			if !strings.Contains(s.Error, "context deadline exceeded") || s.Fresh {
				t.Errorf("%s: fresh %v, error %q; want the injected timeout", s.Name, s.Fresh, s.Error)
			}
			continue
		}
		if !s.Fresh || !near(s.BudgetRemaining, want) {
			t.Errorf("%s: budget remaining %v (fresh %v), want %.4f", s.Name, s.BudgetRemaining, s.Fresh, want)
		}
		if s.Name == "edge-availability" {
			g := s.Groups
			if g == nil || !g.Discovered || g.Found != 4 || g.Tracked != 3 || g.Limited != 1 || g.Limit != 3 || len(g.Members) != 3 {
				t.Errorf("%s: groups %+v, want 4 found, 3 followed, 1 limited", s.Name, g)
			}
		}
		if s.Name == "payments-availability" {
			for _, a := range s.Alerts {
				if a.LowTraffic != (a.Severity == slo.SeverityPage) {
					t.Errorf("%s %s alert: low traffic %v, want it on the page tier only (36k events an hour, minEvents 50k)", s.Name, a.Severity, a.LowTraffic)
				}
			}
		}
		if s.Name == "checkout-availability" {
			if w, _ := s.WindowStatus(5 * time.Minute); !near(w.BurnRate, (0.02+1.5)/50/0.001) {
				t.Errorf("%s: burn rate over 5m %v, want 30.4 (the spike)", s.Name, w.BurnRate)
			}
		}
	}
	probes := map[string]float64{"checkout-steady/error-rate": (0.02 + 1.5) / 50, "search-steady/p99-latency": 0.12,
		"checkout-steady/errors-vs-last-hour": (0.02 + 1.5) / 50, "search-steady/errors-vs-baseline": 0.16 / 200,
		"canary/eu-vs-us": 0.01 / 25, "canary/eu-vs-us-test": 0.01 / 25}
	// What the relative probes compare with: the hour before the spike,
	// search's own baseline, the us cluster (errors of 0.004 + 0.05 in 25).
	baselines := map[string]float64{"checkout-steady/errors-vs-last-hour": 0.02 / 50, "search-steady/errors-vs-baseline": 0.16 / 200,
		"canary/eu-vs-us": 0.054 / 25, "canary/eu-vs-us-test": 0.054 / 25}
	for _, h := range f.ev.Hypotheses() {
		for _, p := range h.Probes {
			name := h.Name + "/" + p.Name
			if want, ok := probes[name]; ok && !near(p.Value, want) {
				t.Errorf("%s = %v, want %v", name, p.Value, want)
			}
			if want, ok := baselines[name]; ok && (p.Baseline == nil || !near(p.Baseline.Value, want)) {
				t.Errorf("%s: baseline %+v, want %v", name, p.Baseline, want)
			}
			if name == "search-steady/errors-vs-baseline" && (p.Baseline == nil || !p.Baseline.Frozen) {
				t.Errorf("%s: baseline %+v, want it frozen at the start of the run that watches it", name, p.Baseline)
			}
			if name == "canary/eu-vs-us-test" && (p.Baseline == nil || p.Baseline.Test == nil || p.Baseline.Test.Decision != "pass") {
				t.Errorf("%s: %+v, want a test that passes (eu is better than us)", name, p.Baseline)
			}
			if name == "canary/payments-errors" && (p.Outcome != evaluator.OutcomeLowTraffic || p.Events == nil || !near(*p.Events, 600)) {
				t.Errorf("%s: outcome %q, events %v; want low traffic on 600 events", name, p.Outcome, p.Events)
			}
			if h.Name == "inventory-steady" && p.Name == "stock-level" && p.Outcome != "no data" {
				t.Errorf("inventory-steady/stock-level: outcome %q, want no data (no series, no fault)", p.Outcome)
			}
		}
	}
}
