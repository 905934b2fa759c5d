package testenv

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/slogate/slogate/internal/synth"
)

// NewTSDB opens an empty Prometheus TSDB (the storage of `slogate demo`) in
// a temporary directory, closed when the test ends. Everything stays in
// the head: a test's month of samples fits in memory, and the WAL and the
// compactions a server needs would only cost a test time (seconds per
// month of samples under -race).
//
// The head accepts samples in time order only, across series too: a
// sample more than an hour older than the newest one is out of bounds.
func NewTSDB(t testing.TB) *tsdb.DB {
	t.Helper()
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = int64(90 * 24 * time.Hour / time.Millisecond)
	opts.WALSegmentSize = -1 // no WAL
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	if err != nil {
		t.Fatalf("testenv: open tsdb: %v", err)
	}
	db.DisableCompactions()
	t.Cleanup(func() { db.Close() })
	return db
}

// OpenTSDB returns a NewTSDB holding the samples of the traffics, under
// the same series names and labels as WriteOpenMetrics writes them.
func OpenTSDB(t testing.TB, trs ...synth.Traffic) *tsdb.DB {
	t.Helper()
	db := NewTSDB(t)
	// One sorted stream per traffic, merged by time.
	type row struct {
		t int64
		v []float64
	}
	var (
		series [][]labels.Labels
		rows   [][]row
	)
	for _, tr := range trs {
		var rs []row
		tr.Samples(func(s synth.Sample) {
			if !s.Skip {
				rs = append(rs, row{s.T.UnixMilli(), trafficValues(s)})
			}
		})
		series = append(series, trafficSeries(tr))
		rows = append(rows, rs)
	}
	refs := make([][]storage.SeriesRef, len(series))
	for i := range series {
		refs[i] = make([]storage.SeriesRef, len(series[i]))
	}
	next := make([]int, len(rows))
	app := db.Appender(context.Background())
	for n := 0; ; n++ {
		k := -1
		for i, rs := range rows {
			if next[i] < len(rs) && (k < 0 || rs[next[i]].t < rows[k][next[k]].t) {
				k = i
			}
		}
		if k < 0 {
			break
		}
		r := rows[k][next[k]]
		next[k]++
		for j, v := range r.v {
			ref, err := app.Append(refs[k][j], series[k][j], r.t, v)
			if err != nil {
				t.Fatalf("testenv: append %s: %v", series[k][j], err)
			}
			refs[k][j] = ref
		}
		if n%10000 == 9999 {
			if err := app.Commit(); err != nil {
				t.Fatalf("testenv: commit: %v", err)
			}
			app = db.Appender(context.Background())
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatalf("testenv: commit: %v", err)
	}
	return db
}

// trafficSeries are the series of a traffic, as WriteOpenMetrics names
// them, in the order of trafficValues.
func trafficSeries(tr synth.Traffic) []labels.Labels {
	job := func(name string, kv ...string) labels.Labels {
		return labels.FromStrings(append([]string{"__name__", name, "job", tr.Job}, kv...)...)
	}
	ls := []labels.Labels{
		job("http_requests_total", "code", "200"),
		job("http_requests_total", "code", "500"),
		job("service_up"),
		job("http_request_duration_seconds_count"),
		job("http_request_duration_seconds_sum"),
	}
	for i := 0; i <= len(synth.Buckets); i++ {
		le := "+Inf"
		if i < len(synth.Buckets) {
			le = strconv.FormatFloat(synth.Buckets[i], 'f', -1, 64)
		}
		ls = append(ls, job("http_request_duration_seconds_bucket", "le", le))
	}
	return ls
}

// trafficValues are the values of trafficSeries in a sample.
func trafficValues(s synth.Sample) []float64 {
	return append([]float64{s.Total - s.Errors, s.Errors, s.Up, s.Bucket[len(synth.Buckets)], s.Sum}, s.Bucket...)
}
