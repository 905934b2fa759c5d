package bench

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/rules"
	"github.com/slogate/slogate/slo"
)

// The history every approach reads: per SLO two counters at 60 s
// resolution over a month (the reference measurement), and the 5m
// buckets that the bucket-style rules would have recorded over the same
// month. It ends at a fixed date so that runs read the same data; the
// TSDB's retention counts from the newest block, not from the wall clock.
const (
	scrapeInterval = time.Minute
	bucketStep     = 5 * time.Minute
	// evalSpan is how long the measured cycles may run: the evaluator is
	// measured over two hours of cycles (see measureSlices).
	evalSpan = 2 * time.Hour
)

var (
	dataEnd = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	// evalStart is when the measured cycles begin; they end five minutes
	// before the data does, so that even the 5m windows are full.
	evalStart = dataEnd.Add(-evalSpan - bucketStep)
	// dataStart leaves an hour more than the 30d window before evalStart.
	dataStart = evalStart.Add(-30*24*time.Hour - time.Hour)
)

// minuteEvents is SLO i's traffic in the minute that ends at unix minute
// m: 5 to 50 requests/s depending on the SLO, ±40 % over the day and
// ±10 % noise; 0.1 % errors, and a 30-minute incident at 5 % every three
// days, at a different time for each SLO. It is a pure function, so the
// counters and the buckets computed from it agree exactly.
func minuteEvents(i int, m int64) (good, bad float64) {
	base := 5 + float64((i*7919)%46)
	day := math.Sin(2 * math.Pi * float64(m+int64(i)*37) / 1440)
	total := math.Round(base * 60 * (1 + 0.4*day) * (0.9 + 0.2*unit(i, m, 0)))
	ratio := 0.001
	if (m+int64(i)*101)%4320 < 30 {
		ratio = 0.05
	}
	bad = math.Floor(total*ratio + unit(i, m, 1))
	return total - bad, bad
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

var (
	historiesMu sync.Mutex
	histories   = map[int]*history{}
	// tempRoot holds every history directory; TestMain removes it.
	tempRoot string
)

// historyDir returns the TSDB directory with the history of n SLOs,
// building it on first use with tb's temporary files.
func historyDir(tb testing.TB, n int) string {
	tb.Helper()
	historiesMu.Lock()
	h, ok := histories[n]
	if !ok {
		h = &history{}
		histories[n] = h
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
		dir := filepath.Join(tempRoot, fmt.Sprintf("slos-%d", n))
		historiesMu.Unlock()
		h.info = buildHistory(tb, n, dir)
		h.dir, h.ready = dir, true
	})
	if !h.ready {
		tb.Fatalf("bench: the history of %d SLOs could not be built (see the first failure)", n)
	}
	return h.dir
}

// historyInfo says what the history of n SLOs holds and how long it took
// to build.
func historyInfo(n int) string {
	historiesMu.Lock()
	defer historiesMu.Unlock()
	if h := histories[n]; h != nil {
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

// buildHistory writes the counters and buckets of n SLOs as OpenMetrics
// and backfills them into dir with promtool. It returns what it did.
func buildHistory(tb testing.TB, n int, dir string) string {
	tb.Helper()
	start := time.Now()
	set := benchSLOs(n)
	bucketLabels, err := bucketSeriesLabels(set)
	if err != nil {
		tb.Fatalf("bench: %v", err)
	}
	first, last := dataStart.Unix()/60, dataEnd.Unix()/60
	om := testenv.NewOMWriter(tb)
	samples := 0

	om.Family("http_requests_total", testenv.OMCounter)
	for i := range n {
		for _, code := range []string{"200", "500"} {
			lbls := map[string]string{"job": jobName(i), "code": code}
			var c float64
			for m := first; m <= last; m++ {
				if m > first {
					good, bad := minuteEvents(i, m)
					if code == "200" {
						c += good
					} else {
						c += bad
					}
				}
				om.Sample(lbls, time.Unix(m*60, 0), c)
				samples++
			}
		}
	}

	// The buckets the bucket-style rules record every 5m: the events of
	// the five minutes before each bucket's timestamp.
	perBucket := int64(bucketStep / scrapeInterval)
	om.Family(rules.EventsMetric, testenv.OMGauge)
	for i, o := range set.SLOs {
		for _, typ := range []string{rules.EventsBad, rules.EventsTotal} {
			lbls := bucketLabels[o.Name][typ]
			for end := first + perBucket; end <= last; end += perBucket {
				var v float64
				for m := end - perBucket + 1; m <= end; m++ {
					good, bad := minuteEvents(i, m)
					if typ == rules.EventsBad {
						v += bad
					} else {
						v += good + bad
					}
				}
				om.Sample(lbls, time.Unix(end*60, 0), v)
				samples++
			}
		}
	}
	path := om.Close()
	written := time.Since(start)
	size := int64(0)
	if fi, err := os.Stat(path); err == nil {
		size = fi.Size()
	}
	testenv.BackfillFile(tb, dir, path)
	_ = os.Remove(path) // hundreds of MB that nothing reads again
	return fmt.Sprintf("history of %d SLOs: %d samples (%d MB of OpenMetrics) written in %s, backfilled by promtool in %s",
		n, samples, size>>20, written.Round(time.Second), (time.Since(start) - written).Round(time.Second))
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
