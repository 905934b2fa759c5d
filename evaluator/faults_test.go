package evaluator_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/chaos"
	"github.com/slogate/slogate/evaluator/promapi"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/internal/faultproxy"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// The probe every hypothesis of the fault tests asks, and the SLO's total
// query as the evaluator runs it for one slice (R = MinRange = 5s).
const (
	faultProbeQuery = `sum(rate(http_requests_total{code="500"}[5s])) / sum(rate(http_requests_total[5s]))`
	faultTotalQuery = `sum(rate(http_requests_total[5s]))`
	faultExperiment = "break-shop"
)

// faultHypotheses are the same probe under three policies: the defaults
// (every doubt is unknown), a strict one (doubt is failure, at once) and one
// satisfied by any series within tolerance.
var faultHypotheses = []string{"steady", "strict", "any"}

func faultSet() *slo.Set {
	probe := func() []*slo.Probe {
		return []*slo.Probe{{Name: "error-rate", Query: faultProbeQuery, Tolerance: &slo.Tolerance{Op: slo.OpLT, Value: 0.1}}}
	}
	minBudget, maxBurn := 0.25, 6.0
	return &slo.Set{
		SLOs: []*slo.SLO{{
			Name: "live", Service: "shop", Objective: 99, Window: 24 * time.Hour,
			Indicator: slo.Indicator{Ratio: &slo.RatioIndicator{
				Errors: `sum(rate(http_requests_total{code="500"}[{{.window}}]))`,
				Total:  `sum(rate(http_requests_total[{{.window}}]))`,
			}},
			Alerting: slo.Alerting{Enabled: true, Page: slo.AlertTier{Enabled: true}, Ticket: slo.AlertTier{Enabled: true}},
			Gate:     slo.GatePolicy{MinBudgetRemaining: &minBudget, MaxBurnRate: &maxBurn},
		}},
		Hypotheses: []*slo.Hypothesis{
			{Name: "steady", FailAfter: 2, PassAfter: 2, OnNoData: slo.PolicyUnknown, OnError: slo.PolicyUnknown, Series: slo.SeriesAll, Probes: probe()},
			{Name: "strict", FailAfter: 1, PassAfter: 2, OnNoData: slo.PolicyFail, OnError: slo.PolicyFail, Series: slo.SeriesAll, Probes: probe()},
			{Name: "any", FailAfter: 2, PassAfter: 2, OnNoData: slo.PolicyUnknown, OnError: slo.PolicyUnknown, Series: slo.SeriesAny, Probes: probe()},
		},
		Experiments: []*slo.Experiment{{
			Name: faultExperiment, Hypotheses: []string{"steady"}, SLOs: []string{"live"}, OnUnknown: slo.GateClosed,
		}},
	}
}

// faultEnv is a real Prometheus scraping a synthetic target every second,
// a fault proxy in front of it, and an evaluator and a gate reading through
// the proxy, driven cycle by cycle. One of each serves every fault in turn,
// so recovering from one fault is also the starting point of the next.
type faultEnv struct {
	prom  *testenv.Prometheus
	proxy *faultproxy.Proxy
	ev    *evaluator.Evaluator
	reg   *prometheus.Registry
	runs  *chaos.Manager
	// down is set while Prometheus is killed; last is the time of the
	// latest cycle.
	down bool
	last time.Time
}

