package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// LatencyRunsEnv: faults injected by BenchmarkFaultToVerdict (default 5).
const LatencyRunsEnv = "SLOGATE_BENCH_LATENCY_RUNS"

const (
	// latencyInterval is the evaluation interval of the latency benchmark:
	// short, so that a run takes seconds; it must divide 1h.
	latencyInterval = 5 * time.Second
	// latencyScrape is Prometheus's scrape interval there; slogate's
	// evaluation.min-range (5s) is at least twice it.
	latencyScrape = time.Second
	// latencyRPS is each service's traffic; latencyFailShare the share of
	// it answered 500 during a fault.
	latencyRPS       = 50
	latencyFailShare = 0.5
)

// latencyDefinitions: per fault k, a service fault-k with an SLO (99.9 %
// over 30d, page alert by the workbook's 1h/5m burn rates, gate closed
// above a 5m burn rate of 14.4), a hypothesis that its error ratio over 5 s
// stays under 5 % (failAfter 1), and an experiment gated by both.
func latencyDefinitions(runs int) string {
	var b strings.Builder
	for k := range runs {
		s := fmt.Sprintf("fault-%d", k)
		fmt.Fprintf(&b, `---
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: %[1]s-availability}
spec:
  service: %[1]s
  objective: 99.9
  window: 30d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{service="%[1]s",code=~"5.."}[{{.window}}]))
      total: sum(rate(http_requests_total{service="%[1]s"}[{{.window}}]))
  gate: {maxBurnRate: 14.4, burnRateWindow: 5m}
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: %[1]s-steady}
spec:
  probes:
    - name: error-rate
      query: sum(rate(http_requests_total{service="%[1]s",code=~"5.."}[5s])) / sum(rate(http_requests_total{service="%[1]s"}[5s]))
      tolerance: "< 0.05"
  failAfter: 1
  passAfter: 1
---
apiVersion: slogate.dev/v1
kind: Experiment
metadata: {name: %[1]s-chaos}
spec:
  hypotheses: [%[1]s-steady]
  slos: [%[1]s-availability]
`, s)
	}
	return b.String()
}

// faultTiming is what one injected fault took to be seen.
type faultTiming struct {
	scrape  time.Duration // fault → first scrape with failing counters
	gate    time.Duration // fault → gate answers 409
	page    time.Duration // fault → page alert listed by Alertmanager
	reasons string        // why the gate closed first
	// cycles is the number of evaluation cycles that started between the
	// scrape and the gate's closing: 1 when the first evaluation after
	// Prometheus had the failing data closed it.
	cycles int
}

// BenchmarkFaultToVerdict measures, against the real slogate binary, a real
// Prometheus (1 s scrape) and a real Alertmanager, how long after a
// service starts failing (a second's worth of failed requests at once, then
// half its requests answered 500) (a) the gate of
// the experiment watching it closes (GET .../gate polled every 20 ms) and
// (b) the page alert is listed by Alertmanager (GET /api/v2/alerts polled
// every 100 ms), and how long after Prometheus's first scrape of failing
// counters the gate closes. slogate evaluates every 5 s (evaluation.min-range
// 5s). Every fault hits its own service, with its own SLO, hypothesis and
// experiment, so that runs do not wait for the previous alert to resolve;
// the faults start at phases spread evenly over the evaluation interval.
// SLOGATE_BENCH_LATENCY_RUNS sets the number of faults (default 5).
func BenchmarkFaultToVerdict(b *testing.B) {
	runs := envInt(b, LatencyRunsEnv, 5)
	for range b.N {
		b.StopTimer()
		ts := measureFaults(b, runs)
		b.StartTimer()
		stat := func(f func(faultTiming) time.Duration) (lo, med, hi float64) {
			var v []float64
			for _, t := range ts {
				v = append(v, f(t).Seconds())
			}
			slices.Sort(v)
			return v[0], quantile(v, 0.5), v[len(v)-1]
		}
		_, gMed, gMax := stat(func(t faultTiming) time.Duration { return t.gate })
		_, sMed, sMax := stat(func(t faultTiming) time.Duration { return t.gate - t.scrape })
		_, pMed, pMax := stat(func(t faultTiming) time.Duration { return t.page })
		b.ReportMetric(gMed, "s-fault-to-gate-p50")
		b.ReportMetric(gMax, "s-fault-to-gate-max")
		b.ReportMetric(sMed, "s-scrape-to-gate-p50")
		b.ReportMetric(sMax, "s-scrape-to-gate-max")
		b.ReportMetric(sMax/latencyInterval.Seconds(), "intervals-scrape-to-gate-max")
		b.ReportMetric(pMed, "s-fault-to-page-p50")
		b.ReportMetric(pMax, "s-fault-to-page-max")
		maxCycles := 0
		for _, t := range ts {
			maxCycles = max(maxCycles, t.cycles)
		}
		b.ReportMetric(float64(maxCycles), "cycles-scrape-to-gate-max")
		b.Log("\n" + faultTable(ts, stat))
		for k, t := range ts {
			b.Logf("fault %d: the gate closed with %s", k, t.reasons)
		}
	}
}

