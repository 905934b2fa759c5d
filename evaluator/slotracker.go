package evaluator

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/slo"
)

// Slice geometry. Fine slices are one evaluation interval long and kept for
// fineSpan (the windows up to 6h are read from them, and the head of the
// longer windows); coarse slices are an hour long and kept for the SLO
// window. An evaluation asks Prometheus only for the slices it lacks, which
// is the newest fine slice in steady state.
const (
	// historySpan is how far back the charts of an SLO reach.
	historySpan = 24 * time.Hour
	coarseStep  = time.Hour
	fineSpan    = 6 * time.Hour
	// maxPoints keeps range queries under Prometheus's 11,000 points limit.
	maxPoints = 10000
	// DefaultMinRange is the shortest range a slice is measured over. A
	// 30s slice measured as rate(x[30s]) would see a single sample at 1m
	// scrape intervals and count nothing; measured as rate(x[2m]) × 30s it
	// is a moving average whose slices still add up to every event.
	DefaultMinRange = 2 * time.Minute
)

// sloTracker holds the slice buffers of one SLO. Its own mutex guards the
// buffers; the definition is immutable.
type sloTracker struct {
	def     *slo.SLO
	queries sliQueries

	mu     sync.Mutex
	fine   *ring
	coarse *ring
	span   time.Duration // longest window read from coarse slices
	// minRange is the shortest range in the queries of a slice.
	minRange  time.Duration
	batchOnce sync.Once
	batch     []*batchShape
	// latest is the newest fine slice asked for; spans older than the fine
	// ring reaches are read from coarse slices (charts of the last day).
	latest int64
	// tails hold fine slices at the start of each window longer than
	// fineSpan: there the window cuts through a coarse slice, and weighting
	// that hour by the share inside the window is wrong whenever its events
	// were not evenly spread (an incident at the edge). One range query an
	// hour keeps them filled.
	tails map[time.Duration]*ring
}

func newSLOTracker(def *slo.SLO, interval, minRange time.Duration) (*sloTracker, error) {
	q, err := sliQueriesFor(def)
	if err != nil {
		return nil, err
	}
	if coarseStep%interval != 0 {
		return nil, fmt.Errorf("evaluation interval %s must divide 1h evenly", interval)
	}
	span := def.Window
	for _, t := range slo.BurnTiers(def.Window) {
		span = max(span, t.Long)
	}
	tails := map[time.Duration]*ring{}
	for _, w := range slo.Windows(def.Window) {
		if w > fineSpan {
			tails[w] = newRing(interval, int(2*coarseStep/interval)+2)
		}
	}
	for _, t := range slo.BurnTiers(def.Window) {
		if t.Long > fineSpan {
			tails[t.Long] = newRing(interval, int(2*coarseStep/interval)+2)
		}
	}
	return &sloTracker{
		tails:   tails,
		def:     def,
		queries: q,
		fine:    newRing(interval, int((fineSpan+2*coarseStep)/interval)+2),
		// A day more than the longest window, so that the UI can chart the
		// budget of the last 24 hours from the same slices.
		coarse:   newRing(coarseStep, int((span+historySpan)/coarseStep)+3),
		span:     span,
		minRange: max(minRange, interval),
	}, nil
}

// adopt takes over the buffers of an older tracker measuring the same thing,
// so that a reload does not throw away history.
func (t *sloTracker) adopt(old *sloTracker) {
	if old == nil || old.queries.key() != t.queries.key() || old.fine.step != t.fine.step || old.minRange != t.minRange {
		return
	}
	old.mu.Lock()
	defer old.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	copyRing(t.fine, old.fine)
	copyRing(t.coarse, old.coarse)
	for w, r := range t.tails {
		if o, ok := old.tails[w]; ok {
			copyRing(r, o)
		}
	}
}

func copyRing(dst, src *ring) {
	src.each(dst.put)
}

// fetcher runs queries for trackers: instant for one slice, range for runs.
type fetcher interface {
	instant(ctx context.Context, query string, ts time.Time) (model.Value, error)
	rangeQuery(ctx context.Context, query string, r Range) (model.Value, error)
}