func startFaultEnv(t *testing.T) *faultEnv {
	target := testenv.NewTarget(t)
	requests := target.Counter("http_requests_total", "code")
	requests.WithLabelValues("200").Add(0)
	requests.WithLabelValues("500").Add(0)
	prom := testenv.StartPrometheus(t, testenv.PromOptions{ScrapeInterval: time.Second, Targets: []testenv.ScrapeTarget{target.ScrapeTarget("shop")}})

	// 100 requests a second, 0.1 % errors: well within the probe's
	// tolerance and the SLO's gate policy.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				requests.WithLabelValues("500").Add(0.01)
				requests.WithLabelValues("200").Add(9.99)
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })

	proxy := faultproxy.New(t, prom.URL())
	q, err := promapi.New(promapi.Options{URL: proxy.URL(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: time.Second, MinRange: 5 * time.Second, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetDefinitions(faultSet()); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	runs, err := chaos.New(chaos.Options{Store: st, Snapshots: func() chaos.Statuses { return ev.Snapshot() }})
	if err != nil {
		t.Fatal(err)
	}
	return &faultEnv{prom: prom, proxy: proxy, ev: ev, reg: reg, runs: runs}
}

// cycle evaluates once, a second after the previous cycle (or at the
// current second, if the test waited since) as Run does at interval
// boundaries, so that every cycle measures a new slice; and as soon as
// Prometheus (asked directly, not through the proxy) has scraped past that
// second, so that the slices hold all their data, unless it is down. It
// returns the evaluation time.
func (e *faultEnv) cycle(t *testing.T) time.Time {
	t.Helper()
	at := nextCycle(e.last, time.Second)
	if !e.down {
		waitIngested(t, directQuerier{e.prom}, at)
	}
	e.ev.Evaluate(context.Background(), at)
	e.last = at
	return at
}

// faultState is what the evaluator and the gate say after a cycle.
type faultState struct {
	at   time.Time
	hyps map[string]evaluator.HypothesisStatus
	slo  evaluator.SLOStatus
	gate *api.GateAnswer
}

func (e *faultEnv) state(t *testing.T, at time.Time) faultState {
	t.Helper()
	s := faultState{at: at, hyps: map[string]evaluator.HypothesisStatus{}}
	for _, name := range faultHypotheses {
		h, ok := e.ev.Hypothesis(name)
		if !ok {
			t.Fatalf("hypothesis %s is not evaluated", name)
		}
		s.hyps[name] = h
	}
	var ok bool
	if s.slo, ok = e.ev.SLO("live"); !ok {
		t.Fatal("SLO live is not evaluated")
	}
	var err error
	if s.gate, err = e.runs.Gate(faultExperiment); err != nil {
		t.Fatal(err)
	}
	return s
}

// healthy says what, if anything, keeps s from being the steady state:
// every verdict pass, the SLO fresh with complete windows, the gate open.
func (s faultState) healthy() string {
	var problems []string
	for _, name := range faultHypotheses {
		if h := s.hyps[name]; h.Verdict != slo.Pass || !h.Fresh {
			problems = append(problems, fmt.Sprintf("hypothesis %s: verdict %s fresh %v probes %+v", name, h.Verdict, h.Fresh, h.Probes))
		}
	}
	if !s.slo.Fresh || s.slo.Error != "" {
		problems = append(problems, fmt.Sprintf("SLO fresh %v error %q", s.slo.Fresh, s.slo.Error))
	}
	for _, w := range s.slo.Windows {
		if !w.Complete {
			problems = append(problems, "SLO window "+w.Window+" incomplete")
		}
	}
	if s.gate.Status != api.GateOpen {
		problems = append(problems, fmt.Sprintf("gate %s: %+v", s.gate.Status, s.gate.Reasons))
	}
	return strings.Join(problems, "; ")
}

// settle cycles until the steady state is back, at most maxCycles times,
// and returns the last state.
func (e *faultEnv) settle(t *testing.T, maxCycles int) faultState {
	t.Helper()
	var s faultState
	for i := 1; i <= maxCycles; i++ {
		s = e.state(t, e.cycle(t))
		if s.healthy() == "" {
			t.Logf("steady state after %d evaluations", i)
			return s
		}
	}
	t.Fatalf("not back to the steady state after %d evaluations: %s", maxCycles, s.healthy())
	return s
}

// failures reads slogate_query_failures_total by reason.
func (e *faultEnv) failures(t *testing.T) map[string]float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "slogate_query_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// Prometheus-style answers of a broken server.
const (
	promUnavailable = `{"status":"error","errorType":"unavailable","error":"TSDB not ready"}`
	promExecError   = `{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory in query execution"}`
)

// probeSeries rewrites the probe's answer: fn gets its one real series.
func probeSeries(fn func(real faultproxy.Sample) []faultproxy.Sample) func(string, []byte) []byte {
	return faultproxy.ForQuery(faultProbeQuery, func(s []faultproxy.Sample) []faultproxy.Sample {
		if len(s) != 1 {
			return s // not what the rewrite is about; the test sees the real answer
		}
		return fn(s[0])
	})
}

func withLabel(s faultproxy.Sample, name, value, v string) faultproxy.Sample {
	m := map[string]string{name: value}
	for k, val := range s.Metric {
		m[k] = val
	}
	return faultproxy.Sample{Metric: m, Time: s.Time, Value: v}
}

// faultCycles is how many evaluations each fault lasts: enough for the
// debounced verdicts (failAfter 2) to settle.
const faultCycles = 2

// recoveryCycles bounds the evaluations until everything passes again once
// the fault is gone: passAfter (2) plus one for the evaluation that refetches
// the slices missed during the fault.
const recoveryCycles = 3

// TestPrometheusFaults puts each way Prometheus misbehaves between the
// evaluator and a real Prometheus, and checks that slogate stays honest
// during the fault (no pass the policies do not allow, the gate closed, the
// SLO stale with its error, failures counted by the right reason) and
// recovers completely once it is gone, without a restart: verdicts pass, the
// gate opens and the slices missed during the fault are refetched to the
// same values Prometheus has.
func TestPrometheusFaults(t *testing.T) {
	e := startFaultEnv(t)
	e.prom.WaitForQuery(t, faultProbeQuery, func(v float64) bool { return v < 0.1 }, 30*time.Second)
	e.settle(t, 10)

	const (
		pass    = slo.Pass
		fail    = slo.Fail
		unknown = slo.Unknown
	)
	cases := []struct {
		name   string
		inject func(t *testing.T, e *faultEnv)
		// recover ends the fault (default: the proxy passes again). It
		// gets the goroutines to ignore so far and returns them, with any
		// that the recovery legitimately starts.
		recover func(t *testing.T, e *faultEnv, leakOpts []goleak.Option) []goleak.Option
		// reason is the failure reason that must be counted, and the only
		// one; "" for wrong answers that are not failed queries.
		reason string
		// outcome is the probe's outcome during the fault.
		outcome string
		// want is each hypothesis' probe verdict during the fault, which
		// its debounced verdict must reach.
		want map[string]slo.Verdict
	}{
		{
			name:   "Prometheus killed",
			inject: func(t *testing.T, e *faultEnv) { e.prom.Kill(); e.down = true },
			recover: func(t *testing.T, e *faultEnv, leakOpts []goleak.Option) []goleak.Option {
				// Everything the fault started is gone by now: check before
				// the restart adds its own long-lived goroutines (the
				// child's reaper, the target's connection for the new
				// scrapes), which belong to the test's Prometheus.
				e.proxy.CloseClientConnections()
				goleak.VerifyNone(t, leakOpts...)
				restarted := float64(time.Now().UnixMilli()) / 1000
				e.prom.Restart(t)
				e.down = false
				// Prometheus applies its scrape targets seconds after it
				// starts, and a SIGKILL loses its newest samples: until it
				// has scraped twice since, rate(x[5s]) is about the time
				// before the crash, if anything. Wait for fresh data.
				scrape := `timestamp(up{job="shop"})`
				first := e.prom.WaitForQuery(t, scrape, func(v float64) bool { return v > restarted }, 30*time.Second)
				e.prom.WaitForQuery(t, scrape, func(v float64) bool { return v > first }, 30*time.Second)
				return append(leakOpts, goleak.IgnoreCurrent())
			},
			reason: evaluator.ReasonUnreachable, outcome: "error",
			want: map[string]slo.Verdict{"steady": unknown, "strict": fail, "any": unknown},
		},
		{
			name:   "hanging",
			inject: func(t *testing.T, e *faultEnv) { e.proxy.Hang() },
			reason: evaluator.ReasonTimeout, outcome: "error",
			want: map[string]slo.Verdict{"steady": unknown, "strict": fail, "any": unknown},
		},
		{
			name:   "slower than the timeout",
			inject: func(t *testing.T, e *faultEnv) { e.proxy.Slow(3 * time.Second) },
			reason: evaluator.ReasonTimeout, outcome: "error",
			want: map[string]slo.Verdict{"steady": unknown, "strict": fail, "any": unknown},
		},
		{
			name:   "503 unavailable",
			inject: func(t *testing.T, e *faultEnv) { e.proxy.Status(http.StatusServiceUnavailable, promUnavailable) },
			reason: evaluator.ReasonServer, outcome: "error",
			want: map[string]slo.Verdict{"steady": unknown, "strict": fail, "any": unknown},
		},
		{
			name:   "500 without a body",
			inject: func(t *testing.T, e *faultEnv) { e.proxy.Status(http.StatusInternalServerError, "") },
			reason: evaluator.ReasonServer, outcome: "error",
			want: map[string]slo.Verdict{"steady": unknown, "strict": fail, "any": unknown},
		},
		{
			name:   "connections reset",
			inject: func(t *testing.T, e *faultEnv) { e.proxy.Drop() },
			reason: evaluator.ReasonUnreachable, outcome: "error",
			want: map[string]slo.Verdict{"steady": unknown, "strict": fail, "any": unknown},
		},
		{
			name:   "connections closed without an answer",
			inject: func(t *testing.T, e *faultEnv) { e.proxy.Hangup() },
			reason: evaluator.ReasonUnreachable, outcome: "error",
			want: map[string]slo.Verdict{"steady": unknown, "strict": fail, "any": unknown},
		},
		{
			name: "NaN value",
			inject: func(t *testing.T, e *faultEnv) {
				e.proxy.Rewrite(probeSeries(func(s faultproxy.Sample) []faultproxy.Sample { s.Value = "NaN"; return []faultproxy.Sample{s} }))
			},
			outcome: "NaN",
			want:    map[string]slo.Verdict{"steady": unknown, "strict": fail, "any": unknown},
		},
		{
			name: "empty result",
			inject: func(t *testing.T, e *faultEnv) {
				e.proxy.Rewrite(probeSeries(func(faultproxy.Sample) []faultproxy.Sample { return nil }))
			},
			outcome: "no data",
			want:    map[string]slo.Verdict{"steady": unknown, "strict": fail, "any": unknown},
		},
		{
			// A good series and one without a number: "all" cannot say
			// that every series holds, "any" has its good one.
			name: "several series, one NaN",
			inject: func(t *testing.T, e *faultEnv) {
				e.proxy.Rewrite(probeSeries(func(s faultproxy.Sample) []faultproxy.Sample {
					return []faultproxy.Sample{s, withLabel(s, "replica", "b", "NaN")}
				}))
			},
			outcome: "several series",
			want:    map[string]slo.Verdict{"steady": unknown, "strict": fail, "any": pass},
		},
		{
			name: "several series, one out of tolerance",
			inject: func(t *testing.T, e *faultEnv) {
				e.proxy.Rewrite(probeSeries(func(s faultproxy.Sample) []faultproxy.Sample {
					return []faultproxy.Sample{s, withLabel(s, "replica", "b", "0.5")}
				}))
			},
			outcome: "several series",
			want:    map[string]slo.Verdict{"steady": fail, "strict": fail, "any": pass},
		},
	}
	defs := faultSet()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.proxy.CloseClientConnections()
			leakOpts := []goleak.Option{goleak.IgnoreCurrent()}
			before := e.failures(t)
			requests := e.proxy.Requests()

			tc.inject(t, e)
			var first, last time.Time
			for i := 1; i <= faultCycles; i++ {
				s := e.state(t, e.cycle(t))
				if i == 1 {
					first = s.at
				}
				last = s.at
				checkDuringFault(t, i, s, tc.reason, tc.outcome, tc.want, defs)
			}
			for _, name := range faultHypotheses {
				if got, _ := e.ev.Hypothesis(name); got.Verdict != tc.want[name] && !staleUnknown(got) {
					t.Errorf("hypothesis %s: verdict %s after %d evaluations of the fault, want %s", name, got.Verdict, faultCycles, tc.want[name])
				}
			}
			if e.proxy.Requests() == requests {
				t.Errorf("no query went through the proxy during the fault")
			}
			checkFailures(t, before, e.failures(t), tc.reason)

			if tc.recover != nil {
				leakOpts = tc.recover(t, e, leakOpts)
			} else {
				e.proxy.Pass()
			}
			e.settle(t, recoveryCycles)
			if tc.reason != "" {
				checkRefetched(t, e, first.Add(-time.Second), last, tc.recover == nil)
			}

			e.proxy.CloseClientConnections()
			goleak.VerifyNone(t, leakOpts...)
		})
	}
}

