package bench

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/slogate/slogate/rules"
	"github.com/slogate/slogate/slo"
)

// The history every approach reads: per SLO the counters of a month at
// the resolution and series count of the data shape (by default the
// issue's: 15 s scrapes, 5 instances × 4 status codes = 20 series), and the
// 5m buckets that the bucket-style rules would have recorded over the same
// month. It ends at a fixed date so that runs read the same data; the
// TSDB's retention counts from the newest block, not from the wall clock.
const (
	bucketStep = 5 * time.Minute
	// evalSpan is how long the measured cycles may run: the evaluator is
	// measured over two hours of cycles (see measureSlices).
	evalSpan = 2 * time.Hour
	// blockSpan is the time span of the TSDB blocks written: Prometheus's
	// largest compaction range under the 60d retention testenv gives it
	// (54h, 10 % of the retention caps the ranges at 6d), aligned the way it
	// aligns them, so that it finds nothing to compact at start.
	blockSpan = 54 * time.Hour
)

// ShapeEnv chooses the data shape: "issue" (default: 15 s resolution, 20
// series per SLO) or "reference" (60 s, one series per status code, the
// measurement the issue quotes).
const ShapeEnv = "SLOGATE_BENCH_SHAPE"

// shape is the resolution and series of every SLO's counters.
type shape struct {
	name      string
	step      time.Duration // scrape interval
	instances int
	codes     []string // errors are the 5xx ones
}

var shapes = map[string]shape{
	"issue":     {"issue", 15 * time.Second, 5, []string{"200", "404", "500", "503"}},
	"reference": {"reference", time.Minute, 1, []string{"200", "500"}},
}

func (s shape) String() string {
	return fmt.Sprintf("%s resolution, %d series per SLO (%d instances × codes %s)",
		model.Duration(s.step), s.instances*len(s.codes), s.instances, strings.Join(s.codes, ","))
}

// dataShape is the shape chosen by ShapeEnv.
func dataShape(tb testing.TB) shape {
	tb.Helper()
	name := os.Getenv(ShapeEnv)
	if name == "" {
		name = "issue"
	}
	s, ok := shapes[name]
	if !ok {
		tb.Fatalf("%s=%q: want issue (15s, 20 series per SLO) or reference (60s, 2 series per SLO)", ShapeEnv, name)
	}
	return s
}

var (
	dataEnd = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	// evalStart is when the measured cycles begin; they end five minutes
	// before the data does, so that even the 5m windows are full.
	evalStart = dataEnd.Add(-evalSpan - bucketStep)
	// dataStart leaves an hour more than the 30d window before evalStart.
	dataStart = evalStart.Add(-30*24*time.Hour - time.Hour)
)

// HistoryEnv shortens the history written, e.g. SLOGATE_BENCH_HISTORY=24h
// for 10,000 SLOs, whose month in the shape would be 35 billion
// samples. Only the slices approaches measure anything meaningful then: the
// newest slice does not read the history, while full-window queries and
// rules would read less than they do in production.
const HistoryEnv = "SLOGATE_BENCH_HISTORY"

// historyStart is where the history begins: dataStart, or later with
// HistoryEnv.
func historyStart(tb testing.TB) time.Time {
	tb.Helper()
	env := os.Getenv(HistoryEnv)
	if env == "" {
		return dataStart
	}
	d, err := model.ParseDuration(env)
	if err != nil || d <= 0 || time.Duration(d) > evalStart.Sub(dataStart) {
		tb.Fatalf("%s=%q: want a duration up to 30d, e.g. 24h", HistoryEnv, env)
	}
	return evalStart.Add(-time.Duration(d))
}

// stepEvents are SLO i's requests on instance j in the scrape step of
// length step that ends at t, by code (in sh.codes order): 5 to 50
// requests/s per SLO depending on i, shared unevenly by the instances, ±40 %
// over the day and ±10 % noise; 2 % 404s; 0.1 % errors (70 % 500, 30 % 503)
// and a 30-minute incident at 5 % every three days, at a different time for
// each SLO. It is a pure function, so the counters and the buckets computed
// from it agree exactly.
func stepEvents(sh shape, i, j int, t int64, out []float64) {
	m := t / 60 // the minute, for the daily cycle and the incidents
	base := 5 + float64((i*7919)%46)
	weight := float64(j+1) / float64(sh.instances*(sh.instances+1)/2)
	day := math.Sin(2 * math.Pi * float64(m+int64(i)*37) / 1440)
	salt := uint64(j) * 8
	total := math.Round(base * weight * sh.step.Seconds() * (1 + 0.4*day) * (0.9 + 0.2*unit(i, t, salt)))
	ratio := 0.001
	if (m+int64(i)*101)%4320 < 30 {
		ratio = 0.05
	}
	bad := math.Floor(total*ratio + unit(i, t, salt+1))
	for c := range out {
		out[c] = 0
	}
	if len(sh.codes) == 2 { // 200, 500
		out[0], out[1] = total-bad, bad
		return
	}
	notFound := math.Floor(total*0.02 + unit(i, t, salt+2))
	unavailable := math.Floor(bad*0.3 + unit(i, t, salt+3))
	out[0], out[1], out[2], out[3] = total-bad-notFound, notFound, bad-unavailable, unavailable
}

