package evaluator_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slogate/slogate/evaluator"
)

// TestSpreadBoundsTheCycle: Spread offsets each SLO into the cycle by up to
// Spread × Interval; a cycle of many SLOs must not last the sum of their
// offsets. With 1,000 SLOs and offsets of up to 3 s, summed offsets made a
// cycle last about 47 s (1,000 × 1.5 s over 32 workers): longer than the
// interval, so every cycle overran.
func TestSpreadBoundsTheCycle(t *testing.T) {
	const interval, spread = 30 * time.Second, 3.0 / 30
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	ev, err := evaluator.New(evaluator.Options{
		Querier: &constQuerier{}, Interval: interval, Spread: spread,
		Registerer: prometheus.NewRegistry(), Now: func() time.Time { return at },
	})
	if err != nil {
		t.Fatal(err)
	}
	set := benchSet(1000)
	if err := ev.SetDefinitions(set); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), at) // backfill: not delayed
	at = at.Add(interval)
	start := time.Now()
	ev.Evaluate(context.Background(), at)
	took := time.Since(start)
	// Not a speed check: the bound is the interval, which a cycle must fit
	// in; the largest offset is 3 s and the evaluation itself a fraction of
	// a second.
	if limit := interval; took > limit {
		t.Errorf("a steady cycle of %d SLOs with offsets up to %s took %s, want under %s", len(set.SLOs), time.Duration(spread*float64(interval)), took, limit)
	}
	if st, _ := ev.SLO(set.SLOs[0].Name); !st.Fresh {
		t.Errorf("SLO not fresh after the cycle: %+v", st)
	}
}
