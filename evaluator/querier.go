package evaluator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/prometheus/common/model"
)

// Querier is what the evaluator needs from Prometheus. It is implemented by
// the HTTP API client (package promapi) for a remote Prometheus-compatible
// backend, and by the embedded engine of `slogate demo`.
type Querier interface {
	// Query runs an instant query at ts.
	Query(ctx context.Context, query string, ts time.Time) (model.Value, error)
	// QueryRange runs a range query; the result is a model.Matrix.
	QueryRange(ctx context.Context, query string, r Range) (model.Value, error)
}

// Range is the time range and resolution of a range query.
type Range struct {
	Start, End time.Time
	Step       time.Duration
}

// Failure reasons, the values of slogate_query_failures_total{reason}.
const (
	ReasonTimeout     = "timeout"
	ReasonUnreachable = "unreachable"
	ReasonBadQuery    = "bad_query"
	ReasonServer      = "server_error"
	ReasonCanceled    = "canceled"
	ReasonBadResult   = "bad_result"
	ReasonOther       = "other"
)

// QueryError is a failed query with the reason it failed, so that callers can
// count failures by kind and tell users what went wrong.
type QueryError struct {
	Reason string
	Query  string
	Err    error
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("query %q: %s: %v", e.Query, e.Reason, e.Err)
}

func (e *QueryError) Unwrap() error { return e.Err }

// FailureReason returns the reason label for err.
func FailureReason(err error) string {
	var qe *QueryError
	if errors.As(err, &qe) {
		return qe.Reason
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ReasonTimeout
	}
	if errors.Is(err, context.Canceled) {
		return ReasonCanceled
	}
	return ReasonOther
}

// Outcome classifies what an instant query gave.
type Outcome int

const (
	OutcomeValue  Outcome = iota // exactly one finite or infinite value
	OutcomeNoData                // empty vector
	OutcomeNaN                   // one series whose value is NaN
	OutcomeMulti                 // several series
	OutcomeError                 // the query failed
)

func (o Outcome) String() string {
	switch o {
	case OutcomeValue:
		return "value"
	case OutcomeNoData:
		return "no data"
	case OutcomeNaN:
		return "NaN"
	case OutcomeMulti:
		return "several series"
	case OutcomeError:
		return "error"
	}
	return "invalid"
}

// SeriesValue is one series of a result.
type SeriesValue struct {
	Labels model.Metric
	Value  float64
}

// Result is an instant query's answer, classified.
type Result struct {
	Outcome Outcome
	Value   float64       // OutcomeValue, OutcomeNaN
	Series  []SeriesValue // every series (sorted by labels), for OutcomeMulti
	Err     error         // OutcomeError
}

// Classify turns a query answer into a Result. Scalars and one-series vectors
// give a value; strings and matrices are errors (validation rejects them, but
// a backend may still answer oddly).
func Classify(v model.Value, err error) Result {
	if err != nil {
		return Result{Outcome: OutcomeError, Err: err}
	}
	switch val := v.(type) {
	case *model.Scalar:
		return single(float64(val.Value))
	case model.Vector:
		switch len(val) {
		case 0:
			return Result{Outcome: OutcomeNoData}
		case 1:
			r := single(float64(val[0].Value))
			r.Series = []SeriesValue{{Labels: val[0].Metric, Value: r.Value}}
			return r
		}
		series := make([]SeriesValue, 0, len(val))
		for _, s := range val {
			series = append(series, SeriesValue{Labels: s.Metric, Value: float64(s.Value)})
		}
		sort.Slice(series, func(i, j int) bool { return series[i].Labels.Before(series[j].Labels) })
		return Result{Outcome: OutcomeMulti, Series: series, Value: math.NaN()}
	case nil:
		return Result{Outcome: OutcomeNoData}
	default:
		return Result{Outcome: OutcomeError, Err: &QueryError{
			Reason: ReasonBadResult, Err: fmt.Errorf("expected a scalar or vector, got %s", v.Type()),
		}}
	}
}

func single(f float64) Result {
	if math.IsNaN(f) {
		return Result{Outcome: OutcomeNaN, Value: f}
	}
	return Result{Outcome: OutcomeValue, Value: f}
}

// Sum adds the values of all series, ignoring NaN ones. ok is false when no
// series had a number. Events are additive, so an SLO query that forgot its
// sum() still counts right.
func (r Result) Sum() (sum float64, ok bool) {
	switch r.Outcome {
	case OutcomeValue:
		return r.Value, true
	case OutcomeMulti:
		for _, s := range r.Series {
			if !math.IsNaN(s.Value) {
				sum += s.Value
				ok = true
			}
		}
	}
	return sum, ok
}