// unit is a deterministic pseudo-random number in [0, 1) (splitmix64).
func unit(i int, m int64, salt uint64) float64 {
	z := uint64(i)*0x9e3779b97f4a7c15 ^ uint64(m)*0xbf58476d1ce4e5b9 ^ salt*0x94d049bb133111eb
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}

// history is the TSDB directory of one SLO count, built once per process:
// writing and backfilling a month of per-minute samples is most of the
// benchmark's setup time, and every approach reads the same blocks.
type history struct {
	once  sync.Once
	dir   string
	info  string // what was built, how long it took
	ready bool   // false if building it failed (the Once is still done)
}

// historyKey names one history: the SLO definitions and their count.
type historyKey struct {
	defs string
	n    int
}

var (
	historiesMu sync.Mutex
	histories   = map[historyKey]*history{}
	// tempRoot holds every history directory; TestMain removes it.
	tempRoot string
)

// historyDir returns the TSDB directory with the history of n SLOs of the
// definitions defs, building it on first use with tb's temporary files.
func historyDir(tb testing.TB, defs string, n int) string {
	tb.Helper()
	key := historyKey{defs, n}
	historiesMu.Lock()
	h, ok := histories[key]
	if !ok {
		h = &history{}
		histories[key] = h
	}
	historiesMu.Unlock()
	h.once.Do(func() {
		historiesMu.Lock()
		if tempRoot == "" {
			root, err := os.MkdirTemp("", "slogate-bench-")
			if err != nil {
				historiesMu.Unlock()
				tb.Fatalf("bench: %v", err)
			}
			tempRoot = root
		}
		dir := filepath.Join(tempRoot, fmt.Sprintf("%s-%d", defs, n))
		historiesMu.Unlock()
		h.info = buildHistory(tb, defs, n, dir)
		h.dir, h.ready = dir, true
	})
	if !h.ready {
		tb.Fatalf("bench: the history of %d %s SLOs could not be built (see the first failure)", n, defs)
	}
	return h.dir
}

// historyInfo says what the history of n SLOs of defs holds and how long
// it took to build.
func historyInfo(defs string, n int) string {
	historiesMu.Lock()
	defer historiesMu.Unlock()
	if h := histories[historyKey{defs, n}]; h != nil {
		return h.info
	}
	return ""
}

// removeHistories deletes every history directory; TestMain calls it once
// the benchmarks, and the Prometheus servers reading them, are done.
func removeHistories() {
	historiesMu.Lock()
	defer historiesMu.Unlock()
	if tempRoot != "" {
		_ = os.RemoveAll(tempRoot)
	}
}