// update fills every slice the tracker lacks up to the slice ending at now
// (aligned). It returns the first error; slices it could not fetch stay
// missing and are asked for again next time, so an outage leaves no hole.
func (t *sloTracker) update(ctx context.Context, f fetcher, now time.Time) error {
	newest := t.fine.sliceOf(now)
	firstFine := t.fine.sliceOf(now.Add(-fineSpan - coarseStep))
	t.mu.Lock()
	t.latest = max(t.latest, newest)
	t.mu.Unlock()
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for _, run := range t.fineRuns(now) {
		keep(t.fetchRun(ctx, f, t.fine, run))
	}

	hour := t.coarse.sliceOf(now.Truncate(coarseStep))
	if hour*int64(coarseStep) > now.UnixNano() {
		hour--
	}
	t.mu.Lock()
	t.rollup(hour, firstFine)
	coarseRuns := t.coarse.missingIn(t.coarse.sliceOf(now.Add(-t.span-historySpan)), hour)
	t.mu.Unlock()
	for _, run := range coarseRuns {
		keep(t.fetchRun(ctx, f, t.coarse, run))
	}

	for _, tr := range t.tailRuns(now, newest) {
		keep(t.fetchRun(ctx, f, tr.ring, tr.run))
	}
	return firstErr
}

// ringRun is a run of slices of one ring to fetch.
type ringRun struct {
	ring *ring
	run  [2]int64
}

// fineRuns are the runs of missing fine slices that update fetches at now:
// the newest slice in steady state, more after an outage or at start.
func (t *sloTracker) fineRuns(now time.Time) [][2]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fine.missingIn(t.fine.sliceOf(now.Add(-fineSpan-coarseStep)), t.fine.sliceOf(now))
}

// tailRuns are the start-edge slices of the long windows that update fetches
// at now: the missing ones of the partial hour at each window's start, and
// the next hour with them, so a tail costs one query an hour.
func (t *sloTracker) tailRuns(now time.Time, newest int64) []ringRun {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []ringRun
	for w, tail := range t.tails {
		from := now.Add(-w)
		first, last := tail.sliceOf(from.Add(1)), tail.sliceOf(from.Truncate(coarseStep).Add(coarseStep))
		for _, run := range tail.missingIn(first, last) {
			run[1] = min(max(run[1], last+int64(coarseStep/tail.step)), newest)
			out = append(out, ringRun{ring: tail, run: run})
		}
	}
	return out
}

// chunks splits a run into the pieces fetchRun asks for: at most maxPoints
// slices each.
func (rr ringRun) chunks() [][2]int64 {
	var out [][2]int64
	for a := rr.run[0]; a <= rr.run[1]; a += maxPoints {
		out = append(out, [2]int64{a, min(rr.run[1], a+maxPoints-1)})
	}
	return out
}

// rollup builds coarse slices from complete hours of fine slices.
func (t *sloTracker) rollup(lastHour int64, firstFine int64) {
	perHour := int64(coarseStep / t.fine.step)
	for h := lastHour; h > 0; h-- {
		lastK := h * perHour
		firstK := lastK - perHour + 1
		if firstK < firstFine {
			return
		}
		if t.coarse.has(h) {
			continue
		}
		var c counts
		complete := true
		for k := firstK; k <= lastK; k++ {
			v, ok := t.fine.get(k)
			if !ok {
				complete = false
				break
			}
			c.bad += v.bad
			c.total += v.total
		}
		if complete {
			t.coarse.put(h, c)
		}
	}
}

// fetchRun fills slices run[0]..run[1] of r: one instant query per template
// for a single slice, range queries (split below maxPoints) for longer runs.
func (t *sloTracker) fetchRun(ctx context.Context, f fetcher, r *ring, run [2]int64) error {
	for _, c := range (ringRun{ring: r, run: run}).chunks() {
		if err := t.fetchSlices(ctx, f, r, c[0], c[1]); err != nil {
			return err
		}
	}
	return nil
}

