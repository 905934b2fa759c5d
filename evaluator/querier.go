package evaluator

import (
	"fmt"
	"math"
	"sort"

	"github.com/prometheus/common/model"
	"github.com/slogate/slogate/query"
)

// Querier, Range, QueryError and the failure reasons are package query's;
// the names here keep the evaluator's API whole.
type (
	Querier    = query.Querier
	Range      = query.Range
	QueryError = query.Error
)

// Failure reasons, the values of slogate_query_failures_total{reason}.
const (
	ReasonTimeout     = query.ReasonTimeout
	ReasonUnreachable = query.ReasonUnreachable
	ReasonBadQuery    = query.ReasonBadQuery
	ReasonServer      = query.ReasonServer
	ReasonCanceled    = query.ReasonCanceled
	ReasonBadResult   = query.ReasonBadResult
	ReasonOther       = query.ReasonOther
)

// FailureReason returns the reason label for err.
func FailureReason(err error) string { return query.FailureReason(err) }

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
