package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/slogate/slogate/internal/testenv"
)

// Environment variables of the service benchmarks.
const (
	// ServiceSLOsEnv: SLO counts of BenchmarkServiceCycle, comma-separated
	// (default 100,1000; 10000 is a run by hand).
	ServiceSLOsEnv = "SLOGATE_BENCH_SERVICE_SLOS"
	// ServiceVariantsEnv: grouped, ungrouped or both (default both).
	ServiceVariantsEnv = "SLOGATE_BENCH_SERVICE_VARIANTS"
	// PprofDirEnv: a directory where BenchmarkServiceCycle saves slogate's
	// heap profile (slogate then runs with --web.enable-pprof), for
	// `go tool pprof`.
	PprofDirEnv = "SLOGATE_BENCH_PPROF_DIR"
	// ServiceCyclesEnv: evaluation cycles measured per run (default 3).
	ServiceCyclesEnv = "SLOGATE_BENCH_SERVICE_CYCLES"
	// RestartSLOsEnv and RestartDaysEnv size BenchmarkServiceRestart: SLOs
	// (default 1000) and days of 60 s history backfilled into Prometheus
	// (default 2).
	RestartSLOsEnv = "SLOGATE_BENCH_RESTART_SLOS"
	RestartDaysEnv = "SLOGATE_BENCH_RESTART_DAYS"
)

const (
	// serviceInterval is slogate's default evaluation.interval.
	serviceInterval = 30 * time.Second
	// serviceScrape is how often Prometheus scrapes the synthetic target.
	serviceScrape = 15 * time.Second
	// serviceJob is the scrape job of the synthetic target.
	serviceJob = "synthetic"
)

// The two shapes of SLO definitions. grouped SLOs differ only in the value
// of their service label, so slogate asks one `sum by (service)` query per
// template for all of them; ungrouped SLOs each have their own metric name,
// so no grouped query answers them: their two queries a cycle each are asked
// in the evaluator's unions of unrelated queries (up to 250 a request).
const (
	variantGrouped   = "grouped"
	variantUngrouped = "ungrouped"
)

func serviceName(i int) string { return fmt.Sprintf("svc-%d", i) }

func serviceMetric(variant string, i int) string {
	if variant == variantUngrouped {
		return fmt.Sprintf("svc_%d_requests_total", i)
	}
	return "http_requests_total"
}

// serviceRPS is service i's traffic: 5 to 50 requests/s.
func serviceRPS(i int) float64 { return float64(5 + i%46) }

// serviceDefinitions are n ratio SLOs (99.9 % over 30 days) over the
// synthetic traffic: errors are the 5xx answers of the service. Alerting is
// on (slogate's default), without an Alertmanager the alerts are logged.
func serviceDefinitions(variant string, n int) string {
	var b strings.Builder
	for i := range n {
		sel := fmt.Sprintf(`%s{service=%q`, serviceMetric(variant, i), serviceName(i))
		fmt.Fprintf(&b, `---
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: %s-availability}
spec:
  service: %s
  objective: 99.9
  window: 30d
  indicator:
    ratio:
      errors: sum(rate(%s,code=~"5.."}[{{.window}}]))
      total: sum(rate(%s}[{{.window}}]))
`, serviceName(i), serviceName(i), sel, sel)
	}
	return b.String()
}

// serviceResult is one row of BenchmarkServiceCycle's table.
type serviceResult struct {
	name         string
	slos         int
	seriesPerSLO int
	backfill     time.Duration // process start → slogate_slo_backfill_pending 0
	cpuPerCycle  float64       // CPU seconds per evaluation interval
	cycleMean    float64       // slogate_evaluation_duration_seconds mean
	cycles       float64       // cycles completed in the measured span
	wantCycles   int
	missed       float64 // slogate_evaluation_iterations_missed_total increase
	queries      float64 // instant queries per cycle
	batched      float64 // queries per cycle answered by grouped queries or unions
	ranges       float64 // range queries per cycle
	// refetchRanges and refetchCPU are the range queries and CPU seconds
	// of the last cycle before the measurement that asked range queries.
	refetchRanges, refetchCPU float64
	failed                    float64 // failed queries in the measured cycles
	peakRSS, rss              float64 // MiB
}

