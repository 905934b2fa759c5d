// Package query is what slogate asks of a Prometheus-compatible backend:
// the Querier interface, the time range of a range query, and failed
// queries with the reason they failed. The evaluator, backtests and the
// benchmarks ask through it; the HTTP API client (evaluator/promapi) and
// the embedded engine (evaluator/embedded) implement it.
package query

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"github.com/slogate/slogate/internal/clip"
)

// Querier is what slogate needs from Prometheus. It is implemented by
// the HTTP API client (package promapi) for a remote Prometheus-compatible
// backend, and by the embedded engine of `slogate demo`.
type Querier interface {
	// Query runs an instant query at ts.
	Query(ctx context.Context, query string, ts time.Time) (model.Value, error)
	// QueryRange runs a range query; the result is a model.Matrix.
	QueryRange(ctx context.Context, query string, r Range) (model.Value, error)
}

// Retention is implemented by Queriers that can say how long their backend
// keeps data (Prometheus's storage.tsdb.retention.time). ok is false when it
// cannot tell (no such API, a size-only retention): then the whole history
// is taken to be there, as before.
type Retention interface {
	Retention(ctx context.Context) (d time.Duration, ok bool, err error)
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

// Error is a failed query with the reason it failed, so that callers can
// count failures by kind and tell users what went wrong.
type Error struct {
	Reason string
	Query  string
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("query %q: %s: %v", e.Query, e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// FailureReason returns the reason label for err.
func FailureReason(err error) string {
	var qe *Error
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

// MaxMessage bounds every backend-provided text slogate keeps or passes on
// (errors, warnings): a misbehaving backend's 5 MB message must not end up
// in the API, the run timeline, the alerts and the log.
const MaxMessage = 1024

// Bound cuts s to MaxMessage bytes (at a character boundary), saying how
// much was cut.
func Bound(s string) string { return clip.String(s, MaxMessage) }

// boundedError is an error whose text is bounded, keeping the error it
// stands for for errors.Is and errors.As.
type boundedError struct {
	msg string
	err error
}

func (e *boundedError) Error() string { return e.msg }
func (e *boundedError) Unwrap() error { return e.err }

// BoundError returns err with its text bounded (err itself if it is short).
func BoundError(err error) error {
	if err == nil || len(err.Error()) <= MaxMessage {
		return err
	}
	return &boundedError{msg: Bound(err.Error()), err: err}
}
