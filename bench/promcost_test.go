package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/rules"
	"github.com/slogate/slogate/slo"
)

// SLOCountsEnv chooses the SLO counts BenchmarkPrometheusCost measures: a
// comma-separated list, default 100 (e.g. SLOGATE_BENCH_SLOS=100,1000).
const SLOCountsEnv = "SLOGATE_BENCH_SLOS"

// DefinitionsEnv chooses the SLO definitions BenchmarkPrometheusCost
// measures: grouped (default: SLOs that differ only in their job),
// heterogeneous (SLOs that share nothing, issue 20), or both,
// comma-separated (SLOGATE_BENCH_DEFINITIONS=grouped,heterogeneous).
const DefinitionsEnv = "SLOGATE_BENCH_DEFINITIONS"

const (
	// queryConcurrency is the queries in flight: slogate's default
	// evaluation.max-concurrency, used for every approach alike.
	queryConcurrency = 8
	// cpuTarget is the least Prometheus CPU a measurement spans:
	// process_cpu_seconds_total moves in 10 ms clock ticks, so 3 s keep
	// the rounding under 0.5 %.
	cpuTarget = 3.0
	// sliceCycles is how many cycles the evaluator is measured over: two
	// hours, its steady-state period. Besides the newest slice every
	// cycle, it refetches the start-edge slices of the 1d, 3d and 30d
	// windows with one range query per template every two hours.
	sliceCycles = int(evalSpan / cycle)
)

// approach is one way of keeping SLO windows current; measure returns its
// cost per 30 s cycle.
type approach struct {
	name    string
	measure func(b *testing.B, c *statClient, set *slo.Set) cost
}

var approaches = []approach{
	{"slices", measureSlices},
	{"slices-unbatched", measureSlicesUnbatched},
	{"naive", measureNaive},
	{"windows", measureWindows},
	{"buckets", measureBuckets},
}

// approachesFor are the approaches measured for the definitions defs.
// Heterogeneous SLOs leave out the naive queries: they cost what the
// Sloth-style rules cost (both read every window whole; 449 s and 519 s of
// Prometheus CPU per cycle for 1,000 grouped SLOs), and issue 20 compares
// the slices with the rules.
func approachesFor(defs string) []approach {
	if defs != defsHeterogeneous {
		return approaches
	}
	var out []approach
	for _, a := range approaches {
		if a.name != "naive" {
			out = append(out, a)
		}
	}
	return out
}

// cost is what one approach costs Prometheus per evaluation cycle.
type cost struct {
	cpu     float64 // process CPU seconds
	samples float64 // samples read (totalQueryableSamples)
	queries float64 // instant and range queries
	unions  float64 // of the instant queries, the evaluator's unions
	wall    float64 // seconds of wall time (2 cores shared with the client)
	cycles  int     // cycles (or rule group runs) measured, warm-ups excluded
}

func (c cost) plus(d cost) cost {
	return cost{c.cpu + d.cpu, c.samples + d.samples, c.queries + d.queries, c.unions + d.unions, c.wall + d.wall, c.cycles + d.cycles}
}

func (c cost) scaled(f float64) cost {
	return cost{c.cpu * f, c.samples * f, c.queries * f, c.unions * f, c.wall * f, c.cycles}
}

// BenchmarkPrometheusCost measures what keeping the windows of N SLOs
// (5m … 30d) current costs Prometheus per 30 s evaluation cycle, against a
// real Prometheus holding a month of per-minute counters of every SLO:
//
//   - slices: slogate's evaluator itself, as configured by default, after
//     its backfill: the newest slice of each SLO (the errors and total
//     templates over evaluation.min-range; the benchmark's SLOs differ only
//     in their job, so the evaluator groups them into two `sum by (job)`
//     instant queries in all), plus the start-edge slices of the long
//     windows every two hours (range queries, one per SLO and template);
//   - slices-unbatched: the same with grouping off, two instant queries
//     per SLO: the reference case, and what SLOs cost whose
//     queries cannot be grouped;
//   - naive: the errors and total templates of every window, queried whole
//     every cycle (16 instant queries per SLO);
//   - windows: every expression of `slogate rules --style windows` (window
//     ratios, objective, budget, alerts) as an instant query, which is what
//     rule evaluation costs Prometheus each interval (the per-window rules
//     of Sloth, without its shortcut for the 30d window);
//   - buckets: every expression of `slogate rules --style buckets`: the
//     window and alert groups every cycle, the 5m bucket group every ten
//     cycles (its cost divided by ten), reading a month of backfilled
//     buckets.
//
// Reported per cycle: prom-cpu-ms (Prometheus's process_cpu_seconds_total
// before and after at least 3 s of its CPU), samples (the sum of
// totalQueryableSamples of stats=all) and queries. ns/op is the wall time
// of a whole measurement, not of a cycle. N comes from SLOGATE_BENCH_SLOS.
//
// SLOGATE_BENCH_DEFINITIONS=heterogeneous measures SLOs that share nothing
// instead (heterogeneousSLOs, issue 20: every SLO its own metric, in four
// query shapes), as slos=N-heterogeneous: slices (the evaluator's default,
// which asks their newest slices in unions), slices-unbatched, windows and
// buckets.
func BenchmarkPrometheusCost(b *testing.B) {
	for _, defs := range definitionsList(b) {
		for _, n := range sloCounts(b) {
			name := "slos=" + strconv.Itoa(n)
			if defs != defsGrouped {
				name += "-" + defs
			}
			b.Run(name, func(b *testing.B) { benchmarkPrometheusCost(b, defs, n) })
		}
	}
}

