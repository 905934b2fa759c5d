package evaluator

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/internal/stats"
	"github.com/slogate/slogate/slo"
)

// probeQueries are the planned queries of one probe of a cycle; nil where
// the probe needs none.
type probeQueries struct {
	// value is the probe's query now (compare: the experiment group's).
	value *plannedQuery
	// events counts the events behind the value (the low-traffic guard).
	events *plannedQuery
	// baseline is the probe's average over its baseline window; nil when
	// the run's frozen baseline is known already (cached).
	baseline *plannedQuery
	cached   *Result
	// control is the control group's value now (compare with bounds).
	control *plannedQuery
	// controlRange and experimentRange are the per-step samples of both
	// groups (a statistical test), from samplesFrom.
	controlRange, experimentRange *plannedQuery
	samplesFrom                   time.Time
	// runStart is the start of the run watching the hypothesis (zero
	// outside runs): the end of a frozen baseline and the start of the
	// samples.
	runStart time.Time
	// baselineEnd is when the baseline window ends.
	baselineEnd time.Time
	cacheKey    string
}

// probeAnswers are the classified answers of a probeQueries.
type probeAnswers struct {
	value, events, baseline, control Result
	hasEvents                        bool
	samples                          [2][]float64 // control, experiment
	samplesErr                       error
	q                                *probeQueries
}

// planProbe plans what probe p of hypothesis h needs at the plan's time;
// runStart is the start of the run that watches h (zero if none) and
// cache holds the frozen baselines of runs already measured.
func (pl *planner) planProbe(h *slo.Hypothesis, p *slo.Probe, runStart time.Time, cache map[string]Result) *probeQueries {
	at := pl.p.at
	pq := &probeQueries{runStart: runStart}
	instant := func(expr string) *plannedQuery {
		return pl.query(&plannedQuery{expr: expr, instant: true, at: at})
	}
	if p.Events != "" {
		pq.events = instant(p.Events)
	}
	r := p.Relative
	switch {
	case r == nil:
		pq.value = instant(p.Query)
	case r.Baseline != nil:
		pq.value = instant(p.Query)
		end := at
		if !runStart.IsZero() && runStart.Before(at) {
			end = runStart
		}
		pq.baselineEnd = end.Add(-r.Baseline.Offset)
		expr := r.Baseline.BaselineQuery(p.Query)
		if !runStart.IsZero() {
			pq.cacheKey = h.Name + "\x00" + p.Name + "\x00" + expr + "\x00" + strconv.FormatInt(pq.baselineEnd.UnixNano(), 10)
			if res, ok := cache[pq.cacheKey]; ok {
				pq.cached = &res
				return pq
			}
		}
		pq.baseline = pl.query(&plannedQuery{expr: expr, instant: true, at: pq.baselineEnd})
	case r.Test != nil:
		from := at.Add(-r.Compare.Window)
		if !runStart.IsZero() {
			from = runStart
		}
		step := r.Compare.Step
		start := from.Truncate(step)
		if start.Before(from) {
			start = start.Add(step)
		}
		end := at.Truncate(step)
		pq.samplesFrom = start
		if end.Before(start) {
			return pq // no whole step yet: too few samples
		}
		rng := Range{Start: start, End: end, Step: step}
		pq.controlRange = pl.query(&plannedQuery{expr: r.Compare.ControlQuery, rng: rng})
		pq.experimentRange = pl.query(&plannedQuery{expr: r.Compare.ExperimentQuery, rng: rng})
	default:
		pq.value = instant(r.Compare.ExperimentQuery)
		pq.control = instant(r.Compare.ControlQuery)
	}
	return pq
}

// answers classifies the fetched answers of pq.
func (pq *probeQueries) answers() probeAnswers {
	a := probeAnswers{q: pq}
	classify := func(q *plannedQuery) Result {
		if q == nil {
			return Result{Outcome: OutcomeNoData}
		}
		return Classify(q.v, q.err)
	}
	a.value = classify(pq.value)
	if pq.events != nil {
		a.events, a.hasEvents = classify(pq.events), true
	}
	switch {
	case pq.cached != nil:
		a.baseline = *pq.cached
	case pq.baseline != nil:
		a.baseline = classify(pq.baseline)
	}
	a.control = classify(pq.control)
	if pq.controlRange != nil {
		for i, q := range []*plannedQuery{pq.controlRange, pq.experimentRange} {
			s, err := samplesOf(q)
			if err != nil {
				a.samplesErr = err
			}
			a.samples[i] = s
		}
	}
	return a
}

