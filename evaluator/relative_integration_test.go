package evaluator_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/promapi"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// relativeDefs are the definitions of TestRelativePrometheus: the same
// services judged with today's fixed threshold, with a baseline, with a
// control group and a test, and behind low-traffic guards.
const relativeDefs = `
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: high-fixed}
spec:
  probes:
    - name: error-ratio
      query: sum(rate(http_requests_total{job="base",service="high",code="500"}[2m])) / sum(rate(http_requests_total{job="base",service="high"}[2m]))
      tolerance: "< 0.01"
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: low-fixed}
spec:
  probes:
    - name: error-ratio
      query: sum(rate(http_requests_total{job="base",service="low",code="500"}[2m])) / sum(rate(http_requests_total{job="base",service="low"}[2m]))
      tolerance: "< 0.01"
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: high-baseline}
spec:
  probes:
    - name: error-ratio
      query: sum(rate(http_requests_total{job="base",service="high",code="500"}[2m])) / sum(rate(http_requests_total{job="base",service="high"}[2m]))
      tolerance: {relativeTo: baseline, baseline: {window: 1h}, maxIncrease: 50%}
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: low-baseline}
spec:
  probes:
    - name: error-ratio
      query: sum(rate(http_requests_total{job="base",service="low",code="500"}[2m])) / sum(rate(http_requests_total{job="base",service="low"}[2m]))
      tolerance: {relativeTo: baseline, baseline: {window: 1h}, maxIncrease: 50%}
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: zones-same}
spec:
  probes:
    - name: error-ratio
      query: sum(rate(http_requests_total{job="zones",scenario="same",code="500"}[1m])) / sum(rate(http_requests_total{job="zones",scenario="same"}[1m]))
      tolerance:
        compare: {control: '{zone!="a"}', experiment: '{zone="a"}'}
        test: mann-whitney
        confidence: 95%
        minEffect: 25%
        minSamples: 5
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: zones-diff}
spec:
  probes:
    - name: error-ratio
      query: sum(rate(http_requests_total{job="zones",scenario="diff",code="500"}[1m])) / sum(rate(http_requests_total{job="zones",scenario="diff"}[1m]))
      tolerance:
        compare: {control: '{zone!="a"}', experiment: '{zone="a"}'}
        test: mann-whitney
        confidence: 95%
        minEffect: 25%
        minSamples: 5
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: zones-bounds}
spec:
  probes:
    - name: error-ratio
      query: sum(rate(http_requests_total{job="zones",scenario="diff",code="500"}[5m])) / sum(rate(http_requests_total{job="zones",scenario="diff"}[5m]))
      tolerance:
        compare: {control: '{zone!="a"}', experiment: '{zone="a"}'}
        maxIncrease: 50%
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: night-errors}
spec:
  probes:
    - name: error-ratio
      query: sum(rate(http_requests_total{job="night",code="500"}[1h])) / sum(rate(http_requests_total{job="night"}[1h]))
      tolerance: "< 0.01"
      events: sum(increase(http_requests_total{job="night"}[1h]))
      minEvents: 100
---
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: night}
spec:
  service: night
  objective: 99.9
  window: 1d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="night",code="500"}[{{.window}}]))
      total: sum(rate(http_requests_total{job="night"}[{{.window}}]))
  alerting: {minEvents: 100}
---
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: night-unguarded}
spec:
  service: night
  objective: 99.9
  window: 1d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="night",code="500"}[{{.window}}]))
      total: sum(rate(http_requests_total{job="night"}[{{.window}}]))
`