// definitionsList is DefinitionsEnv's list, default grouped.
func definitionsList(b *testing.B) []string {
	b.Helper()
	return envWords(b, DefinitionsEnv, []string{defsGrouped}, []string{defsGrouped, defsHeterogeneous})
}

func sloCounts(b *testing.B) []int {
	b.Helper()
	env := os.Getenv(SLOCountsEnv)
	if env == "" {
		return []int{100}
	}
	var out []int
	for f := range strings.SplitSeq(env, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a comma-separated list of positive SLO counts, e.g. 100,1000", SLOCountsEnv, env)
		}
		out = append(out, n)
	}
	return out
}

func benchmarkPrometheusCost(b *testing.B, defs string, n int) {
	dir := historyDir(b, defs, n)
	prom := testenv.StartPrometheus(b, testenv.PromOptions{DataDir: dir})
	c := newStatClient(prom.URL())
	defer c.close()
	idle := settle(b, c)
	set := definitionSet(b, defs, n)
	list := approachesFor(defs)
	// Go prints the logs of a parent benchmark only with -v, so the leaves
	// log: each its own row, the last approach the whole table.
	results := map[string]cost{}
	for i, a := range list {
		b.Run("approach="+a.name, func(b *testing.B) {
			if i == 0 {
				b.Logf("%s; Prometheus idle: %.1f ms CPU/s", historyInfo(defs, n), idle*1000)
			}
			var sum cost
			b.ResetTimer()
			for range b.N {
				sum = sum.plus(a.measure(b, c, set))
			}
			b.StopTimer()
			per := sum.scaled(1 / float64(b.N))
			per.cycles = sum.cycles
			b.ReportMetric(per.cpu*1000, "prom-cpu-ms/cycle")
			b.ReportMetric(per.samples, "samples/cycle")
			b.ReportMetric(per.queries, "queries/cycle")
			if a.name == "slices" || a.name == "slices-unbatched" {
				b.ReportMetric(per.unions, "unions/cycle")
			}
			results[a.name] = per
			if i == len(list)-1 {
				history := model.Duration(dataEnd.Sub(historyStart(b))).String()
				b.Log(table(n, defs, history, dataShape(b).String(), list, results))
			} else {
				b.Log(row(a.name, per, results))
			}
		})
	}
}

// settle waits until Prometheus is idle (start-up work such as loading
// blocks done) and returns its idle CPU, in seconds per second, which the
// measurements include: the first approach logs it.
func settle(b *testing.B, c *statClient) float64 {
	b.Helper()
	var prev, delta, idle float64
	quiet, calls := 0, 0
	// A fixed pace: each call measures the CPU Prometheus used in the
	// second since the previous one.
	err := testenv.PollEvery(90*time.Second, time.Second, func() error {
		cur := mustCPU(b, c)
		calls++
		if calls > 1 {
			delta = cur - prev
			if delta <= 0.02 {
				quiet++
				idle += delta
			} else {
				quiet, idle = 0, 0
			}
		}
		prev = cur
		if quiet < 3 {
			return fmt.Errorf("%d quiet seconds in a row", quiet)
		}
		return nil
	})
	if err != nil {
		b.Logf("Prometheus still uses %.0f ms of CPU a second after 90 s; measuring anyway", delta*1000)
		return delta
	}
	return idle / 3
}

