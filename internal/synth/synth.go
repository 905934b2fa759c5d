// Package synth generates deterministic synthetic service traffic for tests
// and benchmarks: request counters by status, a latency histogram and an up
// gauge, with uneven traffic, a counter reset and a scrape gap, and the exact
// number of events in any time range, to check slogate's numbers against.
package synth

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// Buckets of the latency histogram (seconds).
var Buckets = []float64{0.05, 0.1, 0.3, 1}

// Traffic describes one synthetic service.
type Traffic struct {
	Job   string
	Start time.Time
	End   time.Time
	Step  time.Duration // sample resolution
	// BaseRPS is the mean request rate; traffic follows a daily wave of
	// ±60 % around it.
	BaseRPS float64
	// ErrorRatio is the base share of 5xx; every 3rd day has an incident
	// hour with ErrorRatio×20.
	ErrorRatio float64
	// ResetAt restarts all counters at this time (zero disables it).
	ResetAt time.Time
	// GapFrom..GapTo has no samples (the target was not scraped).
	GapFrom, GapTo time.Time
}

// History is 31 days of job="shop" traffic ending at end: 20 requests/s,
// 0.2 % errors, a counter reset 10 days back and a 20-minute scrape gap 5
// days back, both placed in hours without incidents.
//
// Fine slices are moving averages over evaluation.min-range, so events
// within a minute of a window edge may be counted on the other side of it;
// tests put the edges (end) at half past an hour, away from the
// hour-aligned incidents, so that the comparison with the exact truth
// measures the arithmetic and not that smear.
func History(end time.Time, step time.Duration) Traffic {
	day := func(d int) time.Time { return end.Add(time.Duration(-d) * 24 * time.Hour).Truncate(24 * time.Hour) }
	return Traffic{
		Job: "shop", Start: end.Add(-31 * 24 * time.Hour), End: end, Step: step,
		BaseRPS: 20, ErrorRatio: 0.002,
		ResetAt: day(10).Add(9*time.Hour + 17*time.Minute),
		GapFrom: day(5).Add(12 * time.Hour), GapTo: day(5).Add(12*time.Hour + 20*time.Minute),
	}
}

// Sample is the cumulative state at one time.
type Sample struct {
	T      time.Time
	Total  float64   // http_requests_total{code="200"} + {code="500"}
	Errors float64   // http_requests_total{code="500"}
	Bucket []float64 // cumulative counts per Buckets entry, then +Inf
	Sum    float64
	Up     float64 // 1 or 0
	// Increments since the previous sample (after a reset they equal the
	// new counter values), the ground truth.
	DTotal, DErrors float64
	DBucket         []float64
	Skip            bool // inside the gap: not exported
}

func (tr Traffic) rps(t time.Time) float64 {
	day := float64(t.Unix()%86400) / 86400
	return tr.BaseRPS * (1 + 0.6*math.Sin(2*math.Pi*day))
}

func (tr Traffic) errRatio(t time.Time) float64 {
	d := t.Unix() / 86400
	h := (t.Unix() % 86400) / 3600
	if d%3 == 0 && h == 14 {
		return math.Min(1, tr.ErrorRatio*20)
	}
	return tr.ErrorRatio
}

// upAt is 0 for the first 10 minutes of every 5th day's 3am hour.
func (tr Traffic) upAt(t time.Time) float64 {
	d := t.Unix() / 86400
	s := t.Unix() % 86400
	if d%5 == 0 && s >= 3*3600 && s < 3*3600+600 {
		return 0
	}
	return 1
}

// slowShare is the share of requests slower than each bucket bound.
func slowShare(t time.Time) []float64 {
	h := (t.Unix() % 86400) / 3600
	extra := 0.0
	if h == 20 {
		extra = 0.05
	}
	return []float64{0.6, 0.3, 0.01 + extra, 0.001}
}

