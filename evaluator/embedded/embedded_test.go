package embedded_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/slogate/slogate/evaluator/embedded"
	"github.com/slogate/slogate/internal/testenv"
)

// TestSubqueryWithoutStep: a subquery without a step ([30m:], as Sloth's
// examples write them) is evaluated every minute, as Prometheus does with
// its default evaluation_interval; it used to crash the engine.
func TestSubqueryWithoutStep(t *testing.T) {
	m := testenv.NewMemStorage()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 120 {
		m.Add(labels.FromStrings("__name__", "x"), at.Add(time.Duration(i-119)*time.Minute).UnixMilli(), 1)
	}
	q, err := embedded.New(embedded.Options{Storage: m})
	if err != nil {
		t.Fatal(err)
	}
	v, err := q.Query(context.Background(), "sum_over_time(count(x)[30m:])", at)
	if err != nil {
		t.Fatal(err)
	}
	if vec, ok := v.(model.Vector); !ok || len(vec) != 1 || vec[0].Value != 30 {
		t.Fatalf("got %v, want 30 (one point a minute)", v)
	}
}
