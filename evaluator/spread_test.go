package evaluator_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

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

// pointsQuerier records the largest range answer, in points.
type pointsQuerier struct {
	*constQuerier
	mu        sync.Mutex
	maxPoints int
}

func (p *pointsQuerier) QueryRange(ctx context.Context, q string, r evaluator.Range) (model.Value, error) {
	v, err := p.constQuerier.QueryRange(ctx, q, r)
	n := 0
	for _, s := range v.(model.Matrix) {
		n += len(s.Values)
	}
	p.mu.Lock()
	p.maxPoints = max(p.maxPoints, n)
	p.mu.Unlock()
	return v, err
}

// TestGroupedBackfillIsBounded: at start, SLOs that differ only in label
// values get their fine slices with grouped range queries, cut so that no
// answer holds more than 200,000 points however many SLOs start together.
func TestGroupedBackfillIsBounded(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	q := &pointsQuerier{constQuerier: &constQuerier{}}
	ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	set := benchSet(500)
	if err := ev.SetDefinitions(set); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), at)
	for _, o := range set.SLOs {
		if st, _ := ev.SLO(o.Name); !st.Fresh || !st.SLI.Valid() {
			t.Fatalf("%s not evaluated after the backfill: %+v", o.Name, st)
		}
	}
	if q.maxPoints > 200_000 {
		t.Errorf("a grouped answer held %d points, want at most 200,000", q.maxPoints)
	}
	// Per SLO and template: fine, hourly and 3 start-edge runs; grouped,
	// only the hourly ones are asked per SLO.
	if n, ungrouped := q.ranges.Load(), int64(len(set.SLOs)*2*5); n*2 > ungrouped {
		t.Errorf("%d range queries at start, want well under the %d of SLOs asked one by one", n, ungrouped)
	}
}
