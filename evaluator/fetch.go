package evaluator

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/model"
)

// errNotFetched answers a query a cancelled cycle never got to.
var errNotFetched = errors.New("not fetched: the evaluation cycle was cancelled")

// fetch asks Prometheus what plan p lists: first the grouped queries, in
// parallel, whose answers are split among their members; then every query
// still without an answer (not grouped, or its group failed), each after
// the spread offset of the SLO it belongs to. Concurrency is bounded by
// e.sem. It returns the number of queries that failed.
func (e *Evaluator) fetch(ctx context.Context, p *plan, start time.Time) int {
	var failures atomic.Int64
	ask := func(kind, expr string, instant bool, at time.Time, r Range) (model.Value, error) {
		v, err := e.query(ctx, kind, func(ctx context.Context) (model.Value, error) {
			if instant {
				return e.opts.Querier.Query(ctx, expr, at)
			}
			return e.opts.Querier.QueryRange(ctx, expr, r)
		})
		if err != nil {
			failures.Add(1)
		}
		return v, err
	}

	var wg sync.WaitGroup
	for _, g := range p.groups {
		wg.Go(func() {
			v, err := ask(kindOf(g.instant), g.expr, g.instant, g.at, g.rng)
			if err != nil {
				return // the members ask for themselves
			}
			split, ok := splitAnswer(v, g.by)
			if !ok {
				return
			}
			for _, m := range g.members {
				key := make(model.Metric, len(g.by))
				for _, l := range g.by {
					key[model.LabelName(l)] = model.LabelValue(m.shape.eq[l])
				}
				m.v, m.done = split(tupleKey(key, g.by)), true
			}
			e.metrics.batched.Add(float64(len(g.members) - 1))
		})
	}
	for _, u := range p.unions {
		wg.Go(func() {
			v, err := ask("instant", u.expr, true, u.at, Range{})
			if err != nil || !u.split(v) {
				return // the members ask for themselves
			}
			e.metrics.batched.Add(float64(len(u.members) - 1))
		})
	}
	wg.Wait()

	var rest []*plannedQuery
	for _, q := range p.queries {
		if !q.done {
			rest = append(rest, q)
		}
	}
	// Workers take the queries in the order of their offsets, so that none
	// waits behind a later one.
	offset := func(q *plannedQuery) time.Duration { return e.spreadOffset(q.spreadBy) }
	slices.SortStableFunc(rest, func(a, b *plannedQuery) int { return int(offset(a) - offset(b)) })
	work := make(chan *plannedQuery)
	for range min(len(rest), 4*e.opts.MaxConcurrency) {
		wg.Go(func() {
			for q := range work {
				if !waitUntil(ctx, start.Add(offset(q))) {
					continue
				}
				q.v, q.err = ask(kindOf(q.instant), q.expr, q.instant, q.at, q.rng)
				q.done = true
			}
		})
	}
	for _, q := range rest {
		select {
		case work <- q:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	for _, q := range p.queries {
		if !q.done {
			q.err = errNotFetched
		}
	}
	return int(failures.Load())
}

func kindOf(instant bool) string {
	if instant {
		return "instant"
	}
	return "range"
}

// query runs one query within the concurrency bound, counting its duration
// and failure, and beats the heartbeat: an answer, even an error, is
// progress of the loop.
func (e *Evaluator) query(ctx context.Context, kind string, run func(context.Context) (model.Value, error)) (model.Value, error) {
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	start := time.Now()
	v, err := run(ctx)
	<-e.sem
	e.beat()
	e.metrics.queryDuration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	if err != nil {
		if reason := FailureReason(err); reason != ReasonCanceled || ctx.Err() == nil {
			e.metrics.queryFailures.WithLabelValues(reason).Inc()
		}
	}
	return v, err
}

// spreadOffset is how far into a cycle the queries of SLO name wait, by a
// hash of its name, so that thousands of SLOs do not hit Prometheus at the
// same instant; 0 for "" and without spreading.
func (e *Evaluator) spreadOffset(name string) time.Duration {
	maxOffset := time.Duration(float64(e.opts.Interval) * e.opts.Spread)
	if name == "" || maxOffset <= 0 {
		return 0
	}
	return time.Duration(hashName(name) % uint64(maxOffset))
}

// waitUntil waits for the wall clock to reach t; false if ctx ended first.
// The offsets pace real requests, so they count in real time whatever the
// evaluation time is.
func waitUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
