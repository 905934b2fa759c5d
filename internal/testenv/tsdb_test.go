package testenv_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/embedded"
	"github.com/slogate/slogate/internal/synth"
	"github.com/slogate/slogate/internal/testenv"
)

// twoTraffics are two jobs at different resolutions, one with a scrape gap.
func twoTraffics() (a, b synth.Traffic) {
	end := time.Date(2026, 3, 1, 0, 30, 0, 0, time.UTC)
	a = synth.Traffic{Job: "a", Start: end.Add(-3 * time.Hour), End: end, Step: time.Minute, Anchor: end, BaseRPS: 10, ErrorRatio: 0.01,
		GapFrom: end.Add(-time.Hour), GapTo: end.Add(-time.Hour + 10*time.Minute)}
	b = a
	b.Job, b.Start, b.Step, b.GapFrom, b.GapTo = "b", end.Add(-2*time.Hour), 30*time.Second, time.Time{}, time.Time{}
	return a, b
}

// TestOpenTSDB: two traffics' samples are all there, in time order, the
// scrape gap left out, in the TSDB and in a MemStorage.
func TestOpenTSDB(t *testing.T) {
	a, b := twoTraffics()
	for name, st := range map[string]storage.Queryable{"tsdb": testenv.OpenTSDB(t, a, b), "mem": testenv.NewMemStorage(a, b)} {
		t.Run(name, func(t *testing.T) {
			q, err := st.Querier(a.Start.UnixMilli(), a.End.UnixMilli())
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
				if ss.Next() {
					t.Errorf("job %s: more than one series", tc.tr.Job)
				}
			}
		})
	}
}

// TestMemStorageAnswersLikeTSDB: the PromQL engine gives the same answers
// over a MemStorage as over a TSDB of the same samples, samples added later
// included.
func TestMemStorageAnswersLikeTSDB(t *testing.T) {
	a, b := twoTraffics()
	db, mem := testenv.OpenTSDB(t, a, b), testenv.NewMemStorage(a, b)
	late := labels.FromStrings("__name__", "recorded", "job", "a")
	app := db.Appender(context.Background())
	for i := range 3 {
		ts := a.End.Add(time.Duration(i-2) * time.Minute).UnixMilli()
		if _, err := app.Append(0, late, ts, float64(i)); err != nil {
			t.Fatal(err)
		}
		mem.Add(late, ts, float64(i))
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	qdb, err := embedded.New(embedded.Options{Storage: db})
	if err != nil {
		t.Fatal(err)
	}
	qmem, err := embedded.New(embedded.Options{Storage: mem})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at := a.End.Add(-90 * time.Second)
	for _, q := range []string{
		`sum by (job) (rate(http_requests_total{code=~"5.."}[5m]))`,
		`sum(rate(http_requests_total[1h])) / sum(rate(http_requests_total[1h]))`,
		`sum by (le) (increase(http_request_duration_seconds_bucket[2h]))`,
		`1 - avg_over_time(service_up{job="a"}[3h])`,
		`count by (__name__) ({job=~"a|b"})`,
		`sum_over_time(recorded[5m])`,
		`absent(nonexistent)`,
	} {
		want, err1 := qdb.Query(ctx, q, at)
		got, err2 := qmem.Query(ctx, q, at)
		if err1 != nil || err2 != nil || canonical(got) != canonical(want) {
			t.Errorf("%s: memory %v (%v), tsdb %v (%v)", q, got, err2, want, err1)
		}
		r := evaluator.Range{Start: a.Start, End: a.End, Step: 5 * time.Minute}
		want, err1 = qdb.QueryRange(ctx, q, r)
		got, err2 = qmem.QueryRange(ctx, q, r)
		if err1 != nil || err2 != nil || canonical(got) != canonical(want) || len(got.(model.Matrix)) == 0 {
			t.Errorf("range %s: memory %v (%v), tsdb %v (%v)", q, got, err2, want, err1)
		}
	}
}

// canonical is v as text with its series sorted: the engine answers in the
// order the storage lists series, which is no part of the answer.
func canonical(v model.Value) string {
	var lines []string
	switch v := v.(type) {
	case model.Vector:
		for _, s := range v {
			lines = append(lines, s.String())
		}
	case model.Matrix:
		for _, s := range v {
			lines = append(lines, s.String())
		}
	default:
		return v.String()
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