func (t *sloTracker) fetchSlices(ctx context.Context, f fetcher, r *ring, a, b int64) error {
	q := t.queries
	templates := []string{q.bad, q.good, q.total, q.raw}
	var series [4]*slicePoints
	for i, tmpl := range templates {
		if tmpl == "" {
			continue
		}
		query := fill(tmpl, max(r.step, t.minRange))
		var v model.Value
		var err error
		if a == b {
			v, err = f.instant(ctx, query, r.end(a))
		} else {
			v, err = f.rangeQuery(ctx, query, Range{Start: r.end(a), End: r.end(b), Step: r.step})
		}
		if err != nil {
			return fmt.Errorf("slo %q: %w", t.def.Name, err)
		}
		series[i], err = pointsBySlice(v, r, a, b)
		if err != nil {
			return fmt.Errorf("slo %q: query %q: %w", t.def.Name, query, err)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := a; k <= b; k++ {
		bad, hasBad := series[0].get(k)
		good, hasGood := series[1].get(k)
		total, hasTotal := series[2].get(k)
		raw, hasRaw := series[3].mean(k)
		r.put(k, q.sliceCounts(r.step, bad, good, total, raw, hasBad, hasGood, hasTotal, hasRaw))
	}
	return nil
}

// slicePoints are the values of slices a..b, summed over the series of an
// answer; has marks the slices with a value.
type slicePoints struct {
	a   int64
	v   []float64
	has []bool
	n   []int // series with a value, to average raw error ratios
}

func (p *slicePoints) get(k int64) (float64, bool) {
	if p == nil || k < p.a || k >= p.a+int64(len(p.v)) {
		return 0, false
	}
	return p.v[k-p.a], p.has[k-p.a]
}

// mean is get averaged over the series: a raw error ratio answered per
// instance must not add up to more than 1.
func (p *slicePoints) mean(k int64) (float64, bool) {
	v, ok := p.get(k)
	if !ok || p.n[k-p.a] == 0 {
		return 0, false
	}
	return v / float64(p.n[k-p.a]), true
}

// pointsBySlice sums the series of an instant or range answer per slice.
func pointsBySlice(v model.Value, r *ring, a, b int64) (*slicePoints, error) {
	out := &slicePoints{a: a, v: make([]float64, b-a+1), has: make([]bool, b-a+1), n: make([]int, b-a+1)}
	add := func(ts model.Time, val model.SampleValue) {
		f := float64(val)
		if math.IsNaN(f) {
			return
		}
		k := r.sliceOf(ts.Time())
		if k < a || k > b {
			return
		}
		out.v[k-a] += f
		out.has[k-a] = true
		out.n[k-a]++
	}
	switch val := v.(type) {
	case model.Vector:
		for _, s := range val {
			add(s.Timestamp, s.Value)
		}
	case *model.Scalar:
		add(val.Timestamp, val.Value)
	case model.Matrix:
		for _, s := range val {
			for _, p := range s.Values {
				add(p.Timestamp, p.Value)
			}
		}
	case nil:
	default:
		return nil, fmt.Errorf("unexpected result type %s", v.Type())
	}
	return out, nil
}

// windowCounts sums the events of the window ending at now. Windows up to
// fineSpan come from fine slices only; longer ones from coarse slices up to
// the last full hour plus fine slices since. missing is the number of
// seconds of the window with no slice (a query failed and was not retried
// successfully yet).
func (t *sloTracker) windowCounts(w time.Duration, now time.Time) (c counts, missing time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.windowCountsLocked(now.Add(-w), now)
}

func (t *sloTracker) windowCountsLocked(from, to time.Time) (counts, time.Duration) {
	if to.Sub(from) <= fineSpan && t.fine.sliceOf(from.Add(1)) >= t.latest-int64((fineSpan+coarseStep)/t.fine.step) {
		c, m := t.fine.sum(from, to)
		return c, time.Duration(m * float64(t.fine.step))
	}
	hour := to.Truncate(coarseStep)
	cf, mf := t.fine.sum(hour, to)
	missing := mf * float64(t.fine.step)
	if tail, ok := t.tails[to.Sub(from)]; ok && !from.Truncate(coarseStep).Equal(from) {
		edge := from.Truncate(coarseStep).Add(coarseStep)
		ct, mt := tail.sum(from, edge)
		cf.bad += ct.bad
		cf.total += ct.total
		missing += mt * float64(tail.step)
		from = edge
	}
	cc, mc := t.coarse.sum(from, hour)
	missing += mc * float64(t.coarse.step)
	return counts{bad: cf.bad + cc.bad, total: cf.total + cc.total}, time.Duration(missing)
}

// countsBetween sums the events in (from, to], e.g. during a chaos run.
func (t *sloTracker) countsBetween(from, to time.Time) (counts, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.windowCountsLocked(from, to)
}
