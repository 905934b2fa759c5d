package evaluator_test

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/internal/testenv"
)

// Tests that drive an evaluator over live scrapes cycle by cycle give each
// cycle an explicit time, and wait for the backend to have the data of that
// time, rather than sleeping an interval between cycles.

// testClock is the Now of an evaluator driven cycle by cycle: the time of
// its latest cycle, so that freshness is judged on the test's clock.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) Now() time.Time  { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// nextCycle is the time of the cycle after one at last: one interval later,
// so that every cycle measures a new slice, or the current interval if the
// test waited for something since (the live data moved on with the wall
// clock).
func nextCycle(last time.Time, interval time.Duration) time.Time {
	next := time.Now().Truncate(interval)
	if n := last.Add(interval); n.After(next) {
		next = n
	}
	return next
}

// waitIngested waits until the backend behind q has a scrape of the shop
// taken after at: then everything up to at is in, and what an evaluation
// at at reads is final.
func waitIngested(t *testing.T, q instantQuerier, at time.Time) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, "a scrape after "+at.Format(time.TimeOnly), func() error {
		return ingested(q, at)
	})
}

// ingested says whether the backend has a scrape after at: the shop's
// requests, which grow every 100ms, are more now than they were at at.
// (Asked by value rather than by timestamp() or a window's sample count,
// which VictoriaMetrics answers differently from Prometheus.)
func ingested(q instantQuerier, at time.Time) error {
	now := time.Now()
	if !now.After(at) {
		return fmt.Errorf("it is not %s yet", at.Format(time.TimeOnly))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	requests := func(ts time.Time) (float64, error) {
		v, err := q.Query(ctx, `sum(http_requests_total{job="shop"})`, ts)
		if err != nil {
			return 0, err
		}
		vec, ok := v.(model.Vector)
		if !ok || len(vec) != 1 {
			return math.Inf(-1), nil // no scrape yet
		}
		return float64(vec[0].Value), nil
	}
	before, err := requests(at)
	if err != nil {
		return err
	}
	after, err := requests(now)
	if err != nil {
		return err
	}
	if !(after > before) {
		return fmt.Errorf("no scrape after %s: %g requests then, %g now", at.Format(time.TimeOnly), before, after)
	}
	return nil
}

// instantQuerier is the part of evaluator.Querier that waitIngested needs.
type instantQuerier interface {
	Query(ctx context.Context, query string, ts time.Time) (model.Value, error)
}

// directQuerier asks a test Prometheus straight, over testenv's client,
// which keeps no idle connections for goleak to count.
type directQuerier struct{ p *testenv.Prometheus }

func (d directQuerier) Query(ctx context.Context, query string, ts time.Time) (model.Value, error) {
	samples, err := d.p.TryQuery(ctx, query, ts)
	if err != nil {
		return nil, err
	}
	vec := model.Vector{}
	for _, s := range samples {
		vec = append(vec, &model.Sample{Value: model.SampleValue(s.Value)})
	}
	return vec, nil
}