// samplesOf reads the values of a range answer with one series (none: no
// samples).
func samplesOf(q *plannedQuery) ([]float64, error) {
	if q.err != nil {
		return nil, q.err
	}
	m, ok := q.v.(model.Matrix)
	switch {
	case q.v == nil:
		return nil, nil
	case !ok:
		return nil, &QueryError{Reason: ReasonBadResult, Query: q.expr, Err: fmt.Errorf("expected a matrix, got %s", q.v.Type())}
	case len(m) == 0:
		return nil, nil
	case len(m) > 1:
		return nil, fmt.Errorf("the query returned %d series; a test compares one series per group: aggregate it (sum, avg)", len(m))
	}
	out := make([]float64, len(m[0].Values))
	for i, v := range m[0].Values {
		out[i] = float64(v.Value)
	}
	return out, nil
}

// relativeProbe judges a probe with a relative tolerance.
func relativeProbe(def *slo.Hypothesis, p *slo.Probe, a probeAnswers) ProbeStatus {
	r := p.Relative
	if r.Test != nil {
		return testProbe(def, p, a)
	}
	ps := newProbeStatus(p)
	ref := &ProbeBaseline{Mode: r.Mode(), Value: Num(math.NaN())}
	ps.Baseline = ref
	refRes := a.control
	if r.Baseline != nil {
		refRes = a.baseline
		ref.From, ref.To = a.q.baselineEnd.Add(-r.Baseline.Window), a.q.baselineEnd
		ref.Frozen = !a.q.runStart.IsZero()
	}
	ps.Outcome = a.value.Outcome.String()
	ps.Series = len(a.value.Series)
	for _, res := range []Result{a.value, refRes} {
		switch res.Outcome {
		case OutcomeError:
			ps.Outcome, ps.Error, ps.Verdict = OutcomeError.String(), res.Err.Error(), def.OnError.Verdict()
			return ps
		case OutcomeMulti:
			ps.Outcome, ps.Verdict = OutcomeError.String(), def.OnError.Verdict()
			ps.Error = fmt.Sprintf("the query returned %d series; a relative tolerance compares one value: aggregate it (sum, avg) or use a fixed tolerance", len(res.Series))
			return ps
		}
	}
	if refRes.Outcome == OutcomeValue {
		ref.Value = Num(refRes.Value)
	}
	if a.value.Outcome != OutcomeValue || refRes.Outcome != OutcomeValue {
		ps.Outcome, ps.Verdict = OutcomeNoData.String(), def.OnNoData.Verdict()
		if a.value.Outcome == OutcomeValue {
			ps.Value = Num(a.value.Value)
			ps.Error = "no " + ref.Mode + " value to compare with"
			if r.Baseline != nil {
				ps.Error = "no baseline: the query had no data over " + slo.FormatDuration(r.Baseline.Window) + " before " + ref.To.UTC().Format(time.RFC3339)
			}
		}
		return ps
	}
	ps.judged(a.value.Value, r.Holds(a.value.Value, refRes.Value))
	return ps
}