// relativeHistory writes 26 hours of request counters ending at end, with
// a run from runStart on: the high service's error ratio goes from 0.8 %
// to 1.6 % and the low one's from 0.001 % to 0.002 %; of three zones, zone
// a's error ratio doubles in scenario diff and stays in scenario same
// (every zone's ratio 1 % ± 10 % per minute, seeded); the night service
// has 5 requests an hour, 3 of them failing in the last hour.
func relativeHistory(t *testing.T, runStart, end time.Time) string {
	const step = 15 * time.Second
	start := end.Add(-26 * time.Hour)
	type series struct {
		labels map[string]string
		rate   func(ts time.Time) float64 // per second
		value  float64
	}
	var all []*series
	add := func(lbls map[string]string, total float64, ratio func(time.Time) float64) {
		ok := map[string]string{"code": "200"}
		bad := map[string]string{"code": "500"}
		for k, v := range lbls {
			ok[k], bad[k] = v, v
		}
		all = append(all,
			&series{labels: ok, rate: func(ts time.Time) float64 { return total * (1 - ratio(ts)) }},
			&series{labels: bad, rate: func(ts time.Time) float64 { return total * ratio(ts) }})
	}
	during := func(before, after float64) func(time.Time) float64 {
		return func(ts time.Time) float64 {
			if ts.Before(runStart) {
				return before
			}
			return after
		}
	}
	add(map[string]string{"job": "base", "service": "high"}, 100, during(0.008, 0.016))
	add(map[string]string{"job": "base", "service": "low"}, 100, during(0.00001, 0.00002))
	for si, scenario := range []string{"same", "diff"} {
		for zi, zone := range []string{"a", "b", "c"} {
			noise := map[int64]float64{}
			rng := rand.New(rand.NewPCG(uint64(zi+1), uint64(si+1)))
			ratio := func(ts time.Time) float64 {
				m := ts.Unix() / 60
				u, ok := noise[m]
				if !ok {
					u = rng.Float64()*2 - 1
					noise[m] = u
				}
				r := 0.01 * (1 + 0.1*u)
				if scenario == "diff" && zone == "a" && !ts.Before(runStart) {
					r *= 2
				}
				return r
			}
			add(map[string]string{"job": "zones", "scenario": scenario, "zone": zone}, 50, ratio)
		}
	}
	add(map[string]string{"job": "night"}, 5.0/3600, func(ts time.Time) float64 {
		if ts.Before(end.Add(-time.Hour)) {
			return 0
		}
		return 0.6
	})

	om := testenv.NewOMWriter(t)
	om.Family("http_requests_total", testenv.OMCounter)
	for ts := start; !ts.After(end); ts = ts.Add(step) {
		for _, s := range all {
			s.value += s.rate(ts) * step.Seconds()
			om.Sample(s.labels, ts, s.value)
		}
	}
	return om.Close()
}

// baselineCounter counts the queries whose text contains a marker.
type baselineCounter struct {
	evaluator.Querier
	mu     sync.Mutex
	counts map[string]int
}

func (c *baselineCounter) Query(ctx context.Context, q string, at time.Time) (model.Value, error) {
	c.mu.Lock()
	// A baseline asked alone, or as a term of a union.
	for _, m := range baselineTerm.FindAllString(q, -1) {
		c.counts[m]++
	}
	c.mu.Unlock()
	return c.Querier.Query(ctx, q, at)
}

var baselineTerm = regexp.MustCompile(`avg_over_time\(\(.*?\)\[1h:1m\]\)`)

