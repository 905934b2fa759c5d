package evaluator_test

import (
	"bytes"
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/embedded"
	"github.com/slogate/slogate/evaluator/promapi"
	"github.com/slogate/slogate/internal/synth"
	"github.com/slogate/slogate/internal/testenv"
)

// TestEmbeddedMatchesPrometheus: the embedded engine of `slogate demo`
// answers the same queries as a real Prometheus over the same samples.
func TestEmbeddedMatchesPrometheus(t *testing.T) {
	// Prometheus keeps recent history only: the one reading of the wall
	// clock. The history, and so every expectation, is relative to its end.
	tr := synth.History(time.Now().Truncate(time.Hour).Add(-2*time.Hour+30*time.Minute), time.Minute)
	db := testenv.OpenTSDB(t, tr)
	emb, err := embedded.New(embedded.Options{Storage: db})
	if err != nil {
		t.Fatal(err)
	}
	var om bytes.Buffer
	if err := tr.WriteOpenMetrics(&om, tr.End.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	testenv.Backfill(t, dataDir, &om)
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir})
	remote, err := promapi.New(promapi.Options{URL: prom.URL(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	at := tr.End.Add(-90 * time.Second)
	queries := []string{
		`sum(rate(http_requests_total{job="shop",code=~"5.."}[5m]))`,
		`sum(rate(http_requests_total{job="shop"}[1h]))`,
		`sum(rate(http_requests_total{job="shop",code=~"5.."}[30d])) / sum(rate(http_requests_total{job="shop"}[30d]))`,
		`sum(increase(http_requests_total{job="shop"}[1d]))`,
		`1 - avg_over_time(service_up{job="shop"}[1d])`,
		`sum(rate(http_request_duration_seconds_bucket{job="shop",le=~"0.3"}[6h])) / sum(rate(http_request_duration_seconds_count{job="shop"}[6h]))`,
		`histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{job="shop"}[1h])))`,
		`sum by (code) (rate(http_requests_total{job="shop"}[30m]))`,
		`absent(nonexistent_metric)`,
		`sum(rate(nonexistent_metric[5m]))`,
	}
	ctx := context.Background()
	for _, q := range queries {
		ev, err1 := emb.Query(ctx, q, at)
		pv, err2 := remote.Query(ctx, q, at)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: embedded error %v, prometheus error %v", q, err1, err2)
		}
		compareValues(t, q, ev, pv)
	}
	r := evaluator.Range{Start: at.Add(-24 * time.Hour), End: at, Step: time.Hour}
	for _, q := range queries[:3] {
		ev, err1 := emb.QueryRange(ctx, q, r)
		pv, err2 := remote.QueryRange(ctx, q, r)
		if err1 != nil || err2 != nil {
			t.Fatalf("range %s: embedded error %v, prometheus error %v", q, err1, err2)
		}
		compareValues(t, "range "+q, ev, pv)
	}
}

// compareValues checks two answers series by series (by labels), value by
// value, within floating-point noise.
func compareValues(t *testing.T, q string, a, b model.Value) {
	t.Helper()
	flat := func(v model.Value) map[string][]float64 {
		out := map[string][]float64{}
		switch v := v.(type) {
		case model.Vector:
			for _, s := range v {
				out[s.Metric.String()] = append(out[s.Metric.String()], float64(s.Value))
			}
		case model.Matrix:
			for _, s := range v {
				for _, p := range s.Values {
					out[s.Metric.String()] = append(out[s.Metric.String()], float64(p.Value))
				}
			}
		case *model.Scalar:
			out["scalar"] = []float64{float64(v.Value)}
		}
		return out
	}
	fa, fb := flat(a), flat(b)
	if len(fa) != len(fb) {
		t.Errorf("%s: embedded %d series, prometheus %d", q, len(fa), len(fb))
		return
	}
	for k, va := range fa {
		vb, ok := fb[k]
		if !ok || len(va) != len(vb) {
			t.Errorf("%s: series %s: embedded %v, prometheus %v", q, k, va, vb)
			continue
		}
		for i := range va {
			if d := math.Abs(va[i] - vb[i]); d > 1e-9*math.Max(1, math.Abs(vb[i])) && !(math.IsNaN(va[i]) && math.IsNaN(vb[i])) {
				t.Errorf("%s: series %s point %d: embedded %v, prometheus %v", q, k, i, va[i], vb[i])
			}
		}
	}
}