// BenchmarkServiceCycle measures the real slogate binary evaluating N SLOs
// (30d windows, 30 s interval) over live data: a synthetic target exposes
// per SLO http_requests_total{service, code} (4 codes; 2 when more than
// 2,000 SLOs are asked for), scraped every 15 s by a real Prometheus.
// Reported: CPU seconds per evaluation cycle (/proc/<pid>/stat over whole
// intervals, so idle work such as GC is included), the mean cycle duration
// (slogate's own slogate_evaluation_duration_seconds), peak RSS (VmHWM),
// instant queries per cycle and the start-up backfill time.
//
// SLO counts come from SLOGATE_BENCH_SERVICE_SLOS (default 100,1000), the
// definition shapes from SLOGATE_BENCH_SERVICE_VARIANTS (grouped: SLOs that
// differ only in a label value; ungrouped: one metric name per SLO), the
// cycles measured from SLOGATE_BENCH_SERVICE_CYCLES (default 3).
func BenchmarkServiceCycle(b *testing.B) {
	counts := envList(b, ServiceSLOsEnv, []int{100, 1000})
	variants := envWords(b, ServiceVariantsEnv, []string{variantGrouped, variantUngrouped}, []string{variantGrouped, variantUngrouped})
	cycles := envInt(b, ServiceCyclesEnv, 3)
	maxN := slices.Max(counts)
	codes := 4
	if maxN > 2000 {
		codes = 2
	}

	// One target and one Prometheus for every run: the series of all
	// variants and counts exist from the start.
	target := testenv.NewTarget(b)
	tr := newTraffic(target, codes)
	for _, v := range variants {
		for i := range maxN {
			tr.add(serviceMetric(v, i), serviceName(i), serviceRPS(i), 0.0005)
		}
	}
	prom := testenv.StartPrometheus(b, testenv.PromOptions{
		ScrapeInterval: serviceScrape,
		Targets:        []testenv.ScrapeTarget{target.ScrapeTarget(serviceJob)},
	})
	// The newest slice is a rate over evaluation.min-range (2m): it needs
	// two scrapes.
	prom.WaitForQuery(b, `count_over_time(up{job="`+serviceJob+`"}[5m])`, func(v float64) bool { return v >= 2 }, 2*time.Minute)

	var results []serviceResult
	for _, n := range counts {
		for _, v := range variants {
			b.Run(fmt.Sprintf("slos=%d-%s", n, v), func(b *testing.B) {
				var r serviceResult
				for range b.N {
					r = measureServiceCycle(b, prom.URL(), v, n, cycles)
				}
				r.seriesPerSLO = codes
				b.ReportMetric(r.cpuPerCycle, "cpu-s/cycle")
				b.ReportMetric(r.cpuPerCycle/serviceInterval.Seconds(), "cpu-cores")
				b.ReportMetric(r.cycleMean, "s/cycle")
				b.ReportMetric(r.peakRSS, "MiB-peak-rss")
				b.ReportMetric(r.queries, "queries/cycle")
				b.ReportMetric(1000*r.cpuPerCycle/float64(n), "cpu-ms/slo/cycle")
				b.ReportMetric(r.backfill.Seconds(), "s-backfill")
				results = append(results, r)
				// Parents' logs show only with -v: every leaf logs the
				// table so far.
				b.Log("\n" + serviceTable(results))
			})
		}
	}
}

// cyclesAbove is a waitFor condition: more than n evaluation cycles ended.
func cyclesAbove(p *slogateProc, n float64) func() error {
	return func() error {
		if c := p.cycleCount(); c <= n {
			return fmt.Errorf("%v evaluation cycles, want more than %v", c, n)
		}
		return nil
	}
}

