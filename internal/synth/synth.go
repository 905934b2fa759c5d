// Package synth generates deterministic synthetic service traffic for tests
// and benchmarks: request counters by status, a latency histogram and an up
// gauge, with uneven traffic, incidents, outages, a counter reset and a
// scrape gap, and the exact number of events in any time range, to check
// slogate's numbers against.
//
// The traffic's daily pattern follows its own clock, which starts at
// Traffic.Anchor, never the wall clock or the calendar: the same data,
// relative to the anchor, comes out whatever absolute time the anchor is.
package synth

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
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
	// Anchor is the midnight that starts day 0 of the traffic's clock.
	// The daily pattern below is laid out in days and hours from it;
	// days before it are negative. History sets it; a zero Anchor is the
	// Unix epoch, so that the pattern follows UTC days.
	Anchor time.Time
	// BaseRPS is the mean request rate; traffic follows a daily wave of
	// ±60 % around it.
	BaseRPS float64
	// ErrorRatio is the base share of 5xx; every third day (the days -1,
	// -4, -7, ...) has an incident from 14:00 to 15:00 with ErrorRatio×20.
	ErrorRatio float64
	// ResetAt restarts all counters at this time (zero disables it).
	ResetAt time.Time
	// GapFrom..GapTo has no samples (the target was not scraped).
	GapFrom, GapTo time.Time
}

// The daily pattern, on the traffic's clock. The service is down from
// 3:00 to 3:10 every fifth day (the days -1, -6, ...) and restarts from
// 23:21 to 23:23 every day; from 20:00 to 21:00 every day 5 % more
// requests are slower than 0.3s.
var (
	incidents = daily{every: 3, on: 2, at: 14 * time.Hour, length: time.Hour}
	outages   = daily{every: 5, on: 4, at: 3 * time.Hour, length: 10 * time.Minute}
	restarts  = daily{every: 1, on: 0, at: 23*time.Hour + 21*time.Minute, length: 2 * time.Minute}
	slowHours = daily{every: 1, on: 0, at: 20 * time.Hour, length: time.Hour}
)

const day = 24 * time.Hour

