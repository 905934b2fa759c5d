// Package embedded is the evaluator's Querier over Prometheus's own PromQL
// engine and a local storage (the TSDB of `slogate demo`, or a test's), so
// that the embedded default runs the exact code path of a remote Prometheus.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/slogate/slogate/query"
)

// defaultEvaluationInterval is Prometheus's global evaluation_interval
// when its configuration sets none.
const defaultEvaluationInterval = time.Minute

// Querier runs PromQL on a storage.Queryable.
type Querier struct {
	engine  *promql.Engine
	storage storage.Queryable
	timeout time.Duration
}

var _ query.Querier = (*Querier)(nil)

// Options configure a Querier.
type Options struct {
	Storage storage.Queryable
	Timeout time.Duration // per query, default 10s
}

// New builds a Querier with an engine configured like Prometheus 3's defaults.
func New(opts Options) (*Querier, error) {
	if opts.Storage == nil {
		return nil, errors.New("embedded: a storage is required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	eng := promql.NewEngine(promql.EngineOpts{
		MaxSamples:           50_000_000,
		Timeout:              opts.Timeout,
		LookbackDelta:        5 * time.Minute,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		// A subquery without a step ([30m:]) is evaluated at the global
		// evaluation_interval, 1m by default; the engine has no default
		// and dereferences nil without one.
		NoStepSubqueryIntervalFn: func(int64) int64 { return defaultEvaluationInterval.Milliseconds() },
	})
	return &Querier{engine: eng, storage: opts.Storage, timeout: opts.Timeout}, nil
}

// Query runs an instant query.
func (q *Querier) Query(ctx context.Context, qs string, ts time.Time) (model.Value, error) {
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	qry, err := q.engine.NewInstantQuery(ctx, q.storage, nil, qs, ts)
	if err != nil {
		return nil, &query.Error{Reason: query.ReasonBadQuery, Query: qs, Err: err}
	}
	defer qry.Close()
	return convert(qs, qry.Exec(ctx))
}

// QueryRange runs a range query.
func (q *Querier) QueryRange(ctx context.Context, qs string, r query.Range) (model.Value, error) {
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	qry, err := q.engine.NewRangeQuery(ctx, q.storage, nil, qs, r.Start, r.End, r.Step)
	if err != nil {
		return nil, &query.Error{Reason: query.ReasonBadQuery, Query: qs, Err: err}
	}
	defer qry.Close()
	return convert(qs, qry.Exec(ctx))
}

func convert(qs string, res *promql.Result) (model.Value, error) {
	if res.Err != nil {
		reason := query.ReasonServer
		var timeout promql.ErrQueryTimeout
		var canceled promql.ErrQueryCanceled
		switch {
		case errors.As(res.Err, &timeout), errors.Is(res.Err, context.DeadlineExceeded):
			reason = query.ReasonTimeout
		case errors.As(res.Err, &canceled), errors.Is(res.Err, context.Canceled):
			reason = query.ReasonCanceled
		}
		return nil, &query.Error{Reason: reason, Query: qs, Err: res.Err}
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		out := make(model.Vector, 0, len(v))
		for _, s := range v {
			if s.H != nil {
				continue // native histograms are not verdict values
			}
			out = append(out, &model.Sample{Metric: metric(s.Metric), Value: model.SampleValue(s.F), Timestamp: model.Time(s.T)})
		}
		return out, nil
	case promql.Scalar:
		return &model.Scalar{Value: model.SampleValue(v.V), Timestamp: model.Time(v.T)}, nil
	case promql.Matrix:
		out := make(model.Matrix, 0, len(v))
		for _, s := range v {
			ss := &model.SampleStream{Metric: metric(s.Metric)}
			for _, p := range s.Floats {
				ss.Values = append(ss.Values, model.SamplePair{Timestamp: model.Time(p.T), Value: model.SampleValue(p.F)})
			}
			if len(ss.Values) > 0 {
				out = append(out, ss)
			}
		}
		return out, nil
	case promql.String:
		return &model.String{Value: v.V, Timestamp: model.Time(v.T)}, nil
	}
	return nil, &query.Error{Reason: query.ReasonBadResult, Query: qs, Err: fmt.Errorf("unexpected result type %T", res.Value)}
}

func metric(ls labels.Labels) model.Metric {
	m := make(model.Metric, ls.Len())
	ls.Range(func(l labels.Label) { m[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
	return m
}