func mustCPU(b *testing.B, c *statClient) float64 {
	b.Helper()
	v, err := c.cpuSeconds(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// cycleTime is the evaluation time of cycle k; cycles past the measured
// span wrap around, so group runs measured more often than cycles exist
// (the bucket group) still read full windows.
func cycleTime(k int) time.Time {
	return evalStart.Add(time.Duration(k%sliceCycles) * cycle)
}

// measureRuns runs run once to warm up (page cache, Prometheus's heap) and
// to estimate its CPU, then as many times as reach cpuTarget, and returns
// the cost of one run.
func measureRuns(b *testing.B, c *statClient, run func(k int) error) cost {
	b.Helper()
	before := mustCPU(b, c)
	if err := run(0); err != nil {
		b.Fatal(err)
	}
	estimate := math.Max(mustCPU(b, c)-before, 0.01)
	// One more run is enough when one already spans cpuTarget: a naive
	// cycle of 1,000 SLOs costs minutes.
	runs := min(max(int(math.Ceil(cpuTarget/estimate)), 2), 10*sliceCycles)
	if estimate >= cpuTarget {
		runs = 1
	}
	return measureN(b, c, runs, func(k int) error { return run(k + 1) })
}

// measureN returns the cost of one of runs runs.
func measureN(b *testing.B, c *statClient, runs int, run func(k int) error) cost {
	b.Helper()
	c.reset()
	start := time.Now()
	before := mustCPU(b, c)
	for k := range runs {
		if err := run(k); err != nil {
			b.Fatal(err)
		}
	}
	after := mustCPU(b, c)
	wall := time.Since(start)
	if f := c.failures.Load(); f > 0 {
		b.Fatalf("%d queries failed", f)
	}
	r := float64(runs)
	return cost{
		cpu:     (after - before) / r,
		samples: float64(c.samples.Load()) / r,
		queries: float64(c.instant.Load()+c.ranges.Load()) / r,
		unions:  float64(c.unions.Load()) / r,
		wall:    wall.Seconds() / r,
		cycles:  runs,
	}
}

// measureNaive queries every window of every SLO whole, every cycle.
func measureNaive(b *testing.B, c *statClient, set *slo.Set) cost {
	qs, err := naiveQueries(set)
	if err != nil {
		b.Fatal(err)
	}
	return measureRuns(b, c, func(k int) error {
		return c.runQueries(context.Background(), qs, cycleTime(k), queryConcurrency)
	})
}

func measureWindows(b *testing.B, c *statClient, set *slo.Set) cost {
	return measureRules(b, c, set, rules.StyleWindows)
}

func measureBuckets(b *testing.B, c *statClient, set *slo.Set) cost {
	return measureRules(b, c, set, rules.StyleBuckets)
}

// measureRules evaluates the rule expressions of a style: each group
// schedule is measured on its own and weighted by how often it runs, so
// that the bucket group (every 10 cycles) costs a tenth of a run per cycle
// without measuring ten cycles of the window groups.
func measureRules(b *testing.B, c *statClient, set *slo.Set, style rules.Style) cost {
	schedules, err := ruleSchedules(set, style)
	if err != nil {
		b.Fatal(err)
	}
	var total cost
	var parts []string
	for _, s := range schedules {
		per := measureRuns(b, c, func(k int) error {
			return c.runQueries(context.Background(), s.queries, cycleTime(k*s.every), queryConcurrency)
		})
		parts = append(parts, fmt.Sprintf("%d rules every %d cycle(s): %.1f ms of Prometheus CPU a run (%d runs)",
			len(s.queries), s.every, per.cpu*1000, per.cycles))
		cycles := total.cycles + per.cycles
		total = total.plus(per.scaled(1 / float64(s.every)))
		total.cycles = cycles
	}
	// One line: Go keeps only the first 10 lines of a benchmark's log,
	// and the table comes after.
	b.Logf("%s: %s", style, strings.Join(parts, "; "))
	return total
}

// measureSlices runs slogate's evaluator as configured by default.
func measureSlices(b *testing.B, c *statClient, set *slo.Set) cost {
	return measureEvaluator(b, c, set, false)
}

// measureSlicesUnbatched runs it asking every SLO's newest slice on its own.
func measureSlicesUnbatched(b *testing.B, c *statClient, set *slo.Set) cost {
	return measureEvaluator(b, c, set, true)
}

// measureEvaluator runs slogate's evaluator against Prometheus: one
// backfill (not measured), then sliceCycles steady-state cycles with
// exactly the queries it makes, counted by the statClient it queries
// through.
func measureEvaluator(b *testing.B, c *statClient, set *slo.Set, disableBatching bool) cost {
	b.Helper()
	var now atomic.Int64
	now.Store(evalStart.UnixNano())
	ev, err := evaluator.New(evaluator.Options{
		Querier:         c,
		Interval:        cycle,
		MaxConcurrency:  queryConcurrency,
		DisableBatching: disableBatching,
		Registerer:      prometheus.NewRegistry(),
		Now:             func() time.Time { return time.Unix(0, now.Load()) },
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := ev.SetDefinitions(set); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	c.reset()
	ev.Evaluate(ctx, evalStart) // the backfill
	if f := c.failures.Load(); f > 0 {
		b.Fatalf("backfill: %d queries failed", f)
	}
	checkFresh(b, ev, set)

	var rangeCycles []int
	ranges := int64(0)
	c.record(true)
	per := measureN(b, c, sliceCycles, func(k int) error {
		at := evalStart.Add(time.Duration(k+1) * cycle)
		now.Store(at.UnixNano())
		ev.Evaluate(ctx, at)
		if r := c.ranges.Load(); r > ranges {
			rangeCycles = append(rangeCycles, k+1)
			ranges = r
		}
		return nil
	})
	recorded := c.record(false)
	checkFresh(b, ev, set)
	b.Logf("%d cycles, %d instant queries (%d of them unions, %d failed unions whose members were asked alone); range queries (start-edge slices) in cycles %v, %d in all",
		per.cycles, c.instant.Load(), c.unions.Load(), c.unionFailures.Load(), rangeCycles, ranges)
	if len(recorded) > 0 {
		// What share of the cost the start-edge slices are: the same
		// range queries asked again (warm, as they were), measured alone.
		again := measureN(b, c, 1, func(int) error { return c.runRanges(ctx, recorded, queryConcurrency) })
		b.Logf("its %d range queries asked again: %.2f s of Prometheus CPU, %.1f ms per cycle over the %d cycles (%.0f %% of the measured cost)",
			len(recorded), again.cpu, again.cpu*1000/float64(per.cycles), per.cycles, 100*again.cpu/(per.cpu*float64(per.cycles)))
	}
	if per.cpu*float64(per.cycles) < cpuTarget {
		// Not worth more cycles: the data covers two hours of them, and
		// the error is still a few clock ticks of a small number.
		b.Logf("only %.2f s of Prometheus CPU in all: the 10 ms ticks of process_cpu_seconds_total and its idle CPU weigh more than elsewhere",
			per.cpu*float64(per.cycles))
	}
	return per
}

// checkFresh fails unless every SLO was evaluated from fresh data and has
// an SLI over its window: a failed or empty measurement would be cheap.
func checkFresh(b *testing.B, ev *evaluator.Evaluator, set *slo.Set) {
	b.Helper()
	for _, o := range set.SLOs {
		st, ok := ev.SLO(o.Name)
		if !ok || !st.Fresh || st.Error != "" || !st.SLI.Valid() {
			b.Fatalf("SLO %s not evaluated from fresh data: %+v", o.Name, st)
		}
	}
}

// table shows the costs side by side, relative to slogate's slices.
func table(n int, defs, history, shapeName string, list []approach, results map[string]cost) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Prometheus cost per %s cycle, %d %s SLOs, %s of %s:\n", cycle, n, defs, history, shapeName)
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "approach\tqueries\tsamples read\tPrometheus CPU\tCPU vs slices\tsamples vs slices\twall\truns measured\t")
	for _, a := range list {
		r, ok := results[a.name]
		if !ok {
			continue
		}
		cpuRatio, samplesRatio := ratios(r, results)
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%d\t\n", a.name, r.queries, humanCount(r.samples),
			humanSeconds(r.cpu), cpuRatio, samplesRatio, humanSeconds(r.wall), r.cycles)
	}
	_ = tw.Flush()
	return strings.TrimRight(sb.String(), "\n")
}

// row is one approach's line of the table.
func row(name string, r cost, results map[string]cost) string {
	cpuRatio, samplesRatio := ratios(r, results)
	return fmt.Sprintf("%s: %.1f queries, %s samples, %s of Prometheus CPU per cycle (%s the CPU, %s the samples of slices), %s wall, %d runs measured",
		name, r.queries, humanCount(r.samples), humanSeconds(r.cpu), cpuRatio, samplesRatio, humanSeconds(r.wall), r.cycles)
}

// ratios are r's CPU and samples relative to the slices approach, "-"
// when it was not measured (filtered out with -bench).
func ratios(r cost, results map[string]cost) (cpu, samples string) {
	base, ok := results["slices"]
	f := func(v, ref float64) string {
		if !ok || ref == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f×", v/ref)
	}
	return f(r.cpu, base.cpu), f(r.samples, base.samples)
}

func humanSeconds(v float64) string {
	if v < 1 {
		return fmt.Sprintf("%.1f ms", v*1000)
	}
	return fmt.Sprintf("%.2f s", v)
}

func humanCount(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
