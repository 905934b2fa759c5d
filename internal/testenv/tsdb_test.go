package testenv_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/slogate/slogate/internal/synth"
	"github.com/slogate/slogate/internal/testenv"
)

// TestOpenTSDB: two traffics' samples are all there, in time order, the
// scrape gap left out.
func TestOpenTSDB(t *testing.T) {
	end := time.Date(2026, 3, 1, 0, 30, 0, 0, time.UTC)
	a := synth.Traffic{Job: "a", Start: end.Add(-3 * time.Hour), End: end, Step: time.Minute, BaseRPS: 10, ErrorRatio: 0.01,
		GapFrom: end.Add(-time.Hour), GapTo: end.Add(-time.Hour + 10*time.Minute)}
	b := a
	b.Job, b.Start, b.Step, b.GapFrom, b.GapTo = "b", end.Add(-2*time.Hour), 30*time.Second, time.Time{}, time.Time{}
	db := testenv.OpenTSDB(t, a, b)

	q, err := db.Querier(a.Start.UnixMilli(), end.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, tc := range []struct {
		tr   synth.Traffic
		want int
	}{{a, 3*60 + 1 - 10}, {b, 2*120 + 1}} {
		ss := q.Select(context.Background(), false, nil,
			labels.MustNewMatcher(labels.MatchEqual, "__name__", "http_requests_total"),
			labels.MustNewMatcher(labels.MatchEqual, "job", tc.tr.Job),
			labels.MustNewMatcher(labels.MatchEqual, "code", "500"))
		if !ss.Next() {
			t.Fatalf("job %s: no series (%v)", tc.tr.Job, ss.Err())
		}
		var last synth.Sample
		tc.tr.Samples(func(s synth.Sample) { last = s })
		it := ss.At().Iterator(nil)
		n, prev, v := 0, int64(0), 0.0
		for it.Next() != 0 {
			var ts int64
			ts, v = it.At()
			if ts <= prev {
				t.Fatalf("job %s: sample at %d after %d", tc.tr.Job, ts, prev)
			}
			prev = ts
			n++
		}
		if n != tc.want || v != last.Errors {
			t.Errorf("job %s: %d samples, last %g; want %d, last %g", tc.tr.Job, n, v, tc.want, last.Errors)
		}
	}
}