// checkDuringFault checks the state after the i-th evaluation of a fault.
func checkDuringFault(t *testing.T, i int, s faultState, reason, outcome string, want map[string]slo.Verdict, defs *slo.Set) {
	t.Helper()
	for _, name := range faultHypotheses {
		h := s.hyps[name]
		if p := h.Probes[0]; p.Verdict != want[name] || p.Outcome != outcome {
			t.Errorf("evaluation %d: hypothesis %s: probe verdict %s outcome %q (%s), want %s and %q", i, name, p.Verdict, p.Outcome, p.Error, want[name], outcome)
		}
		// A pass is only allowed where the policy says pass, or while a
		// fail is being debounced (failAfter evaluations in a row).
		debouncing := want[name] == slo.Fail && i < defs.Hypothesis(name).FailAfter
		if h.Verdict == slo.Pass && want[name] != slo.Pass && !debouncing {
			t.Errorf("evaluation %d: hypothesis %s reads pass during the fault: %+v", i, name, h)
		}
		if want[name] == slo.Pass && h.Verdict != slo.Pass {
			t.Errorf("evaluation %d: hypothesis %s: verdict %s, want pass throughout (%+v)", i, name, h.Verdict, h.Probes)
		}
		if transport := reason != ""; h.Fresh == transport {
			t.Errorf("evaluation %d: hypothesis %s: fresh %v with a failing query %v", i, name, h.Fresh, transport)
		}
	}
	if s.gate.Status == api.GateOpen {
		t.Errorf("evaluation %d: gate open during the fault: %+v", i, s.gate)
	}
	if reason != "" {
		if s.slo.Fresh || !strings.Contains(s.slo.Error, ": "+reason+": ") {
			t.Errorf("evaluation %d: SLO fresh %v error %q, want stale with a %s error", i, s.slo.Fresh, s.slo.Error, reason)
		}
	} else if !s.slo.Fresh || s.slo.Error != "" {
		// Only the probe's answers are wrong; the SLO's queries are fine.
		t.Errorf("evaluation %d: SLO fresh %v error %q, want fresh", i, s.slo.Fresh, s.slo.Error)
	}
}