// History is 31 days of job="shop" traffic ending at end, which is 23:30
// of day -1 on its clock: 20 requests/s, 0.2 % errors, the incidents,
// outages and restarts above (the last incident 9.5 hours before end, the
// last outage 20.5 hours before it, the last restart 9 to 7 minutes before
// it), a counter reset 10 days back and a 20-minute scrape gap 5 days back,
// both in hours without incidents.
//
// Every time in it is relative to end, so any end gives the same data and
// the same verdicts: a test that reads the wall clock once to put end near
// now, as a real Prometheus needs, gets the same numbers at any hour.
//
// Fine slices are moving averages over evaluation.min-range, and the
// evaluator's hourly slices start on the hour, so events within a minute
// of a window's start, or of the hour where fine and hourly slices meet,
// may be counted on the other side of it. Tests put end at half past an
// hour, so that the pattern's hours start on the hour like the evaluator's
// hourly slices and the rules' 5m buckets, and compare windows that start
// where nothing changes (Calm), so that the comparison with the exact
// truth measures the arithmetic and not that smear.
func History(end time.Time, step time.Duration) Traffic {
	anchor := end.Add(30 * time.Minute)
	at := func(d int, clock time.Duration) time.Time { return anchor.Add(time.Duration(d)*day + clock) }
	return Traffic{
		Job: "shop", Start: end.Add(-31 * day), End: end, Step: step, Anchor: anchor,
		BaseRPS: 20, ErrorRatio: 0.002,
		ResetAt: at(-10, 9*time.Hour+17*time.Minute),
		GapFrom: at(-5, 12*time.Hour), GapTo: at(-5, 12*time.Hour+20*time.Minute),
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

// origin is the start of day 0.
func (tr Traffic) origin() time.Time {
	if tr.Anchor.IsZero() {
		return time.Unix(0, 0)
	}
	return tr.Anchor
}

// clock is the day and the time of day of t on the traffic's clock.
func (tr Traffic) clock(t time.Time) (d int64, tod time.Duration) {
	since := t.Sub(tr.origin())
	d, tod = int64(since/day), since%day
	if tod < 0 {
		d, tod = d-1, tod+day
	}
	return d, tod
}

// daily is a part of the pattern: from at for length on the days d with
// d mod every = on.
type daily struct {
	every, on  int64
	at, length time.Duration
}

func (p daily) onDay(d int64) bool { return ((d%p.every)+p.every)%p.every == p.on }

func (p daily) covers(tr Traffic, t time.Time) bool {
	d, tod := tr.clock(t)
	return p.onDay(d) && tod >= p.at && tod < p.at+p.length
}

// spans lists the times of p that overlap the traffic's [Start, End].
func (p daily) spans(tr Traffic) []Span {
	first, _ := tr.clock(tr.Start)
	last, _ := tr.clock(tr.End)
	var out []Span
	for d := first - 1; d <= last; d++ {
		if !p.onDay(d) {
			continue
		}
		from := tr.origin().Add(time.Duration(d)*day + p.at)
		if s := (Span{From: from, To: from.Add(p.length)}); s.To.After(tr.Start) && !s.From.After(tr.End) {
			out = append(out, s)
		}
	}
	return out
}

// Span is the time from From (included) to To (excluded).
type Span struct{ From, To time.Time }

// Incidents are the hours with 20 times the base error ratio.
func (tr Traffic) Incidents() []Span { return incidents.spans(tr) }

// Outages are the times the up gauge is 0: outages and restarts.
func (tr Traffic) Outages() []Span {
	out := append(outages.spans(tr), restarts.spans(tr)...)
	slices.SortFunc(out, func(a, b Span) int { return a.From.Compare(b.From) })
	return out
}

// Calm says whether nothing in the traffic changes within margin of t:
// no incident, outage, restart or slow hour starts or ends, no reset, no
// scrape gap. The daily wave changes smoothly and does not count.
func (tr Traffic) Calm(t time.Time, margin time.Duration) bool {
	edges := []time.Time{tr.ResetAt, tr.GapFrom, tr.GapTo}
	for _, p := range []daily{incidents, outages, restarts, slowHours} {
		for _, s := range p.spans(tr) {
			edges = append(edges, s.From, s.To)
		}
	}
	for _, e := range edges {
		if !e.IsZero() && t.Sub(e).Abs() < margin {
			return false
		}
	}
	return true
}

func (tr Traffic) rps(t time.Time) float64 {
	_, tod := tr.clock(t)
	return tr.BaseRPS * (1 + 0.6*math.Sin(2*math.Pi*float64(tod)/float64(day)))
}

func (tr Traffic) errRatio(t time.Time) float64 {
	if incidents.covers(tr, t) {
		return math.Min(1, tr.ErrorRatio*20)
	}
	return tr.ErrorRatio
}

func (tr Traffic) upAt(t time.Time) float64 {
	if outages.covers(tr, t) || restarts.covers(tr, t) {
		return 0
	}
	return 1
}

// slowShare is the share of requests slower than each bucket bound.
func (tr Traffic) slowShare(t time.Time) []float64 {
	extra := 0.0
	if slowHours.covers(tr, t) {
		extra = 0.05
	}
	return []float64{0.6, 0.3, 0.01 + extra, 0.001}
}

// Samples generates the series, calling fn for every sample in time order.
// The sample's Bucket and DBucket are reused: copy them to keep them.
func (tr Traffic) Samples(fn func(Sample)) {
	var cur Sample
	cur.Bucket = make([]float64, len(Buckets)+1)
	cur.DBucket = make([]float64, len(Buckets)+1)
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
		slow := tr.slowShare(t)
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

func (t *Truth) add(s Sample, step time.Duration) {
	t.Total += s.DTotal
	t.Errors += s.DErrors
	for i, b := range Buckets {
		t.Slow[b] += s.DTotal - s.DBucket[i]
	}
	if !s.Skip {
		t.Duration += step.Seconds()
		t.Down += (1 - s.Up) * step.Seconds()
	}
}

// TruthBetween computes Truth over (from, to].
func (tr Traffic) TruthBetween(from, to time.Time) Truth {
	t := Truth{Slow: map[float64]float64{}}
	tr.Samples(func(s Sample) {
		if s.T.After(from) && !s.T.After(to) {
			t.add(s, tr.Step)
		}
	})
	return t
}

// Truths computes Truth over the windows ending at to, in one pass.
func (tr Traffic) Truths(to time.Time, windows ...time.Duration) []Truth {
	out := make([]Truth, len(windows))
	for i := range out {
		out[i].Slow = map[float64]float64{}
	}
	tr.Samples(func(s Sample) {
		for i, w := range windows {
			if s.T.After(to.Add(-w)) && !s.T.After(to) {
				out[i].add(s, tr.Step)
			}
		}
	})
	return out
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
