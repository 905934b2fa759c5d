package bench

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/rules"
)

// TestHistory checks the generated data in a real Prometheus: the series
// count and resolution of the shape, and buckets that equal the increase of
// the counters over their five minutes, so that every approach reads the
// same events; for heterogeneous SLOs, every query shape's own series.
func TestHistory(t *testing.T) {
	sh := dataShape(t)
	at := evalStart.Add(-20 * time.Minute) // on a bucket boundary
	times := []time.Time{historyStart(t).Add(bucketStep), at, evalStart, dataEnd}
	// checkBuckets compares SLO name's buckets with the increase over five
	// minutes of the counters its bad and total events are read from.
	checkBuckets := func(t *testing.T, prom *testenv.Prometheus, name, bad, total string) {
		t.Helper()
		for _, ts := range times {
			for _, c := range []struct{ typ, counter string }{{"bad", bad}, {"total", total}} {
				bucket := fmt.Sprintf(`sum(slo:sli_events:increase5m{slo=%q,type=%q})`, name, c.typ)
				want := prom.QueryAt(t, c.counter, ts) - prom.QueryAt(t, c.counter, ts.Add(-bucketStep))
				got := prom.QueryAt(t, bucket, ts)
				if math.IsNaN(got) || got != want || (c.typ == "total" && got <= 0) {
					t.Errorf("%s %s at %s: bucket %v, counters increased by %v", name, c.typ, ts, got, want)
				}
			}
		}
	}
	perHour := float64(time.Hour / sh.step)

	t.Run(defsGrouped, func(t *testing.T) {
		prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: historyDir(t, defsGrouped, 2)})
		if got := prom.QueryAt(t, `count(http_requests_total{job="svc-1"})`, at); got != float64(sh.instances*len(sh.codes)) {
			t.Errorf("series of svc-1: %v, want %d", got, sh.instances*len(sh.codes))
		}
		if got := prom.QueryAt(t, `max(count_over_time(http_requests_total{job="svc-1"}[1h]))`, at); got != perHour {
			t.Errorf("samples an hour per series: %v, want %v", got, perHour)
		}
		checkBuckets(t, prom, "svc-1-availability",
			`sum(http_requests_total{job="svc-1",code=~"5.."})`, `sum(http_requests_total{job="svc-1"})`)
	})

	t.Run(defsHeterogeneous, func(t *testing.T) {
		set := heterogeneousSLOs(4)
		prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: historyDir(t, defsHeterogeneous, len(set.SLOs))})
		for i, o := range set.SLOs {
			sel := fmt.Sprintf(`{__name__=%q}`, requestsMetric(i))
			bad, total := `sum(`+requestsMetric(i)+`{code=~"5.."})`, `sum(`+requestsMetric(i)+`)`
			wantSeries := sh.instances * len(sh.codes)
			if heterogeneousKind(i) == kindLatency {
				m := latencyMetric(i)
				sel = fmt.Sprintf(`{__name__=~"%s_(bucket|count)"}`, m)
				bad = fmt.Sprintf(`sum(%s_count) - sum(%s_bucket{le=%q})`, m, m, latencyThresholdLe)
				total = `sum(` + m + `_count)`
				wantSeries = sh.instances * 4
			}
			if got := prom.QueryAt(t, `count(`+sel+`)`, at); got != float64(wantSeries) {
				t.Errorf("series of %s: %v, want %d", o.Name, got, wantSeries)
			}
			if got := prom.QueryAt(t, `max(count_over_time(`+sel+`[1h]))`, at); got != perHour {
				t.Errorf("%s: samples an hour per series: %v, want %v", o.Name, got, perHour)
			}
			checkBuckets(t, prom, o.Name, bad, total)
			// The SLO's own event queries find its data: 5 minutes of
			// rates times 300 s are the bucket, but for increase()'s
			// extrapolation at the window's edges.
			badQ, totalQ, err := rules.EventQueries(o, bucketStep)
			if err != nil {
				t.Fatal(err)
			}
			gotBad, gotTotal := prom.QueryAt(t, badQ, at), prom.QueryAt(t, totalQ, at)
			wantTotal := prom.QueryAt(t, fmt.Sprintf(`sum(slo:sli_events:increase5m{slo=%q,type="total"})`, o.Name), at)
			if math.IsNaN(gotBad) || gotBad < 0 || math.Abs(gotTotal-wantTotal) > 0.1*wantTotal {
				t.Errorf("%s: its event queries give %v bad of %v, the bucket %v events", o.Name, gotBad, gotTotal, wantTotal)
			}
		}
	})
}