// staleUnknown reports whether h reads unknown only because its last
// evaluation is two intervals old: an evaluation whose queries each wait for
// the 1s timeout outlasts the 1s interval, and an old verdict is not a
// verdict. That is never a pass, so it is honest too.
func staleUnknown(h evaluator.HypothesisStatus) bool {
	return h.Verdict == slo.Unknown && time.Since(h.EvaluatedAt) >= 2*time.Second
}

// checkFailures checks that only reason's failure count grew, or none when
// reason is "".
func checkFailures(t *testing.T, before, after map[string]float64, reason string) {
	t.Helper()
	if reason != "" && after[reason] <= before[reason] {
		t.Errorf("slogate_query_failures_total{reason=%q} did not grow (%g → %g)", reason, before[reason], after[reason])
	}
	for r, n := range after {
		if r != reason && n != before[r] {
			t.Errorf("slogate_query_failures_total{reason=%q} grew %g → %g, want only %q", r, before[r], n, reason)
		}
	}
}

// checkRefetched compares the events the evaluator holds for (from, to],
// the span of a fault whose slices all failed and were fetched again after
// it, with what Prometheus says for the same slices: no hole, no double
// count. scraped says Prometheus kept scraping during the fault, so that
// there are events to compare.
func checkRefetched(t *testing.T, e *faultEnv, from, to time.Time, scraped bool) {
	t.Helper()
	_, total, complete, ok := e.ev.Snapshot().SLOCounts("live", from, to)
	if !ok || !complete {
		t.Fatalf("SLO counts over the fault (%s, %s]: found %v complete %v", from.Format(time.TimeOnly), to.Format(time.TimeOnly), ok, complete)
	}
	span := int(to.Sub(from) / time.Second)
	query := fmt.Sprintf("sum_over_time(%s[%ds:1s])", faultTotalQuery, span)
	samples, err := e.prom.TryQuery(context.Background(), query, to)
	if err != nil || len(samples) > 1 {
		t.Fatalf("direct query: %v %+v", err, samples)
	}
	direct := 0.0 // no sample: Prometheus has no data for any of the slices
	if len(samples) == 1 {
		direct = samples[0].Value
	}
	if scraped && direct == 0 {
		t.Errorf("Prometheus has no events during the fault (%s, %s], although it was scraping", from.Format(time.TimeOnly), to.Format(time.TimeOnly))
	}
	if math.Abs(total-direct) > 1e-3*direct {
		t.Errorf("events during the fault: %g in the slices, %g from a direct query over the same %ds", total, direct, span)
	}
}

