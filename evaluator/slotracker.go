package evaluator

import (
	"fmt"
	"math"
	"slices"
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

// ringKind names the rings of a tracker.
type ringKind uint8

const (
	fineRing ringKind = iota
	coarseRing
	tailRing // fine slices at the start edge of one long window
)

// ringRef names one ring of a tracker; window is set for tails.
type ringRef struct {
	kind   ringKind
	window time.Duration
}

// sliceReq is what a tracker needs fetched: slices first..last of one ring,
// at most maxPoints of them. A single slice is an instant query at its end,
// a run a range query.
type sliceReq struct {
	ring        ringRef
	step        time.Duration
	first, last int64
}

func (q sliceReq) instant() bool { return q.first == q.last }

// end is the evaluation time of slice k of the request's ring.
func (q sliceReq) end(k int64) time.Time { return time.Unix(0, k*int64(q.step)) }

// rng is the range query of a run of slices.
func (q sliceReq) rng() Range { return Range{Start: q.end(q.first), End: q.end(q.last), Step: q.step} }

// sloTracker holds the slice buffers of one SLO. Its own mutex guards the
// buffers; the definition and the queries are immutable.
type sloTracker struct {
	def    *slo.SLO
	events slo.Events
	// minRange is the shortest range in the queries of a slice.
	minRange time.Duration
	// shapes are the fine-slice queries that can be grouped with other
	// SLOs' (batch.go), by template index (bad, good, total, raw).
	shapes [4]*batchShape
	span   time.Duration // longest window read from coarse slices

	mu     sync.Mutex
	fine   *ring
	coarse *ring
	// latest is the newest fine slice asked for; spans older than the fine
	// ring reaches are read from coarse slices (charts of the last day).
	latest int64
	// tails hold fine slices at the start of each window longer than
	// fineSpan: there the window cuts through a coarse slice, and weighting
	// that hour by the share inside the window is wrong whenever its events
	// were not evenly spread (an incident at the edge). One range query an
	// hour keeps them filled.
	tails map[time.Duration]*ring
	// filled caches the templates filled with a range (planning only, so
	// guarded by the evaluator's cycleMu): filling is a regexp
	// replacement, and the same few ranges come back every cycle.
	filled map[time.Duration][4]string
	// coveredFrom is how far back the backend keeps data (now minus its
	// retention; zero when unknown): older slices are not asked for, and
	// those the tracker does not hold already count as uncovered.
	coveredFrom time.Time
}

// setCoveredFrom sets how far back the backend keeps data.
func (t *sloTracker) setCoveredFrom(from time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.coveredFrom = from
}

// firstCovered is the first slice of r that starts at or after coveredFrom
// (t.mu held): the oldest worth asking for.
func (t *sloTracker) firstCovered(r *ring) int64 {
	if t.coveredFrom.IsZero() {
		return math.MinInt64
	}
	return r.sliceOf(t.coveredFrom) + 1
}

// uncoveredLocked is how much of (from, to] lies before coveredFrom and has
// no slice: history the backend no longer keeps and slogate did not keep
// either (t.mu held).
func (t *sloTracker) uncoveredLocked(from, to time.Time) time.Duration {
	if t.coveredFrom.IsZero() || !t.coveredFrom.After(from) {
		return 0
	}
	_, missing := t.windowCountsLocked(from, minTime(to, t.coveredFrom))
	return missing
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func newSLOTracker(def *slo.SLO, interval, minRange time.Duration) (*sloTracker, error) {
	ev, err := def.Events()
	if err != nil {
		return nil, err
	}
	if coarseStep%interval != 0 {
		return nil, fmt.Errorf("evaluation interval %s must divide 1h evenly", interval)
	}
	if ts := def.Timeslices; ts != nil && (ts.Window < interval || ts.Window%interval != 0) {
		return nil, fmt.Errorf("time slices of %s: must be a multiple of the evaluation interval %s, so that each slice ends on an evaluation", slo.FormatDuration(ts.Window), interval)
	}
	span := def.Window
	for _, t := range def.Tiers() {
		span = max(span, t.Long)
	}
	tails := map[time.Duration]*ring{}
	addTail := func(w time.Duration) {
		if _, ok := tails[w]; !ok && w > fineSpan {
			tails[w] = newRing(interval, int(2*coarseStep/interval)+2)
		}
	}
	for _, w := range slo.Windows(def.Window) {
		addTail(w)
	}
	for _, t := range def.Tiers() {
		addTail(t.Long)
	}
	t := &sloTracker{
		def:    def,
		events: ev,
		tails:  tails,
		// Back to fineSpan + an hour: the 6h window of a chart point an hour
		// old, and the hour rolled up into a coarse slice.
		fine: newRing(interval, int((fineSpan+coarseStep)/interval)+2),
		// A day more than the longest window, so that the UI can chart the
		// budget of the last 24 hours from the same slices.
		coarse:   newRing(coarseStep, int((span+historySpan)/coarseStep)+3),
		span:     span,
		minRange: max(minRange, interval),
	}
	for i, tmpl := range t.templates() {
		if tmpl != "" && i < 3 && !ev.Slices { // time-slice subqueries are not grouped
			t.shapes[i], _ = parseBatchShape(slo.FillWindow(tmpl, t.rangeFor(interval)))
		}
	}
	return t, nil
}

// templates are the event templates by index: bad, good, total, raw.
func (t *sloTracker) templates() [4]string {
	e := t.events
	return [4]string{e.Bad, e.Good, e.Total, e.Raw}
}

// queries returns the templates filled for slices of length step ("" for
// the templates the SLO does not have).
func (t *sloTracker) queries(step time.Duration) [4]string {
	rng := t.rangeFor(step)
	if q, ok := t.filled[rng]; ok {
		return q
	}
	var q [4]string
	for i, tmpl := range t.templates() {
		if tmpl != "" {
			q[i] = slo.FillWindow(tmpl, rng)
		}
	}
	if t.filled == nil {
		t.filled = map[time.Duration][4]string{}
	}
	t.filled[rng] = q
	return q
}

// rangeFor is the range a slice of length step is measured over: for time
// slices, exactly the slice (its queries count the time slices ending in
// it, which a longer range would count twice).
func (t *sloTracker) rangeFor(step time.Duration) time.Duration {
	if t.events.Slices {
		return step
	}
	return max(step, t.minRange)
}

// ring returns the ring ref names.
func (t *sloTracker) ring(ref ringRef) *ring {
	switch ref.kind {
	case fineRing:
		return t.fine
	case coarseRing:
		return t.coarse
	}
	return t.tails[ref.window]
}

// adopt takes over the buffers of an older tracker measuring the same thing,
// so that a reload does not throw away history.
func (t *sloTracker) adopt(old *sloTracker) {
	if !t.sameMeasure(old) {
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
	t.latest = old.latest
}

// sameMeasure reports whether old counts the same events in the same slices.
func (t *sloTracker) sameMeasure(old *sloTracker) bool {
	return old != nil && old.events.Key() == t.events.Key() && old.fine.step == t.fine.step && old.minRange == t.minRange
}

func copyRing(dst, src *ring) {
	src.each(dst.put)
}

// needs lists the slices the tracker lacks at now: the newest fine slice in
// steady state; after a start, a restart from a snapshot or an outage, the
// runs of fine slices missing, the hours no rollup of fine slices will fill,
// and the start-edge slices of the long windows. It changes nothing, so a
// plan can be printed and thrown away.
func (t *sloTracker) needs(now time.Time) []sliceReq {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []sliceReq
	add := func(ref ringRef, r *ring, run [2]int64) {
		for a := run[0]; a <= run[1]; a += maxPoints {
			out = append(out, sliceReq{ring: ref, step: r.step, first: a, last: min(run[1], a+maxPoints-1)})
		}
	}
	newest := t.fine.sliceOf(now)
	firstFine := t.fine.sliceOf(now.Add(-fineSpan - coarseStep))
	for _, run := range t.fine.missingIn(max(firstFine, t.firstCovered(t.fine)), newest) {
		add(ringRef{kind: fineRing}, t.fine, run)
	}

	// Hours whose fine slices are all held or asked for this cycle are
	// rolled up from them (apply); only older ones are asked by the hour.
	perHour := int64(coarseStep / t.fine.step)
	rolledUp := func(h int64) bool { return (h-1)*perHour+1 >= firstFine }
	for _, run := range t.coarse.missingIn(max(t.coarse.sliceOf(now.Add(-t.span-historySpan)), t.firstCovered(t.coarse)), lastFullHour(t.coarse, now)) {
		for run[1] >= run[0] && rolledUp(run[1]) {
			run[1]--
		}
		if run[1] >= run[0] {
			add(ringRef{kind: coarseRing}, t.coarse, run)
		}
	}

	// The missing slices of the partial hour at each long window's start,
	// and the next hour with them, so that a tail costs one query an hour.
	for _, w := range sortedDurations(t.tails) {
		tail := t.tails[w]
		from := now.Add(-w)
		first, last := max(tail.sliceOf(from.Add(1)), t.firstCovered(tail)), tail.sliceOf(from.Truncate(coarseStep).Add(coarseStep))
		for _, run := range tail.missingIn(first, last) {
			run[1] = min(max(run[1], last+perHour), newest)
			add(ringRef{kind: tailRing, window: w}, tail, run)
		}
	}
	return out
}

// lastFullHour is the coarse slice of the last hour that ended at or
// before now.
func lastFullHour(coarse *ring, now time.Time) int64 {
	hour := coarse.sliceOf(now.Truncate(coarseStep))
	if hour*int64(coarseStep) > now.UnixNano() {
		hour--
	}
	return hour
}

// answer is what the query of one template of a sliceReq returned.
type answer struct {
	query string
	v     model.Value
	err   error
}

// fetched is a sliceReq with the answers of its templates, by index (bad,
// good, total, raw; unused templates are zero).
type fetched struct {
	req     sliceReq
	answers [4]answer
}

// apply stores what a cycle fetched, rolls complete hours of fine slices up
// into coarse ones, and returns the first error. Slices whose queries
// failed stay missing and are asked for again next cycle, so an outage
// leaves no hole.
func (t *sloTracker) apply(now time.Time, got []fetched) error {
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("slo %q: %w", t.def.Name, err)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.latest = max(t.latest, t.fine.sliceOf(now))
	for _, f := range got {
		if f.req.ring.kind != coarseRing {
			keep(t.store(f))
		}
	}
	t.rollup(lastFullHour(t.coarse, now), t.fine.sliceOf(now.Add(-fineSpan-coarseStep)))
	for _, f := range got {
		if f.req.ring.kind == coarseRing {
			keep(t.store(f))
		}
	}
	return firstErr
}

// store puts the counts of one fetched request into its ring (t.mu held).
func (t *sloTracker) store(f fetched) error {
	r := t.ring(f.req.ring)
	a, b := f.req.first, f.req.last
	var series [4]*slicePoints
	var poisoned error
	for i, ans := range f.answers {
		if ans.query == "" {
			continue
		}
		if ans.err != nil {
			return ans.err
		}
		// Event rates are finite and not negative; a raw error ratio is
		// also at most 1.
		most := math.Inf(1)
		if i == 3 {
			most = 1
		}
		var err error
		if series[i], err = pointsBySlice(ans.v, r, a, b, most); err != nil {
			return fmt.Errorf("query %q: %w", ans.query, err)
		}
		if v, ok := series[i].firstBad(); ok && poisoned == nil {
			poisoned = &QueryError{Reason: ReasonBadResult, Query: ans.query,
				Err: fmt.Errorf("answered %v, not a finite rate between 0 and %v: the slice is left out and asked again", v, most)}
		}
	}
	for k := a; k <= b; k++ {
		if series[0].isBad(k) || series[1].isBad(k) || series[2].isBad(k) || series[3].isBad(k) {
			continue // missing, like a slice lost in an outage
		}
		var rt slo.Rates
		rt.Bad, rt.HasBad = series[0].get(k)
		rt.Good, rt.HasGood = series[1].get(k)
		rt.Total, rt.HasTotal = series[2].get(k)
		rt.Raw, rt.HasRaw = series[3].mean(k)
		r.put(k, t.events.SliceCounts(r.step, rt))
	}
	return poisoned
}

// rollup builds coarse slices from complete hours of fine slices (t.mu held).
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
		var c slo.Counts
		complete := true
		for k := firstK; k <= lastK; k++ {
			v, ok := t.fine.get(k)
			if !ok {
				complete = false
				break
			}
			c = c.Add(v)
		}
		if complete {
			t.coarse.put(h, c)
		}
	}
}

// slicePoints are the values of slices a..b, summed over the series of an
// answer: one allocation per answer, since every SLO reads a few every
// cycle.
type slicePoints struct {
	a   int64
	pts []slicePoint
	// badValue is the first value no rate can have; anyBad says there is one.
	badValue float64
	anyBad   bool
}

// slicePoint is one slice of an answer.
type slicePoint struct {
	v   float64
	n   int32 // series with a value, to average raw error ratios
	has bool
	// bad marks a slice for which a series answered a value that no rate
	// can have (±Inf, negative, above the most).
	bad bool
}

func (p *slicePoints) at(k int64) *slicePoint {
	if p == nil || k < p.a || k >= p.a+int64(len(p.pts)) {
		return nil
	}
	return &p.pts[k-p.a]
}

func (p *slicePoints) isBad(k int64) bool {
	pt := p.at(k)
	return pt != nil && pt.bad
}

func (p *slicePoints) firstBad() (float64, bool) {
	if p == nil || !p.anyBad {
		return 0, false
	}
	return p.badValue, true
}

func (p *slicePoints) get(k int64) (float64, bool) {
	pt := p.at(k)
	if pt == nil {
		return 0, false
	}
	return pt.v, pt.has
}

// mean is get averaged over the series: a raw error ratio answered per
// instance must not add up to more than 1.
func (p *slicePoints) mean(k int64) (float64, bool) {
	pt := p.at(k)
	if pt == nil || !pt.has || pt.n == 0 {
		return 0, false
	}
	return pt.v / float64(pt.n), true
}

// noise is how far below 0 (or above 1 for a raw ratio) an answer may be
// and still count as 0 (1): the float error of a query that subtracts.
const noise = 1e-9

// pointsBySlice sums the series of an instant or range answer per slice;
// values that are not a rate between 0 and most mark their slice bad.
func pointsBySlice(v model.Value, r *ring, a, b int64, most float64) (*slicePoints, error) {
	out := &slicePoints{a: a, pts: make([]slicePoint, b-a+1)}
	add := func(ts model.Time, val model.SampleValue) {
		f := float64(val)
		if math.IsNaN(f) {
			return
		}
		k := r.sliceOf(ts.Time())
		if k < a || k > b {
			return
		}
		// Float noise of a difference (total - good) is not a bad answer.
		if f < 0 && f > -noise {
			f = 0
		} else if f > most && f < most+noise {
			f = most
		}
		if math.IsInf(f, 0) || f < 0 || f > most {
			out.pts[k-a].bad = true
			if !out.anyBad {
				out.badValue, out.anyBad = f, true
			}
			return
		}
		pt := &out.pts[k-a]
		pt.v += f
		pt.has = true
		pt.n++
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
// the last full hour plus fine slices since. missing is how much of the
// window has no slice (a query failed and was not retried successfully yet).
func (t *sloTracker) windowCounts(w time.Duration, now time.Time) (c slo.Counts, missing time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.windowCountsLocked(now.Add(-w), now)
}

func (t *sloTracker) windowCountsLocked(from, to time.Time) (slo.Counts, time.Duration) {
	if to.Sub(from) <= fineSpan && t.fine.sliceOf(from.Add(1)) >= t.latest-int64((fineSpan+coarseStep)/t.fine.step) {
		c, m := t.fine.sum(from, to)
		return c, time.Duration(m * float64(t.fine.step))
	}
	hour := to.Truncate(coarseStep)
	c, mf := t.fine.sum(hour, to)
	missing := mf * float64(t.fine.step)
	if tail, ok := t.tails[to.Sub(from)]; ok && !from.Truncate(coarseStep).Equal(from) {
		edge := from.Truncate(coarseStep).Add(coarseStep)
		ct, mt := tail.sum(from, edge)
		c = c.Add(ct)
		missing += mt * float64(tail.step)
		from = edge
	}
	cc, mc := t.coarse.sum(from, hour)
	missing += mc * float64(t.coarse.step)
	return c.Add(cc), time.Duration(missing)
}

// countsBetween sums the events in (from, to], e.g. during a chaos run.
func (t *sloTracker) countsBetween(from, to time.Time) (slo.Counts, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.windowCountsLocked(from, to)
}

// coverage is countsBetween with the part of the missing time that is
// history the backend no longer keeps (uncoveredLocked).
func (t *sloTracker) coverage(from, to time.Time) (c slo.Counts, missing, uncovered time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, missing = t.windowCountsLocked(from, to)
	if missing > 0 {
		uncovered = min(t.uncoveredLocked(from, to), missing)
	}
	return c, missing, uncovered
}

// hasSlice reports whether the fine slice ending at now is held: what makes
// a status current.
func (t *sloTracker) hasSlice(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fine.has(t.fine.sliceOf(now))
}

func sortedDurations[V any](m map[time.Duration]V) []time.Duration {
	out := make([]time.Duration, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}