func measureServiceCycle(b *testing.B, promURL, variant string, n, cycles int) serviceResult {
	b.Helper()
	b.StopTimer()
	pprofDir := os.Getenv(PprofDirEnv)
	var args []string
	if pprofDir != "" {
		args = append(args, "--web.enable-pprof")
	}
	p := startSlogate(b, slogateOptions{promURL: promURL, definitions: serviceDefinitions(variant, n), interval: serviceInterval, args: args})
	defer p.Stop()
	r := serviceResult{name: fmt.Sprintf("%d %s", n, variant), slos: n, wantCycles: cycles}
	if pprofDir != "" {
		defer p.saveHeapProfile(filepath.Join(pprofDir, fmt.Sprintf("heap-%d-%s.pprof", n, variant)))
	}
	// Reading /metrics of 10,000 SLOs costs slogate CPU itself: poll slowly.
	r.backfill = p.waitBackfilled(15 * time.Minute)
	// The backfill cycle ends a little after the last SLO is done. A
	// backfill longer than the interval skips boundaries, and the second
	// cycle after it catches up on the missed slices with range queries of
	// every SLO on its own (not grouped). The steady state after it is
	// measured: one cycle after the backfill, or after a backfill that
	// skipped boundaries, cycles until two have passed and one asked no
	// range query. The CPU of the catch-up cycle is logged.
	p.waitFor("the end of the backfill cycle", 5*time.Minute, time.Second, cyclesAbove(p, 0))
	rangeCount := func() float64 {
		v, _ := p.metric(`slogate_query_duration_seconds_count{type="range"}`)
		return v
	}
	minCycles := 1
	if v, _ := p.metric("slogate_evaluation_iterations_missed_total"); v > 0 {
		minCycles = 2
	}
	for i := 1; ; i++ {
		if i > 10 {
			b.Fatalf("10 cycles after the backfill, every one still asked range queries")
		}
		c0, r0, cpu0 := p.cycleCount(), rangeCount(), readProcStat(b, p.pid()).cpu
		p.waitFor("an evaluation cycle", 5*time.Minute, time.Second, cyclesAbove(p, c0))
		if r1 := rangeCount(); r1 > r0 {
			r.refetchRanges, r.refetchCPU = r1-r0, readProcStat(b, p.pid()).cpu-cpu0
			continue
		}
		if i >= minCycles {
			break
		}
	}

	// Measure whole intervals, from just before a cycle boundary to just
	// before the boundary cycles later: cycles start at boundaries.
	boundary := time.Now().Truncate(serviceInterval).Add(serviceInterval)
	if time.Until(boundary) < 5*time.Second {
		boundary = boundary.Add(serviceInterval)
	}
	// The sleeps below wait for no condition: they place the measurement
	// window on the clock, where cycles start.
	time.Sleep(time.Until(boundary.Add(-3 * time.Second)))
	m0 := p.metrics()
	time.Sleep(time.Until(boundary.Add(-100 * time.Millisecond)))
	b.StartTimer()
	s0 := readProcStat(b, p.pid())
	end := boundary.Add(time.Duration(cycles) * serviceInterval)
	time.Sleep(time.Until(end.Add(-100 * time.Millisecond)))
	s1 := readProcStat(b, p.pid())
	b.StopTimer()
	m1 := p.metrics()
	if m0 == nil || m1 == nil {
		b.Fatalf("slogate's /metrics did not answer")
	}
	delta := func(series string) float64 { return m1[series] - m0[series] }
	r.cpuPerCycle = (s1.cpu - s0.cpu) / float64(cycles)
	r.cycles = delta("slogate_evaluation_duration_seconds_count")
	if r.cycles > 0 {
		r.cycleMean = delta("slogate_evaluation_duration_seconds_sum") / r.cycles
		r.queries = delta(`slogate_query_duration_seconds_count{type="instant"}`) / r.cycles
		r.batched = delta("slogate_queries_batched_total") / r.cycles
		r.ranges = delta(`slogate_query_duration_seconds_count{type="range"}`) / r.cycles
	}
	r.missed = delta("slogate_evaluation_iterations_missed_total")
	for series := range m1 {
		if strings.HasPrefix(series, "slogate_query_failures_total{") {
			r.failed += delta(series)
		}
	}
	r.peakRSS, r.rss = s1.hwmKB/1024, s1.rssKB/1024
	if r.refetchRanges > 0 {
		b.Logf("before the measurement, a cycle asked %.0f range queries (catching up after the backfill) and took %.2f s of CPU", r.refetchRanges, r.refetchCPU)
	}
	if r.cycles < float64(cycles) {
		b.Logf("only %.0f of %d cycles finished in %d intervals (%.0f missed): cycles overran the interval", r.cycles, cycles, cycles, r.missed)
	}
	return r
}

