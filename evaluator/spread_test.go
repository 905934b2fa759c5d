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
		// Ungrouped: SLOs answered by grouped queries are not delayed.
		Querier: &constQuerier{}, Interval: interval, Spread: spread, DisableBatching: true,
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

// TestSpreadSkipsGroupedSLOs: SLOs whose queries a grouped query already
// answered ask Prometheus nothing, so their verdicts do not wait for their
// offset. With offsets of up to 27 minutes, a cycle that waited would not be
// done when its one-minute context ends, and its SLOs would not be fresh.
func TestSpreadSkipsGroupedSLOs(t *testing.T) {
	const interval, spread = 30 * time.Minute, 0.9
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	q := &constQuerier{}
	ev, err := evaluator.New(evaluator.Options{
		Querier: q, Interval: interval, Spread: spread,
		Registerer: prometheus.NewRegistry(), Now: func() time.Time { return at },
	})
	if err != nil {
		t.Fatal(err)
	}
	set := benchSet(100)
	if err := ev.SetDefinitions(set); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), at) // backfill: not delayed
	at = at.Add(interval)
	q.instant.Store(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev.Evaluate(ctx, at)
	if ctx.Err() != nil {
		t.Fatalf("the cycle waited for the spread offsets of SLOs with nothing to ask")
	}
	for _, o := range set.SLOs {
		if st, _ := ev.SLO(o.Name); !st.Fresh {
			t.Fatalf("%s not fresh after the cycle: %+v", o.Name, st)
		}
	}
	if n := q.instant.Load(); n != 2 {
		t.Errorf("%d instant queries in a steady cycle of grouped SLOs, want 2", n)
	}
}