// Samples generates the series, calling fn for every sample in time order.
func (tr Traffic) Samples(fn func(Sample)) {
	var cur Sample
	cur.Bucket = make([]float64, len(Buckets)+1)
	reset := !tr.ResetAt.IsZero()
	for t := tr.Start; !t.After(tr.End); t = t.Add(tr.Step) {
		n := tr.rps(t) * tr.Step.Seconds()
		e := n * tr.errRatio(t)
		if reset && !t.Before(tr.ResetAt) {
			cur.Total, cur.Errors, cur.Sum = 0, 0, 0
			for i := range cur.Bucket {
				cur.Bucket[i] = 0
			}
			reset = false
		}
		cur.T = t
		cur.DTotal, cur.DErrors = n, e
		cur.Total += n
		cur.Errors += e
		slow := slowShare(t)
		cur.DBucket = make([]float64, len(Buckets)+1)
		for i := range Buckets {
			cur.DBucket[i] = n * (1 - slow[i])
			cur.Bucket[i] += cur.DBucket[i]
		}
		cur.DBucket[len(Buckets)] = n
		cur.Bucket[len(Buckets)] += n
		cur.Sum += n * 0.08
		cur.Up = tr.upAt(t)
		cur.Skip = !tr.GapFrom.IsZero() && !t.Before(tr.GapFrom) && t.Before(tr.GapTo)
		fn(cur)
	}
}

// Truth sums the true events of samples with time in (from, to]: bad and
// total requests, requests slower than the bucket bound le, and the seconds
// of downtime and of time by the up gauge.
type Truth struct {
	Total, Errors  float64
	Slow           map[float64]float64
	Down, Duration float64
}

// TruthBetween computes Truth over (from, to].
func (tr Traffic) TruthBetween(from, to time.Time) Truth {
	t := Truth{Slow: map[float64]float64{}}
	tr.Samples(func(s Sample) {
		if !s.T.After(from) || s.T.After(to) {
			return
		}
		t.Total += s.DTotal
		t.Errors += s.DErrors
		for i, b := range Buckets {
			t.Slow[b] += s.DTotal - s.DBucket[i]
		}
		if !s.Skip {
			t.Duration += tr.Step.Seconds()
			t.Down += (1 - s.Up) * tr.Step.Seconds()
		}
	})
	return t
}

// WriteOpenMetrics writes the series as OpenMetrics text with timestamps,
// the input of `promtool tsdb create-blocks-from openmetrics`. Samples at or
// after until are left out (they come from live scraping instead).
func (tr Traffic) WriteOpenMetrics(w io.Writer, until time.Time) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	job := `job="` + tr.Job + `"`
	var samples []Sample
	tr.Samples(func(s Sample) {
		if s.Skip || !s.T.Before(until) {
			return
		}
		c := s
		c.Bucket = append([]float64(nil), s.Bucket...)
		samples = append(samples, c)
	})
	ts := func(t time.Time) string { return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64) }
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	fmt.Fprintln(bw, "# TYPE http_requests counter")
	for _, code := range []string{"200", "500"} {
		for _, s := range samples {
			v := s.Errors
			if code == "200" {
				v = s.Total - s.Errors
			}
			fmt.Fprintf(bw, "http_requests_total{%s,code=%q} %s %s\n", job, code, f(v), ts(s.T))
		}
	}
	fmt.Fprintln(bw, "# TYPE http_request_duration_seconds histogram")
	for i := 0; i <= len(Buckets); i++ {
		le := "+Inf"
		if i < len(Buckets) {
			le = f(Buckets[i])
		}
		for _, s := range samples {
			fmt.Fprintf(bw, "http_request_duration_seconds_bucket{%s,le=%q} %s %s\n", job, le, f(s.Bucket[i]), ts(s.T))
		}
	}
	for _, s := range samples {
		fmt.Fprintf(bw, "http_request_duration_seconds_count{%s} %s %s\n", job, f(s.Bucket[len(Buckets)]), ts(s.T))
	}
	for _, s := range samples {
		fmt.Fprintf(bw, "http_request_duration_seconds_sum{%s} %s %s\n", job, f(s.Sum), ts(s.T))
	}
	fmt.Fprintln(bw, "# TYPE service_up gauge")
	for _, s := range samples {
		fmt.Fprintf(bw, "service_up{%s} %s %s\n", job, f(s.Up), ts(s.T))
	}
	fmt.Fprintln(bw, "# EOF")
	return bw.Flush()
}