func faultTable(ts []faultTiming, stat func(func(faultTiming) time.Duration) (float64, float64, float64)) string {
	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	iv := latencyInterval.Seconds()
	fmt.Fprintf(w, "%d faults, interval %s\tmin\tmedian\tmax\tmin (intervals)\tmedian (intervals)\tmax (intervals)\t\n", len(ts), latencyInterval)
	for _, row := range []struct {
		name string
		f    func(faultTiming) time.Duration
	}{
		{"fault → Prometheus scrape", func(t faultTiming) time.Duration { return t.scrape }},
		{"fault → gate closed", func(t faultTiming) time.Duration { return t.gate }},
		{"scrape → gate closed", func(t faultTiming) time.Duration { return t.gate - t.scrape }},
		{"fault → page at Alertmanager", func(t faultTiming) time.Duration { return t.page }},
	} {
		lo, med, hi := stat(row.f)
		fmt.Fprintf(w, "%s\t%.2fs\t%.2fs\t%.2fs\t%.2f\t%.2f\t%.2f\t\n", row.name, lo, med, hi, lo/iv, med/iv, hi/iv)
	}
	_ = w.Flush()
	// go test keeps only 10 lines of a benchmark's log without -v: one
	// line for all faults.
	sb.WriteString("per fault, scrape/gate/page after it and cycles from scrape to gate:")
	for _, t := range ts {
		fmt.Fprintf(&sb, " %.2f/%.2f/%.2fs,%d", t.scrape.Seconds(), t.gate.Seconds(), t.page.Seconds(), t.cycles)
	}
	sb.WriteString("\n")
	return sb.String()
}