// TestRelativePrometheus is the acceptance on a real Prometheus
// with generated history whose right answers are known:
//   - a run that doubles the error ratio of a 0.8 % service fails with
//     today's fixed threshold and with a baseline; on a 0.001 % service the
//     fixed threshold passes it wrongly and the baseline fails it;
//   - the baseline is frozen at the run's start (asked once per run);
//   - a control/experiment pair with no difference passes and never fails,
//     one with a doubled error ratio fails within a few slices;
//   - low traffic is unknown for a probe, and pages nobody, while the same
//     SLO without the guard would have paged.
func TestRelativePrometheus(t *testing.T) {
	// Prometheus keeps recent history only: the one reading of the wall
	// clock. Everything is relative to the history's end.
	end := time.Now().Truncate(time.Hour).Add(-90 * time.Minute)
	runStart := end.Add(-40 * time.Minute)
	dataDir := t.TempDir()
	testenv.BackfillFile(t, dataDir, relativeHistory(t, runStart, end))
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir})
	q, err := promapi.New(promapi.Options{URL: prom.URL(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	set, diags := slo.LoadBytes("relative.yaml", []byte(relativeDefs))
	if diags.HasErrors() {
		t.Fatalf("definitions: %v", diags)
	}

	// Statuses are read at the time of the cycle that made them (else they
	// read as stale).
	clock := &testClock{}
	evaluate := func(ev *evaluator.Evaluator, at time.Time) {
		clock.Set(at)
		ev.Evaluate(context.Background(), at)
	}
	newEvaluator := func(t *testing.T, runs map[string]time.Time, qr evaluator.Querier) *evaluator.Evaluator {
		ev, err := evaluator.New(evaluator.Options{
			Querier: qr, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(),
			Now: clock.Now, RunStarts: func() map[string]time.Time { return runs },
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.SetDefinitions(set); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	probe := func(t *testing.T, ev *evaluator.Evaluator, h string) (slo.Verdict, evaluator.ProbeStatus) {
		t.Helper()
		st, ok := ev.Hypothesis(h)
		if !ok || len(st.Probes) != 1 {
			t.Fatalf("hypothesis %s not evaluated: %+v", h, st)
		}
		return st.Verdict, st.Probes[0]
	}

	t.Run("before the run the baseline is trailing and passes", func(t *testing.T) {
		ev := newEvaluator(t, nil, q)
		evaluate(ev, runStart.Add(-10*time.Minute))
		for _, h := range []string{"high-baseline", "low-baseline", "high-fixed", "low-fixed"} {
			if v, p := probe(t, ev, h); v != slo.Pass {
				t.Errorf("%s before the run: verdict %s, want pass (%+v)", h, v, p)
			}
		}
		_, p := probe(t, ev, "high-baseline")
		if p.Baseline == nil || p.Baseline.Frozen || testenv.RelErr(float64(p.Baseline.Value), 0.008) > 1e-3 {
			t.Errorf("trailing baseline of high: %+v, want 0.008, not frozen", p.Baseline)
		}
	})

	runs := map[string]time.Time{}
	for _, h := range set.Hypotheses {
		runs[h.Name] = runStart
	}
	counting := &baselineCounter{Querier: q, counts: map[string]int{}}
	ev := newEvaluator(t, runs, counting)
	firstFail, firstPass := map[string]int{}, map[string]int{}
	cycles := 0
	for at := runStart.Add(time.Minute); !at.After(end.Add(-time.Minute)); at = at.Add(time.Minute) {
		cycles++
		evaluate(ev, at)
		for _, h := range []string{"zones-same", "zones-diff"} {
			v, p := probe(t, ev, h)
			if p.Baseline == nil || p.Baseline.Test == nil {
				t.Fatalf("%s at %s: no test status: %+v", h, at, p)
			}
			n := p.Baseline.Test.ExperimentSamples
			switch _, seen := firstFail[h]; {
			case v == slo.Fail && !seen:
				firstFail[h] = n
			}
			if _, seen := firstPass[h]; v == slo.Pass && !seen {
				firstPass[h] = n
			}
		}
	}

	t.Run("doubling on a 0.8% service fails with both", func(t *testing.T) {
		for _, h := range []string{"high-fixed", "high-baseline"} {
			if v, p := probe(t, ev, h); v != slo.Fail {
				t.Errorf("%s: verdict %s, want fail (%+v)", h, v, p)
			}
		}
	})
	t.Run("doubling on a 0.001% service: the fixed threshold passes wrongly, the baseline fails", func(t *testing.T) {
		if v, p := probe(t, ev, "low-fixed"); v != slo.Pass {
			t.Errorf("low-fixed: verdict %s, want the (wrong) pass of a fixed threshold (%+v)", v, p)
		}
		v, p := probe(t, ev, "low-baseline")
		if v != slo.Fail {
			t.Errorf("low-baseline: verdict %s, want fail (%+v)", v, p)
		}
		if p.Baseline == nil || !p.Baseline.Frozen || testenv.RelErr(float64(p.Baseline.Value), 0.00001) > 1e-2 || testenv.RelErr(float64(p.Value), 0.00002) > 1e-3 {
			t.Errorf("low-baseline: value %v baseline %+v, want 0.00002 against a frozen 0.00001", p.Value, p.Baseline)
		}
		if !p.Baseline.To.Equal(runStart) || !p.Baseline.From.Equal(runStart.Add(-time.Hour)) {
			t.Errorf("baseline window %s..%s, want the hour before the run's start %s", p.Baseline.From, p.Baseline.To, runStart)
		}
	})
	t.Run("the run's baseline is asked once", func(t *testing.T) {
		if len(counting.counts) != 2 {
			t.Errorf("baseline queries: %v, want the two baseline probes'", counting.counts)
		}
		for q, n := range counting.counts {
			if n != 1 {
				t.Errorf("%s asked %d times in %d cycles, want once (frozen at the run's start)", q, n, cycles)
			}
		}
	})
	t.Run("no real difference passes and never fails", func(t *testing.T) {
		if n, failed := firstFail["zones-same"]; failed {
			t.Errorf("zones-same failed at %d samples with no real difference", n)
		}
		n, passed := firstPass["zones-same"]
		if !passed {
			t.Fatalf("zones-same never passed in %d slices", cycles)
		}
		t.Logf("no difference: passed at %d samples per group", n)
	})
	t.Run("a doubled error ratio fails within the expected slices", func(t *testing.T) {
		n, failed := firstFail["zones-diff"]
		if !failed {
			t.Fatalf("zones-diff never failed in %d slices", cycles)
		}
		// The simulation of internal/stats (1 %-noisy slices, minSamples 5)
		// fails a doubling within 17 slices in 95 % of runs; these slices
		// are less noisy.
		if n > 17 {
			t.Errorf("zones-diff failed at %d samples, want within 17", n)
		}
		if _, passed := firstPass["zones-diff"]; passed {
			t.Errorf("zones-diff passed at %d samples", firstPass["zones-diff"])
		}
		t.Logf("doubling: failed at %d samples per group", n)
		if v, p := probe(t, ev, "zones-bounds"); v != slo.Fail || p.Baseline == nil || testenv.RelErr(float64(p.Value), 2*float64(p.Baseline.Value)) > 0.2 {
			t.Errorf("zones-bounds: verdict %s value %v control %+v, want fail at about twice the control", v, p.Value, p.Baseline)
		}
	})
	t.Run("low traffic is unknown and pages nobody", func(t *testing.T) {
		v, p := probe(t, ev, "night-errors")
		if v != slo.Unknown || p.Outcome != evaluator.OutcomeLowTraffic || p.Events == nil || math.Abs(float64(*p.Events)-5) > 0.5 {
			t.Errorf("night-errors: verdict %s outcome %q events %v, want unknown on low traffic with 5 events", v, p.Outcome, p.Events)
		}
		guarded, _ := ev.SLO("night")
		unguarded, _ := ev.SLO("night-unguarded")
		for _, a := range guarded.Alerts {
			// The ticket tiers' long windows count a day's 120 requests:
			// enough traffic for a ticket about its 3 errors.
			if a.Severity == slo.SeverityPage && (a.Firing || !a.LowTraffic) {
				t.Errorf("night %s: firing %v low traffic %v, want held off by minEvents", a.Severity, a.Firing, a.LowTraffic)
			}
		}
		paged := false
		for _, a := range unguarded.Alerts {
			paged = paged || a.Severity == slo.SeverityPage && a.Firing
		}
		if !paged {
			t.Errorf("night-unguarded did not page (%+v): the data do not show what the guard prevents", unguarded.Alerts)
		}
	})
}

// TestMannWhitneyRepeatedRunsPrometheus runs the test on 40 control and
// experiment pairs with no real difference, each a separately seeded run
// of 40 minutes on a real Prometheus, looking every minute as a run does:
// the share of runs that ever fail must stay at the configured level (1 −
// confidence, 5 %: at most 2 of 40), while a doubled experiment fails in
// every pair.
func TestMannWhitneyRepeatedRunsPrometheus(t *testing.T) {
	const pairs = 40
	end := time.Now().Truncate(time.Hour).Add(-90 * time.Minute)
	runStart := end.Add(-40 * time.Minute)
	start := runStart.Add(-10 * time.Minute)
	const step = 15 * time.Second

	type series struct {
		labels map[string]string
		ratio  func(ts time.Time) float64
		ok     float64
		bad    float64
	}
	var all []*series
	var defs strings.Builder
	for i := range pairs {
		for _, kind := range []string{"same", "double"} {
			pair := kind + "-" + strconv.Itoa(i)
			for zi, zone := range []string{"a", "b"} {
				// Per-minute error ratios of 1 % ± 30 %: noisier than the
				// acceptance test, as a small service's are.
				rng := rand.New(rand.NewPCG(uint64(i+1), uint64(zi+1)))
				noise := map[int64]float64{}
				double := kind == "double" && zone == "a"
				all = append(all, &series{
					labels: map[string]string{"job": "pairs", "pair": pair, "zone": zone},
					ratio: func(ts time.Time) float64 {
						m := ts.Unix() / 60
						u, ok := noise[m]
						if !ok {
							u = rng.Float64()*2 - 1
							noise[m] = u
						}
						r := 0.01 * (1 + 0.3*u)
						if double && !ts.Before(runStart) {
							r *= 2
						}
						return r
					},
				})
			}
			fmt.Fprintf(&defs, `---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: %[1]s}
spec:
  probes:
    - name: error-ratio
      query: sum(rate(http_requests_total{job="pairs",pair="%[1]s",code="500"}[1m])) / sum(rate(http_requests_total{job="pairs",pair="%[1]s"}[1m]))
      tolerance:
        compare: {control: '{zone="b"}', experiment: '{zone="a"}'}
        test: mann-whitney
        confidence: 95%%
        minEffect: 20%%
        minSamples: 5
`, pair)
		}
	}
	om := testenv.NewOMWriter(t)
	om.Family("http_requests_total", testenv.OMCounter)
	for ts := start; !ts.After(end); ts = ts.Add(step) {
		for _, s := range all {
			r := s.ratio(ts)
			s.ok += 50 * (1 - r) * step.Seconds()
			s.bad += 50 * r * step.Seconds()
			ok := map[string]string{"code": "200"}
			bad := map[string]string{"code": "500"}
			for k, v := range s.labels {
				ok[k], bad[k] = v, v
			}
			om.Sample(ok, ts, s.ok)
			om.Sample(bad, ts, s.bad)
		}
	}
	dataDir := t.TempDir()
	testenv.BackfillFile(t, dataDir, om.Close())
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir})
	q, err := promapi.New(promapi.Options{URL: prom.URL(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	set, diags := slo.LoadBytes("pairs.yaml", []byte(defs.String()))
	if diags.HasErrors() {
		t.Fatalf("definitions: %v", diags)
	}
	runs := map[string]time.Time{}
	for _, h := range set.Hypotheses {
		runs[h.Name] = runStart
	}
	clock := &testClock{}
	ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(),
		Now: clock.Now, RunStarts: func() map[string]time.Time { return runs }})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetDefinitions(set); err != nil {
		t.Fatal(err)
	}
	failedAt := map[string]int{}
	for at := runStart.Add(time.Minute); !at.After(end.Add(-time.Minute)); at = at.Add(time.Minute) {
		clock.Set(at)
		ev.Evaluate(context.Background(), at)
		for _, h := range set.Hypotheses {
			st, _ := ev.Hypothesis(h.Name)
			if _, seen := failedAt[h.Name]; !seen && st.Verdict == slo.Fail {
				failedAt[h.Name] = st.Probes[0].Baseline.Test.ExperimentSamples
			}
			if st.Probes[0].Outcome == "error" {
				t.Fatalf("%s: %s", h.Name, st.Probes[0].Error)
			}
		}
	}
	falseFailures, slices := 0, []int{}
	for i := range pairs {
		if _, failed := failedAt["same-"+strconv.Itoa(i)]; failed {
			falseFailures++
		}
		n, failed := failedAt["double-"+strconv.Itoa(i)]
		if !failed {
			t.Errorf("double-%d: a doubled error ratio never failed", i)
		}
		slices = append(slices, n)
	}
	t.Logf("no difference: %d of %d runs failed; doubled: failed after %v samples per group", falseFailures, pairs, slices)
	sort.Ints(slices)
	if p95 := slices[len(slices)*95/100]; p95 > 17 {
		t.Errorf("a doubling failed after %d samples per group at the 95th percentile, more than the 17 the simulation expects", p95)
	}
	if falseFailures > pairs/20 {
		t.Errorf("%d of %d runs with no real difference failed, more than the 5%% the confidence allows", falseFailures, pairs)
	}
}