func serviceTable(rs []serviceResult) string {
	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "SLOs\tseries/SLO\tbackfill\tCPU/cycle\tCPU/SLO\tcores\tcycle mean\tcycles done\tmissed\tinstant requests/cycle\tqueries answered/cycle\trange queries/cycle\tfailed\tpeak RSS\tRSS\t")
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%d\t%.1fs\t%.3fs\t%.3fms\t%.3f\t%.3fs\t%.0f/%d\t%.0f\t%.1f\t%.1f\t%.1f\t%.0f\t%.0f MiB\t%.0f MiB\t\n",
			r.name, r.seriesPerSLO, r.backfill.Seconds(), r.cpuPerCycle, 1000*r.cpuPerCycle/float64(r.slos), r.cpuPerCycle/serviceInterval.Seconds(),
			r.cycleMean, r.cycles, r.wantCycles, r.missed, r.queries, r.queries+r.batched, r.ranges, r.failed, r.peakRSS, r.rss)
	}
	_ = w.Flush()
	return sb.String()
}

// restartResult is one start of slogate in BenchmarkServiceRestart.
type restartResult struct {
	name     string
	took     time.Duration // process start → backfill pending 0
	cpu      float64       // CPU seconds of the process by then
	promCPU  float64       // Prometheus's CPU seconds meanwhile
	ranges   float64       // range queries by then
	instant  float64       // instant queries by then
	peakRSS  float64       // MiB, VmHWM by then
	coverage float64       // least coverage of an SLO's 30d window by then
}

// BenchmarkServiceRestart measures how long slogate takes from process
// start until every SLO is backfilled (slogate_slo_backfill_pending = 0):
// a cold start, a restart on the same storage.path (the buffers restored
// from the snapshot saved at the SIGTERM before, so only the slices since
// are fetched), and a start on a fresh storage.path against the same, now
// warm, Prometheus. Prometheus holds SLOGATE_BENCH_RESTART_DAYS (default 2)
// days of 60 s history of SLOGATE_BENCH_RESTART_SLOS (default 1000) services
// (written as TSDB blocks), then the target's live data scraped every 15 s.
// Reported besides: Prometheus's CPU during each start, slogate's peak RSS
// (with 30 days of history every ring slot is written) and the least
// coverage of an SLO's 30d window once backfilled (1: the verdicts are
// complete).
func BenchmarkServiceRestart(b *testing.B) {
	n := envInt(b, RestartSLOsEnv, 1000)
	days := envInt(b, RestartDaysEnv, 2)
	for range b.N {
		b.StopTimer()
		rs := measureRestart(b, n, days)
		byName := map[string]restartResult{}
		for _, r := range rs {
			byName[r.name] = r
		}
		b.ReportMetric(byName["cold"].took.Seconds(), "s-cold-start")
		b.ReportMetric(byName["restart-snapshot"].took.Seconds(), "s-restart-snapshot")
		b.ReportMetric(byName["restart-fresh"].took.Seconds(), "s-restart-fresh")
		b.ReportMetric(byName["cold"].ranges/float64(n), "range-queries/slo-cold")
		b.ReportMetric(byName["restart-snapshot"].ranges/float64(n), "range-queries/slo-snapshot")
		b.ReportMetric(byName["cold"].promCPU, "prom-cpu-s-cold-start")
		b.ReportMetric(byName["cold"].peakRSS, "MiB-peak-rss-cold")
		var sb strings.Builder
		w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(w, "%d SLOs, %d days of 60 s history\t\t\t\t\t\t\t\t\n", n, days)
		fmt.Fprintln(w, "start\tuntil backfilled\tCPU\tPrometheus CPU\trange queries\tinstant queries\tpeak RSS\tleast 30d coverage\t")
		for _, r := range rs {
			fmt.Fprintf(w, "%s\t%.2fs\t%.2fs\t%.2fs\t%.0f\t%.0f\t%.0f MiB\t%.4f\t\n", r.name, r.took.Seconds(), r.cpu, r.promCPU, r.ranges, r.instant, r.peakRSS, r.coverage)
		}
		_ = w.Flush()
		b.Log("\n" + sb.String())
	}
}

