package evaluator

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/common/model"
)

// cycleFetcher runs the queries of one evaluation cycle: bounded concurrency,
// each identical query made once, durations and failures counted.
type cycleFetcher struct {
	q       Querier
	sem     chan struct{}
	metrics *selfMetrics
	// beat, when set, is called after every query: progress of the cycle.
	beat func()

	mu    sync.Mutex
	calls map[string]*call
	fails int
}

type call struct {
	done chan struct{}
	v    model.Value
	err  error
}

func newCycleFetcher(q Querier, sem chan struct{}, m *selfMetrics) *cycleFetcher {
	return &cycleFetcher{q: q, sem: sem, metrics: m, calls: map[string]*call{}}
}

func (f *cycleFetcher) instant(ctx context.Context, query string, ts time.Time) (model.Value, error) {
	return f.do(ctx, instantKey(query, ts), "instant", func(ctx context.Context) (model.Value, error) {
		return f.q.Query(ctx, query, ts)
	})
}

func (f *cycleFetcher) rangeQuery(ctx context.Context, query string, r Range) (model.Value, error) {
	return f.do(ctx, rangeKey(query, r), "range", func(ctx context.Context) (model.Value, error) {
		return f.q.QueryRange(ctx, query, r)
	})
}

// instantKey and rangeKey name a query in the cycle's cache.
func instantKey(query string, ts time.Time) string {
	return "instant\x00" + query + "\x00" + strconv.FormatInt(ts.UnixNano(), 10)
}

func rangeKey(query string, r Range) string {
	return "range\x00" + query + "\x00" + strconv.FormatInt(r.Start.UnixNano(), 10) + "\x00" +
		strconv.FormatInt(r.End.UnixNano(), 10) + "\x00" + r.Step.String()
}

func (f *cycleFetcher) do(ctx context.Context, key, kind string, run func(context.Context) (model.Value, error)) (model.Value, error) {
	f.mu.Lock()
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.v, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &call{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()
	defer close(c.done)

	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		c.err = ctx.Err()
		return nil, c.err
	}
	start := time.Now()
	c.v, c.err = run(ctx)
	<-f.sem
	if f.beat != nil {
		f.beat()
	}
	f.metrics.queryDuration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	if c.err != nil {
		reason := FailureReason(c.err)
		if reason != ReasonCanceled || ctx.Err() == nil {
			f.metrics.queryFailures.WithLabelValues(reason).Inc()
		}
		f.mu.Lock()
		f.fails++
		f.mu.Unlock()
	}
	return c.v, c.err
}

// prime stores an answer obtained another way (a grouped query) under the
// key of the query it answers, unless that query was already asked.
func (f *cycleFetcher) prime(key string, v model.Value) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.calls[key]; ok {
		return
	}
	c := &call{done: make(chan struct{}), v: v}
	close(c.done)
	f.calls[key] = c
}

// cached reports whether the answer under key is known or being fetched.
func (f *cycleFetcher) cached(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.calls[key]
	return ok
}

func (f *cycleFetcher) failures() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fails
}
