package bench

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// TestHistory checks the generated data in a real Prometheus: the series
// count and resolution of the shape, and buckets that equal the increase of
// the counters over their five minutes, so that every approach reads the
// same events.
func TestHistory(t *testing.T) {
	sh := dataShape(t)
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: historyDir(t, 2)})
	at := evalStart.Add(-20 * time.Minute) // on a bucket boundary
	if got := prom.QueryAt(t, `count(http_requests_total{job="svc-1"})`, at); got != float64(sh.instances*len(sh.codes)) {
		t.Errorf("series of svc-1: %v, want %d", got, sh.instances*len(sh.codes))
	}
	if got, want := prom.QueryAt(t, `max(count_over_time(http_requests_total{job="svc-1"}[1h]))`, at), float64(time.Hour/sh.step); got != want {
		t.Errorf("samples an hour per series: %v, want %v", got, want)
	}
	for _, ts := range []time.Time{historyStart(t).Add(bucketStep), at, evalStart, dataEnd} {
		for _, c := range []struct{ typ, sel string }{{"bad", `code=~"5.."`}, {"total", ``}} {
			counter := fmt.Sprintf(`sum(http_requests_total{job="svc-1",%[1]s}) - sum(http_requests_total{job="svc-1",%[1]s} offset 5m)`, c.sel)
			bucket := fmt.Sprintf(`sum(slo:sli_events:increase5m{slo="svc-1-availability",type=%q})`, c.typ)
			want, got := prom.QueryAt(t, counter, ts), prom.QueryAt(t, bucket, ts)
			if math.IsNaN(got) || got != want || (c.typ == "total" && got <= 0) {
				t.Errorf("%s at %s: bucket %v, counters increased by %v", c.typ, ts, got, want)
			}
		}
	}
}