// buildHistory writes the counters and buckets of n SLOs of the
// definitions defs into dir as TSDB blocks, directly with the tsdb package:
// the OpenMetrics text and promtool that testenv.Backfill uses would take
// most of an hour for the shape (a third of a billion samples at
// 100 SLOs). It returns what it did.
func buildHistory(tb testing.TB, defs string, n int, dir string) string {
	tb.Helper()
	start := time.Now()
	sh := dataShape(tb)
	set := definitionSet(tb, defs, n)
	bucketLabels, err := bucketSeriesLabels(set)
	if err != nil {
		tb.Fatalf("bench: %v", err)
	}
	type series struct {
		blockSeries
		codes []int // the codes whose events it counts
	}
	counters := make([][]series, n)      // [slo][instance*perInstance+k]
	buckets := make([][2]blockSeries, n) // [slo][bad, total]
	for i, o := range set.SLOs {
		for _, inst := range historySeries(defs, sh, i) {
			for _, sp := range inst {
				counters[i] = append(counters[i], series{blockSeries: blockSeries{lbls: sp.lbls}, codes: sp.codes})
			}
		}
		for k, typ := range []string{rules.EventsBad, rules.EventsTotal} {
			lbls := maps.Clone(bucketLabels[o.Name][typ])
			lbls[model.MetricNameLabel] = rules.EventsMetric
			buckets[i][k].lbls = labels.FromMap(lbls)
		}
	}
	isError := make([]bool, len(sh.codes))
	for c, code := range sh.codes {
		isError[c] = strings.HasPrefix(code, "5")
	}

	step, first, last := int64(sh.step/time.Second), historyStart(tb).Unix(), dataEnd.Unix()
	bucketSecs := int64(bucketStep / time.Second)
	events := make([]float64, len(sh.codes))
	seriesCount := 0
	for i := range counters {
		seriesCount += len(counters[i])
	}
	samples, blocks := writeBlocks(tb, dir, first, last, step, func(t int64, add func(*blockSeries)) {
		for i := range counters {
			perInstance := len(counters[i]) / sh.instances
			for j := range sh.instances {
				// The first sample of every series is its start: no
				// events before it.
				if t > first {
					stepEvents(sh, i, j, t, events)
					for c := range sh.codes {
						if isError[c] {
							buckets[i][0].v += events[c]
						}
						buckets[i][1].v += events[c]
					}
				}
				for k := range perInstance {
					s := &counters[i][j*perInstance+k]
					if t > first {
						for _, c := range s.codes {
							s.v += events[c]
						}
					}
					add(&s.blockSeries)
				}
			}
			// The bucket rules record the events of the five minutes
			// before each bucket's timestamp.
			if t > first && (t-first)%bucketSecs == 0 {
				for k := range buckets[i] {
					add(&buckets[i][k])
					buckets[i][k].v = 0
				}
			}
		}
	})
	return fmt.Sprintf("history of %d %s SLOs (%s, %d series in all, %s): %d samples in %d blocks written in %s",
		n, defs, sh, seriesCount, model.Duration(dataEnd.Sub(time.Unix(first, 0))), samples, blocks, time.Since(start).Round(time.Second))
}

// seriesSpec is one series of an SLO's history: its labels and the codes
// (indexes into shape.codes) whose events of stepEvents it counts.
type seriesSpec struct {
	lbls  labels.Labels
	codes []int
}

// historySeries are the series of SLO i of defs, by instance, each
// instance's in the same order. grouped SLOs count requests by code in
// http_requests_total{job="svc-i"}; heterogeneous ones in a metric of
// their own, svc_i_requests_total, or, for latency SLOs, in a classic
// histogram whose 0.3 s bucket holds the requests that are not errors (so
// its bad events are the other SLOs' 5xx responses): buckets 0.1 (the
// first code's requests), 0.3 and +Inf and a _count, as many series as
// codes per instance.
func historySeries(defs string, sh shape, i int) [][]seriesSpec {
	job := jobName(i)
	out := make([][]seriesSpec, sh.instances)
	for j := range sh.instances {
		instance := fmt.Sprintf("10.0.%d.%d:8080", i/250, j)
		if defs == defsHeterogeneous && heterogeneousKind(i) == kindLatency {
			name := latencyMetric(i)
			var good, all []int
			for c, code := range sh.codes {
				all = append(all, c)
				if !strings.HasPrefix(code, "5") {
					good = append(good, c)
				}
			}
			bucket := func(le string, codes []int) seriesSpec {
				return seriesSpec{labels.FromStrings("__name__", name+"_bucket", "job", job, "instance", instance, "le", le), codes}
			}
			out[j] = []seriesSpec{
				bucket("0.1", []int{0}), bucket(latencyThresholdLe, good), bucket("+Inf", all),
				{labels.FromStrings("__name__", name+"_count", "job", job, "instance", instance), all},
			}
			continue
		}
		name := "http_requests_total"
		if defs == defsHeterogeneous {
			name = requestsMetric(i)
		}
		for c, code := range sh.codes {
			out[j] = append(out[j], seriesSpec{labels.FromStrings("__name__", name, "job", job, "instance", instance, "code", code), []int{c}})
		}
	}
	return out
}

// bucketSeriesLabels are the labels of the bucket series of every SLO as
// the bucket-style rules record them, by SLO name and type (bad, total),
// taken from the generated rules so that the backfilled buckets are the
// series the window rules select.
func bucketSeriesLabels(set *slo.Set) (map[string]map[string]map[string]string, error) {
	groups, err := rules.Generate(set, rules.Options{Style: rules.StyleBuckets})
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]map[string]string{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Record != rules.EventsMetric {
				continue
			}
			name := r.Labels["slo"]
			if out[name] == nil {
				out[name] = map[string]map[string]string{}
			}
			out[name][r.Labels["type"]] = r.Labels
		}
	}
	for _, o := range set.SLOs {
		if len(out[o.Name]) != 2 {
			return nil, fmt.Errorf("the bucket rules of %s record %d series, want bad and total", o.Name, len(out[o.Name]))
		}
	}
	return out, nil
}