// testProbe judges a control-vs-experiment probe with a statistical test
// on the per-step samples of both groups. Too few samples or too little
// evidence either way is unknown, never a pass.
func testProbe(def *slo.Hypothesis, p *slo.Probe, a probeAnswers) ProbeStatus {
	r := p.Relative
	ps := newProbeStatus(p)
	ref := &ProbeBaseline{Mode: r.Mode(), Value: Num(math.NaN()), From: a.q.samplesFrom, To: a.q.value0(), Frozen: !a.q.runStart.IsZero()}
	ps.Baseline = ref
	if a.samplesErr != nil {
		ps.Outcome, ps.Error, ps.Verdict = OutcomeError.String(), a.samplesErr.Error(), def.OnError.Verdict()
		return ps
	}
	t := stats.FromSpec(r.Test)
	look := 0
	if !a.q.runStart.IsZero() {
		// Looks at growing data during a run: each spends part of the
		// error rate, so the run as a whole keeps to the confidence.
		look = max(1, min(len(a.samples[0]), len(a.samples[1]))-t.MinSamples+1)
	}
	res := t.Decide(a.samples[0], a.samples[1], look)
	ref.Value, ps.Value = Num(res.ControlMedian), Num(res.ExperimentMedian)
	ref.Test = &TestStatus{
		ControlSamples: res.Control, ExperimentSamples: res.Experiment, MinSamples: t.MinSamples,
		PFail: Num(res.PFail), PPass: Num(res.PPass), Alpha: Num(res.Alpha), Decision: string(res.Decision),
	}
	switch res.Decision {
	case stats.Fail:
		ps.Outcome = OutcomeValue.String()
		ps.judged(res.ExperimentMedian, false)
	case stats.Pass:
		ps.Outcome = OutcomeValue.String()
		ps.judged(res.ExperimentMedian, true)
	case stats.TooFew:
		ps.Outcome, ps.Verdict = OutcomeTooFew, slo.Unknown
		ps.Error = fmt.Sprintf("%d control and %d experiment samples, fewer than minSamples %d", res.Control, res.Experiment, t.MinSamples)
	default:
		ps.Outcome, ps.Verdict = OutcomeInconclusive, slo.Unknown
		ps.Error = fmt.Sprintf("no difference of %s shown either way yet (p %s to fail, %s to pass, level %s)",
			strconv.FormatFloat(r.Test.MinEffect*100, 'g', 4, 64)+"%", formatP(res.PFail), formatP(res.PPass), formatP(res.Alpha))
	}
	return ps
}

func formatP(p float64) string { return strconv.FormatFloat(p, 'g', 3, 64) }

// value0 is the end of the samples: the plan's time of the range queries.
func (pq *probeQueries) value0() time.Time {
	if pq.experimentRange != nil {
		return pq.experimentRange.rng.End
	}
	return pq.samplesFrom
}

// Outcomes of probes besides the query outcomes.
const (
	OutcomeLowTraffic   = "low traffic"
	OutcomeTooFew       = "too few samples"
	OutcomeInconclusive = "inconclusive"
)

// lowTraffic judges the low-traffic guard of a query probe: ok is false
// when the probe must not be judged on its value (too few events, or the
// events could not be counted), with the status to publish instead.
func lowTraffic(def *slo.Hypothesis, p *slo.Probe, a probeAnswers) (ProbeStatus, bool) {
	if !a.hasEvents || p.MinEvents <= 0 {
		return ProbeStatus{}, true
	}
	ps := newProbeStatus(p)
	ev := a.events
	switch ev.Outcome {
	case OutcomeError:
		ps.Outcome, ps.Error, ps.Verdict = OutcomeError.String(), "counting events: "+ev.Err.Error(), def.OnError.Verdict()
		return ps, false
	case OutcomeMulti:
		ps.Outcome, ps.Verdict = OutcomeError.String(), def.OnError.Verdict()
		ps.Error = fmt.Sprintf("events: the query returned %d series; it must count all the probe's events in one (sum)", len(ev.Series))
		return ps, false
	case OutcomeValue:
		if ev.Value >= p.MinEvents {
			return ProbeStatus{}, true
		}
		ps.Events = numPtr(ev.Value)
	default:
		ps.Events = numPtr(0) // no series: nothing happened
	}
	ps.Outcome, ps.Verdict = OutcomeLowTraffic, def.OnLowTraffic.Verdict()
	ps.Error = fmt.Sprintf("%s events, fewer than minEvents %s: too little traffic to judge (onLowTraffic: %s)",
		eventCount(float64(*ps.Events)), formatFloat(p.MinEvents), def.OnLowTraffic.Verdict())
	return ps, false
}

// eventCount prints a count of events as people count them: increase()
// extrapolates, and 600.0000000010089 events is 600.
func eventCount(v float64) string { return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) }

func numPtr(v float64) *Num { n := Num(v); return &n }