func measureFaults(b *testing.B, runs int) []faultTiming {
	b.Helper()
	target := testenv.NewTarget(b)
	tr := newTraffic(target, 2)
	svcs := make([]*service, runs)
	for k := range runs {
		svcs[k] = tr.add("http_requests_total", fmt.Sprintf("fault-%d", k), latencyRPS, 0)
	}
	prom := testenv.StartPrometheus(b, testenv.PromOptions{
		ScrapeInterval: latencyScrape,
		Targets:        []testenv.ScrapeTarget{target.ScrapeTarget(serviceJob)},
	})
	am := testenv.StartAlertmanager(b, testenv.AMOptions{})
	p := startSlogate(b, slogateOptions{
		promURL: prom.URL(), amURL: am.URL(), definitions: latencyDefinitions(runs),
		interval: latencyInterval, minRange: 5 * time.Second,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	gateURL := func(k int) string { return fmt.Sprintf("%s/api/v1/experiments/fault-%d-chaos/gate", p.url, k) }
	for k := range runs {
		p.waitFor(fmt.Sprintf("the gate of fault-%d-chaos to open", k), 3*time.Minute, 200*time.Millisecond, gateOpen(ctx, gateURL(k)))
	}

	var ts []faultTiming
	for k := range runs {
		// Spread the faults over the phases of the evaluation cycle and of
		// the scrape.
		phase := (time.Duration(k) * (latencyInterval + latencyScrape) / time.Duration(runs)) % latencyInterval
		at := time.Now().Truncate(latencyInterval).Add(latencyInterval + phase)
		// Not a wait for a condition: the fault is placed at a chosen
		// phase of the cycle, which is what the measurement varies.
		time.Sleep(time.Until(at))
		if code := getStatus(ctx, gateURL(k)); code != http.StatusOK {
			b.Fatalf("fault %d: the gate is %d before the fault", k, code)
		}
		t0 := time.Now()
		// The errors jump: a second's worth of failed requests at once,
		// then half of all requests fail.
		tr.burst(svcs[k], latencyRPS)
		tr.setErrShare(svcs[k], latencyFailShare)
		b.StartTimer()
		t := waitVerdicts(b, ctx, p, am, gateURL(k), fmt.Sprintf("fault-%d-availability", k), t0)
		b.StopTimer()
		scrape, ok := tr.firstScrapeAfter(t0)
		if !ok {
			b.Fatalf("fault %d: no scrape after the fault", k)
		}
		t.scrape = scrape.Sub(t0)
		t.cycles = int(t0.Add(t.gate).Truncate(latencyInterval).Sub(scrape.Truncate(latencyInterval)) / latencyInterval)
		ts = append(ts, t)
		tr.setErrShare(svcs[k], 0)
	}
	return ts
}

// waitVerdicts polls the gate every 20 ms and Alertmanager every 100 ms
// until the gate is closed and the page alert of the SLO is there. The
// fixed pace is the resolution of the latencies it measures.
func waitVerdicts(b *testing.B, ctx context.Context, p *slogateProc, am *testenv.Alertmanager, gateURL, sloName string, t0 time.Time) faultTiming {
	b.Helper()
	var t faultTiming
	lastAM := time.Time{}
	alertsURL := am.URL() + "/api/v2/alerts?filter=" + url.QueryEscape(fmt.Sprintf(`slo=%q`, sloName)) + "&filter=" + url.QueryEscape(`severity="page"`)
	err := testenv.PollEvery(time.Until(t0.Add(2*time.Minute)), 20*time.Millisecond, func() error {
		if p.Exited() {
			return testenv.Permanent(errors.New("slogate exited"))
		}
		if t.gate == 0 {
			// 409 closed; 503 unknown, which closes it too (onUnknown:
			// closed), noted in the reasons.
			code, reasons := gateAnswer(ctx, gateURL)
			switch code {
			case http.StatusOK:
			case http.StatusConflict, http.StatusServiceUnavailable:
				t.gate = time.Since(t0)
				t.reasons = fmt.Sprintf("%d %s", code, reasons)
			default:
				return testenv.Permanent(fmt.Errorf("gate answered %d during the fault: %s", code, reasons))
			}
		}
		if t.page == 0 && time.Since(lastAM) >= 100*time.Millisecond {
			lastAM = time.Now()
			if n := countAlerts(ctx, alertsURL); n > 0 {
				t.page = time.Since(t0)
			}
		}
		if t.gate == 0 || t.page == 0 {
			return fmt.Errorf("gate closed after %s, page after %s (0: not yet)", t.gate, t.page)
		}
		return nil
	})
	if err != nil {
		b.Fatalf("%s: within 2 minutes of the fault: %v", sloName, err)
	}
	return t
}

// gateAnswer returns the gate's status code and its reasons as kind:name.
func gateAnswer(ctx context.Context, u string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := svcHTTP.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var g struct {
		Reasons []struct{ Kind, Name, Message string } `json:"reasons"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&g)
	var rs []string
	for _, r := range g.Reasons {
		rs = append(rs, r.Kind+":"+r.Name)
	}
	return resp.StatusCode, strings.Join(rs, ",")
}

// countAlerts returns how many alerts Alertmanager lists at u (-1 on error).
func countAlerts(ctx context.Context, u string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return -1
	}
	resp, err := svcHTTP.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var alerts []json.RawMessage
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&alerts) != nil {
		return -1
	}
	return len(alerts)
}