// TestQueryFailureReasons checks how the Prometheus client names each way a
// query can fail (the reason label of slogate_query_failures_total and of
// the errors users read), for instant and range queries, against a real
// Prometheus behind the fault proxy.
func TestQueryFailureReasons(t *testing.T) {
	prom := testenv.StartPrometheus(t, testenv.PromOptions{})
	proxy := faultproxy.New(t, prom.URL())
	q, err := promapi.New(promapi.Options{URL: proxy.URL(), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		inject func()
		reason string // "" for success
	}{
		{"pass", proxy.Pass, ""},
		{"hanging", proxy.Hang, evaluator.ReasonTimeout},
		{"slower than the timeout", func() { proxy.Slow(time.Second) }, evaluator.ReasonTimeout},
		{"503 unavailable", func() { proxy.Status(http.StatusServiceUnavailable, promUnavailable) }, evaluator.ReasonServer},
		{"500 without a body", func() { proxy.Status(http.StatusInternalServerError, "") }, evaluator.ReasonServer},
		{"422 execution error", func() { proxy.Status(http.StatusUnprocessableEntity, promExecError) }, evaluator.ReasonServer},
		{"400 bad data", func() {
			proxy.Status(http.StatusBadRequest, `{"status":"error","errorType":"bad_data","error":"1:1: parse error: unexpected end of input"}`)
		}, evaluator.ReasonBadQuery},
		// Something that is not Prometheus answers (a login page of a
		// proxy, a wrong URL): the answer is bad, the server did answer.
		{"200 with HTML", func() { proxy.Status(http.StatusOK, "<html><body>Please log in</body></html>") }, evaluator.ReasonBadResult},
		{"connection reset", proxy.Drop, evaluator.ReasonUnreachable},
		{"connection closed without an answer", proxy.Hangup, evaluator.ReasonUnreachable},
		{"answer cut short", func() { proxy.Cut(20) }, evaluator.ReasonUnreachable},
		{"Prometheus killed", func() { proxy.Pass(); prom.Kill() }, evaluator.ReasonUnreachable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.inject()
			now := time.Now()
			_, errInstant := q.Query(context.Background(), "vector(1)", now)
			_, errRange := q.QueryRange(context.Background(), "vector(1)", evaluator.Range{Start: now.Add(-time.Minute), End: now, Step: 15 * time.Second})
			for kind, err := range map[string]error{"instant": errInstant, "range": errRange} {
				switch {
				case tc.reason == "" && err != nil:
					t.Errorf("%s query: %v", kind, err)
				case tc.reason != "" && evaluator.FailureReason(err) != tc.reason:
					t.Errorf("%s query: reason %q, want %q: %v", kind, evaluator.FailureReason(err), tc.reason, err)
				}
			}
		})
	}
	proxy.Close()
	// The client's keep-alive connections end with the proxy's.
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
}