func measureRestart(b *testing.B, n, days int) []restartResult {
	b.Helper()
	// History ends a minute before the live data begins.
	end := time.Now().Truncate(time.Minute).Add(-time.Minute)
	start := end.Add(-time.Duration(days) * 24 * time.Hour)
	dataDir := filepath.Join(b.TempDir(), "prometheus")
	t0 := time.Now()
	series := make([][2]blockSeries, n) // [service][200, 500]
	for i := range series {
		for k, code := range []string{"200", "500"} {
			series[i][k].lbls = labels.FromStrings("__name__", "http_requests_total", "service", serviceName(i), "code", code)
		}
	}
	samples, blocks := writeBlocks(b, dataDir, start.Unix(), end.Unix(), 60, func(_ int64, add func(*blockSeries)) {
		for i := range series {
			for k, share := range []float64{0.999, 0.001} {
				add(&series[i][k])
				series[i][k].v += serviceRPS(i) * share * 60
			}
		}
	})
	b.Logf("history: %d series × %d days at 60 s (%d samples in %d blocks) written in %s", 2*n, days, samples, blocks, time.Since(t0).Round(time.Second))

	target := testenv.NewTarget(b)
	tr := newTraffic(target, 2)
	for i := range n {
		tr.add("http_requests_total", serviceName(i), serviceRPS(i), 0.001)
	}
	prom := testenv.StartPrometheus(b, testenv.PromOptions{
		ScrapeInterval: serviceScrape, DataDir: dataDir,
		Targets: []testenv.ScrapeTarget{target.ScrapeTarget(serviceJob)},
	})
	prom.WaitForQuery(b, `count_over_time(up{job="`+serviceJob+`"}[5m])`, func(v float64) bool { return v >= 2 }, 2*time.Minute)

	defs := serviceDefinitions(variantGrouped, n)
	storage := filepath.Join(b.TempDir(), "slogate-data")
	pc := newStatClient(prom.URL())
	defer pc.close()
	measure := func(name string, p *slogateProc) restartResult {
		promBefore := mustCPU(b, pc)
		b.StartTimer()
		took := p.waitBackfilled(30 * time.Minute)
		b.StopTimer()
		st := readProcStat(b, p.pid())
		promCPU := mustCPU(b, pc) - promBefore
		m := p.metrics()
		cov, err := p.Metrics("slogate_slo_window_coverage_ratio")
		if err != nil || len(cov) != n {
			b.Fatalf("%s: slogate_slo_window_coverage_ratio of %d SLOs (%v), want %d", name, len(cov), err, n)
		}
		least := 1.0
		for _, v := range cov {
			least = min(least, v)
		}
		return restartResult{name: name, took: took, cpu: st.cpu, promCPU: promCPU,
			ranges:  m[`slogate_query_duration_seconds_count{type="range"}`],
			instant: m[`slogate_query_duration_seconds_count{type="instant"}`],
			peakRSS: st.hwmKB / 1024, coverage: least}
	}
	var rs []restartResult
	p := startSlogate(b, slogateOptions{promURL: prom.URL(), definitions: defs, interval: serviceInterval, storage: storage})
	rs = append(rs, measure("cold", p))
	// SIGTERM: the evaluator saves the snapshot as Run ends.
	p.Stop()
	p.Start()
	rs = append(rs, measure("restart-snapshot", p))
	if log, err := os.ReadFile(p.LogPath()); err != nil || !strings.Contains(string(log), "restored SLO windows from the snapshot") {
		b.Fatalf("the restart did not restore the snapshot (log %s)", p.LogPath())
	}
	p.Stop()
	fresh := startSlogate(b, slogateOptions{promURL: prom.URL(), definitions: defs, interval: serviceInterval})
	rs = append(rs, measure("restart-fresh", fresh))
	fresh.Stop()
	return rs
}
