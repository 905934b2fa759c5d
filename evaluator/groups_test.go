package evaluator_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/slo"
)

// TestGroupsSnapshotRestart: the groups of a grouped SLO keep their slice
// buffers across a restart: found again by the first discovery, restored
// from the snapshot, they fetch only the slices since and give the numbers
// they would have given without the restart.
func TestGroupsSnapshotRestart(t *testing.T) {
	end := time.Date(2026, 11, 28, 4, 30, 0, 0, time.UTC)
	_, emb := threeJobs(t, end)
	def := &slo.SLO{
		Name: "all", Service: "shop", Objective: 99.5, Window: 30 * 24 * time.Hour, GroupBy: []string{"job"},
		Indicator: slo.Indicator{Ratio: &slo.RatioIndicator{
			Errors: `sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))`,
			Total:  `sum(rate(http_requests_total[{{.window}}]))`,
		}},
	}
	snaps := memSnapshots{}
	at := end.Add(-10 * time.Minute)
	start := func() (*evaluator.Evaluator, *countingQuerier) {
		q := &countingQuerier{Querier: emb}
		ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Snapshots: snaps, Now: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.SetDefinitions(&slo.Set{SLOs: []*slo.SLO{def}}); err != nil {
			t.Fatal(err)
		}
		return ev, q
	}
	first, cold := start()
	first.Evaluate(context.Background(), at) // the aggregate, the groups found
	first.Evaluate(context.Background(), at) // the groups backfilled
	if err := first.SaveSnapshots(); err != nil {
		t.Fatal(err)
	}
	coldPoints := cold.points.Load()
	at = at.Add(5 * time.Minute)
	first.Evaluate(context.Background(), at)

	second, warm := start()
	second.Evaluate(context.Background(), at)
	second.Evaluate(context.Background(), at)
	for _, job := range []string{"cart", "search", "shop"} {
		name := `all{job="` + job + `"}`
		want, _ := first.SLO(name)
		got, ok := second.SLO(name)
		if !ok || !got.Fresh || !want.SLI.Valid() || math.Abs(float64(got.SLI)-float64(want.SLI)) > 1e-9 {
			t.Errorf("%s after the restart: SLI %v fresh %v, want %v as without restart", name, got.SLI, got.Fresh, want.SLI)
		}
	}
	if warm.points.Load()*10 > coldPoints {
		t.Errorf("restart with a snapshot fetched %d range points, a cold start %d: want far fewer", warm.points.Load(), coldPoints)
	}
}
