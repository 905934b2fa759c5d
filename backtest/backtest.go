// Package backtest evaluates definitions over history: what the burn-rate
// alerts of each SLO and the verdicts of each hypothesis would have been,
// step by step, had slogate been running then. It asks Prometheus range
// queries only, so it works on any stretch of retained history.
//
// The arithmetic is the evaluator's (and the generated rules'): an SLO
// window's error ratio is the query rules.ErrorRatioQuery builds, alerts
// follow slo.BurnTiers and the low-traffic guard of slo.CheckTiersGuarded,
// probes are judged with their tolerance (fixed, or relative to a trailing
// baseline or a control group), series policy, onNoData, minEvents and
// failAfter/passAfter. Where a guard (minEvents) is set, the alerts and
// verdicts are replayed without it too, and the report says what it
// removed (lowtraffic.go). Two things differ by nature:
// the resolution is the step (an alert that fired at 14:03 shows up at the
// next step), and a query that fails aborts the backtest instead of being
// judged with onError, because an error now says nothing about the past.
package backtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/query"
	"github.com/slogate/slogate/rules"
	"github.com/slogate/slogate/slo"
)

// Querier is what a backtest needs from Prometheus. The evaluator's
// HTTP client (evaluator/promapi) implements it.
type Querier interface {
	QueryRange(ctx context.Context, query string, r query.Range) (model.Value, error)
}

// MaxPoints is the most steps one range query asks for. Prometheus refuses
// more than 11,000 points per series; longer ranges are split.
const MaxPoints = 10000

// DefaultStep is the resolution of a backtest unless told otherwise.
const DefaultStep = 5 * time.Minute

// Options configure Run.
type Options struct {
	Querier Querier
	// From and To bound the backtest; From is rounded down to a multiple
	// of Step so that steps fall on round times, and the last step is the
	// last one not after To.
	From, To time.Time
	Step     time.Duration // default DefaultStep
	// MaxPoints overrides the package's MaxPoints (tests).
	MaxPoints int
	// Progress, if set, is called after every range query with the number
	// of queries done, their total and what was asked.
	Progress func(done, total int, what string)
}

// Report is the outcome of a backtest.
type Report struct {
	From       time.Time          `json:"from"`
	To         time.Time          `json:"to"`
	Step       string             `json:"step"`
	SLOs       []SLOReport        `json:"slos"`
	Hypotheses []HypothesisReport `json:"hypotheses"`
}

// SLOReport is what an SLO went through.
type SLOReport struct {
	Name    string `json:"name"`
	Service string `json:"service"`
	// BudgetRemainingAtEnd is the error budget remaining over the SLO
	// window at the last step; NaN (null in JSON) without data.
	BudgetRemainingAtEnd api.Num `json:"budgetRemainingAtEnd"`
	// Alerts are the burn-rate alerts that would have fired, in time order.
	Alerts []Alert `json:"alerts"`
	// LowTraffic is what the SLO's low-traffic guard (minEvents) changed;
	// absent without a guard.
	LowTraffic *LowTraffic `json:"lowTraffic,omitempty"`
}

// Alert is one firing interval of a burn-rate alert tier.
type Alert struct {
	Severity slo.Severity `json:"severity"`
	FiredAt  time.Time    `json:"firedAt"`
	// ResolvedAt is nil while the alert still fires at the last step.
	ResolvedAt *time.Time `json:"resolvedAt"`
	// Condition is the first tier condition that held when it fired.
	Condition string `json:"condition"`
}

// HypothesisReport is the verdict timeline of a hypothesis.
type HypothesisReport struct {
	Name    string   `json:"name"`
	Changes []Change `json:"changes"`
	// LowTraffic is what the low-traffic guards (minEvents) of its probes
	// changed; absent when none has one.
	LowTraffic *HypothesisLowTraffic `json:"lowTraffic,omitempty"`
}

// Change is a change of a hypothesis' debounced verdict. The first change
// leaves unknown, the verdict of a hypothesis never evaluated.
type Change struct {
	At     time.Time   `json:"at"`
	From   slo.Verdict `json:"from"`
	To     slo.Verdict `json:"to"`
	Reason string      `json:"reason"`
}

// Run backtests the SLOs and hypotheses of set. Experiments have no
// history of their own and are left out.
func Run(ctx context.Context, set *slo.Set, opts Options) (*Report, error) {
	if opts.Querier == nil {
		return nil, errors.New("backtest: a Querier is required")
	}
	if opts.Step <= 0 {
		opts.Step = DefaultStep
	}
	if opts.MaxPoints <= 0 {
		opts.MaxPoints = MaxPoints
	}
	from := opts.From.Truncate(opts.Step)
	if !opts.To.After(from) {
		return nil, fmt.Errorf("backtest: the end %s is not after the start %s", opts.To.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	steps := int(opts.To.Sub(from)/opts.Step) + 1
	r := &run{opts: opts, from: from, steps: steps}
	r.plan(set)

	rep := &Report{From: from, To: r.at(steps - 1), Step: model.Duration(opts.Step).String(),
		SLOs: []SLOReport{}, Hypotheses: []HypothesisReport{}}
	for _, o := range set.SLOs {
		sr, err := r.slo(ctx, o)
		if err != nil {
			return nil, err
		}
		rep.SLOs = append(rep.SLOs, sr)
	}
	for _, h := range set.Hypotheses {
		hr, err := r.hypothesis(ctx, set, h)
		if err != nil {
			return nil, err
		}
		rep.Hypotheses = append(rep.Hypotheses, hr)
	}
	return rep, nil
}

// run is one backtest in progress.
type run struct {
	opts  Options
	from  time.Time
	steps int

	total, done int
	// ratios caches the error ratio series of SLO windows, which both the
	// SLO and the SLO probes of hypotheses read.
	ratios     map[ratioKey]points
	stepCounts map[string]*stepCounts // events by step of calendar and time-slice SLOs
	// eventWins are the windows whose events the low-traffic guards of
	// each SLO read (its alert tiers', its SLO probes'); windowEvents
	// caches them.
	eventWins    map[string][]time.Duration
	windowEvents map[string]*windowEvents
}

type ratioKey struct {
	slo    string
	window time.Duration
}

func (r *run) at(k int) time.Time { return r.from.Add(time.Duration(k) * r.opts.Step) }

// chunks is how many range queries one series over the backtest takes.
func (r *run) chunks() int { return r.chunksOf(r.steps) }

// chunksOf is how many range queries a series of n points takes.
func (r *run) chunksOf(n int) int { return (n + r.opts.MaxPoints - 1) / r.opts.MaxPoints }

// plan counts the range queries ahead, for the progress report, and which
// windows' events the low-traffic guards read.
func (r *run) plan(set *slo.Set) {
	r.ratios, r.stepCounts = map[ratioKey]points{}, map[string]*stepCounts{}
	r.eventWins, r.windowEvents = eventWindows(set), map[string]*windowEvents{}
	windows := map[ratioKey]bool{}
	queries := 0 // series over the backtest's steps
	other := 0   // range queries of series on other grids
	for _, o := range set.SLOs {
		if o.Calendar != nil || o.Timeslices != nil {
			other += 2 * r.chunksOf(r.countsLead(o)+r.steps) // its events step by step (counts), read by every window
		}
		pl := r.eventPlan(o)
		queries += len(pl.direct)
		if len(pl.summed) > 0 && !pl.fromCounts {
			other += r.chunksOf(pl.lead + r.steps) // its total events step by step
		}
		if o.Timeslices != nil {
			continue
		}
		for _, w := range sloWindows(o) {
			windows[ratioKey{o.Name, w}] = true
		}
	}
	queries += len(windows)
	for _, h := range set.Hypotheses {
		for _, p := range h.Probes {
			switch {
			case p.SLO != "":
				if p.BurnRate != nil && !windows[ratioKey{p.SLO, p.BurnRate.Window}] {
					windows[ratioKey{p.SLO, p.BurnRate.Window}] = true
					queries++
				}
				continue
			case p.Relative == nil:
				queries++
			case p.Relative.Test != nil:
				other += 2 * r.chunksOf(r.sampleGrid(p.Relative.Compare).n)
			default:
				queries += 2 // the value and its baseline, or both groups
			}
			if p.Events != "" && p.MinEvents > 0 {
				queries++
			}
		}
	}
	r.total = queries*r.chunks() + other
}

// sloWindows are the rolling windows an SLO's alerts and budget read: a
// calendar SLO's period so far is read by periodRatio instead.
func sloWindows(o *slo.SLO) []time.Duration {
	seen := map[time.Duration]bool{o.Window: true}
	out := []time.Duration{o.Window}
	if o.Calendar != nil {
		seen, out = map[time.Duration]bool{o.Window: true}, nil
	}
	for _, t := range o.Tiers() {
		for _, w := range []time.Duration{t.Long, t.Short} {
			if !seen[w] {
				seen[w] = true
				out = append(out, w)
			}
		}
	}
	return out
}

// points are the values of a series by step; ok is false where the
// series had no point. A point may hold NaN (0/0), which is not the same
// as no point.
type points struct {
	v  []float64
	ok []bool
}

func newPoints(n int) points { return points{v: make([]float64, n), ok: make([]bool, n)} }

// series is one series of a range answer.
type series struct {
	labels model.Metric
	points
}

// query runs a range query over the backtest, split into chunks of at most
// MaxPoints steps.
func (r *run) query(ctx context.Context, q, what string) ([]series, error) {
	return r.queryGrid(ctx, q, what, r.from, r.opts.Step, r.steps)
}

// queryGrid runs a range query over n points step apart from start, split
// into chunks of at most MaxPoints points.
func (r *run) queryGrid(ctx context.Context, q, what string, start time.Time, step time.Duration, n int) ([]series, error) {
	at := func(k int) time.Time { return start.Add(time.Duration(k) * step) }
	byKey := map[model.Fingerprint]*series{}
	var order []model.Fingerprint
	for first := 0; first < n; first += r.opts.MaxPoints {
		last := min(first+r.opts.MaxPoints, n) - 1
		v, err := r.opts.Querier.QueryRange(ctx, q, query.Range{Start: at(first), End: at(last), Step: step})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		m, ok := v.(model.Matrix)
		if !ok && v != nil {
			return nil, fmt.Errorf("%s: query %q: expected a matrix, got %s", what, q, v.Type())
		}
		for _, s := range m {
			fp := s.Metric.Fingerprint()
			ser, ok := byKey[fp]
			if !ok {
				ser = &series{labels: s.Metric, points: newPoints(n)}
				byKey[fp] = ser
				order = append(order, fp)
			}
			for _, p := range s.Values {
				if k, ok := stepOf(start, step, n, p.Timestamp.Time()); ok {
					ser.v[k], ser.ok[k] = float64(p.Value), true
				}
			}
		}
		r.done++
		if r.opts.Progress != nil {
			r.opts.Progress(r.done, r.total, what)
		}
	}
	out := make([]series, 0, len(order))
	for _, fp := range order {
		out = append(out, *byKey[fp])
	}
	// Label order, as the evaluator sorts series: the first series within
	// or out of tolerance does not depend on the backend's order.
	sort.Slice(out, func(i, j int) bool { return out[i].labels.Before(out[j].labels) })
	return out, nil
}

// stepOf maps a point's timestamp to its step of the n from start,
// tolerating the rounding of timestamps to milliseconds.
func stepOf(start time.Time, step time.Duration, n int, ts time.Time) (int, bool) {
	d := ts.Sub(start)
	k := int((d + step/2) / step)
	if d < -step/2 || k >= n {
		return 0, false
	}
	return k, true
}

// sloRatio is the error ratio over the SLO window at every step: over
// the rolling window, or a calendar SLO's period so far.
func (r *run) sloRatio(ctx context.Context, o *slo.SLO) (points, error) {
	if o.Calendar != nil {
		return r.periodRatio(ctx, o)
	}
	return r.ratio(ctx, o, o.Window)
}

// stepCounts are an SLO's bad and total events in each step (the events
// in the step before each step's time), on the backtest's grid extended
// lead steps before its first step, far enough back for the SLO's longest
// window; asked once per SLO.
type stepCounts struct {
	lead       int
	bad, total points
}

func (r *run) counts(ctx context.Context, o *slo.SLO) (*stepCounts, error) {
	if c, ok := r.stepCounts[o.Name]; ok {
		return c, nil
	}
	badQ, totalQ, err := rules.EventQueries(o, r.opts.Step)
	if err != nil {
		return nil, fmt.Errorf("slo %q: %w", o.Name, err)
	}
	lead := r.countsLead(o)
	start, n := r.from.Add(-time.Duration(lead)*r.opts.Step), lead+r.steps
	c := &stepCounts{lead: lead}
	for i, q := range []string{badQ, totalQ} {
		ss, err := r.queryGrid(ctx, q, fmt.Sprintf("slo %s, events by step", o.Name), start, r.opts.Step, n)
		if err != nil {
			return nil, err
		}
		p := newPoints(n)
		if len(ss) > 0 {
			p = ss[0].points
		}
		if i == 0 {
			c.bad = p
		} else {
			c.total = p
		}
	}
	r.stepCounts[o.Name] = c
	return c, nil
}

// countsLead is how many steps before the backtest an SLO's counts reach:
// its window, or its longest alert window if longer.
func (r *run) countsLead(o *slo.SLO) int {
	span := o.Window
	for _, t := range o.Tiers() {
		span = max(span, t.Long)
	}
	return int((span + r.opts.Step - 1) / r.opts.Step)
}

// at is the time of step j of the extended grid.
func (c *stepCounts) at(r *run, j int) time.Time {
	return r.from.Add(time.Duration(j-c.lead) * r.opts.Step)
}

// periodRatio is a calendar SLO's error ratio over its period so far at
// every step: the events of each step summed from the period's start and
// started afresh at each period. A step is counted in the period its end
// falls in, so a period that does not start on a step boundary is off by
// part of one step.
func (r *run) periodRatio(ctx context.Context, o *slo.SLO) (points, error) {
	key := ratioKey{o.Name, o.Window}
	if p, ok := r.ratios[key]; ok {
		return p, nil
	}
	c, err := r.counts(ctx, o)
	if err != nil {
		return points{}, err
	}
	out := newPoints(r.steps)
	var bad, total float64
	var current time.Time
	seen := false // a step of the period so far had a total
	for j := range c.lead + r.steps {
		if p, _ := o.Calendar.Period(c.at(r, j)); !p.Equal(current) {
			current, bad, total, seen = p, 0, 0, false
		}
		// A step without a total (a scrape gap, no traffic) has no
		// events, as the evaluator counts a slice without data; without
		// a bad series, no bad events.
		if c.total.ok[j] {
			bad += c.bad.v[j]
			total += c.total.v[j]
			seen = true
		}
		if k := j - c.lead; k >= 0 {
			out.v[k], out.ok[k] = bad/total, seen // 0/0 is NaN: no traffic yet
		}
	}
	r.ratios[key] = out
	return out, nil
}

// slidingRatio is the error ratio over the rolling window w at every step,
// from the events of each step (counts): for time-slice SLOs, whose window
// as one range query would be a subquery at the slice resolution over the
// whole window at every step.
func (r *run) slidingRatio(ctx context.Context, o *slo.SLO, w time.Duration) (points, error) {
	key := ratioKey{o.Name, w}
	if p, ok := r.ratios[key]; ok {
		return p, nil
	}
	c, err := r.counts(ctx, o)
	if err != nil {
		return points{}, err
	}
	n := c.lead + r.steps
	// Prefix sums of the events and of the steps with a total.
	bad, total, seen := make([]float64, n+1), make([]float64, n+1), make([]int, n+1)
	for j := range n {
		bad[j+1], total[j+1], seen[j+1] = bad[j], total[j], seen[j]
		if c.total.ok[j] {
			bad[j+1] += c.bad.v[j]
			total[j+1] += c.total.v[j]
			seen[j+1]++
		}
	}
	width := int(w / r.opts.Step)
	out := newPoints(r.steps)
	for k := range r.steps {
		hi := c.lead + k + 1
		lo := max(hi-width, 0)
		out.v[k], out.ok[k] = (bad[hi]-bad[lo])/(total[hi]-total[lo]), seen[hi] > seen[lo]
	}
	r.ratios[key] = out
	return out, nil
}

// ratio returns the error ratio of o over w at every step. The query is
// summed, so it has one series at most; no series is no data.
func (r *run) ratio(ctx context.Context, o *slo.SLO, w time.Duration) (points, error) {
	if o.Timeslices != nil {
		return r.slidingRatio(ctx, o, w)
	}
	key := ratioKey{o.Name, w}
	if p, ok := r.ratios[key]; ok {
		return p, nil
	}
	q, err := rules.ErrorRatioQuery(o, w)
	if err != nil {
		return points{}, fmt.Errorf("slo %q: %w", o.Name, err)
	}
	ss, err := r.query(ctx, q, fmt.Sprintf("slo %s, window %s", o.Name, model.Duration(w)))
	if err != nil {
		return points{}, err
	}
	p := newPoints(r.steps)
	if len(ss) > 0 {
		p = ss[0].points
	}
	r.ratios[key] = p
	return p, nil
}

// burnRate is the burn rate at step k: the error ratio over the budget. A
// NaN ratio (0/0) had no events and burns nothing, as in the evaluator.
func burnRate(p points, k int, budget float64) (float64, bool) {
	if !p.ok[k] {
		return math.NaN(), false
	}
	if math.IsNaN(p.v[k]) {
		return 0, true
	}
	return p.v[k] / budget, true
}

// budgetRemaining is 1 - burn rate over the SLO window.
func budgetRemaining(p points, k int, budget float64) (float64, bool) {
	b, ok := burnRate(p, k, budget)
	return 1 - b, ok
}

// slo replays the SLO's burn-rate alerts: at every step a severity fires
// when one of its tiers burns faster than its factor over both windows.
// A step where a window has no data and nothing fires keeps the previous
// state, as the evaluator does on a hole, rather than resolving an alert
// on a scrape gap; so does a step where a guarded tier counted fewer
// events than its minEvents. Guarded severities are replayed a second
// time without the guard, to report what it removed.
func (r *run) slo(ctx context.Context, o *slo.SLO) (SLOReport, error) {
	rep := SLOReport{Name: o.Name, Service: o.Service, BudgetRemainingAtEnd: api.Num(math.NaN()), Alerts: []Alert{}}
	ratios := map[time.Duration]points{}
	for _, w := range sloWindows(o) {
		p, err := r.ratio(ctx, o, w)
		if err != nil {
			return rep, err
		}
		ratios[w] = p
	}
	full, err := r.sloRatio(ctx, o)
	if err != nil {
		return rep, err
	}
	budget := o.ErrorBudget()
	if b, ok := budgetRemaining(full, r.steps-1, budget); ok {
		rep.BudgetRemainingAtEnd = api.Num(b)
	}
	var events *windowEvents
	if len(r.eventWins[o.Name]) > 0 {
		if events, err = r.events(ctx, o); err != nil {
			return rep, err
		}
	}
	burn := func(k int) slo.BurnReader {
		return func(w time.Duration) (float64, bool) { return burnRate(ratios[w], k, budget) }
	}
	for _, sev := range slo.Severities {
		if !o.TierEnabled(sev) {
			continue
		}
		minEvents := o.AlertTierOf(sev).MinEvents
		// A calendar period's length sets its factors.
		guarded := r.replay(sev, func(k int) slo.TierCheck {
			var ev slo.EventReader
			if events != nil {
				ev = events.reader(k)
			}
			return slo.CheckTiersGuarded(o.TiersAt(r.at(k)), sev, burn(k), ev, minEvents)
		})
		for _, f := range guarded {
			rep.Alerts = append(rep.Alerts, f.Alert)
		}
		if minEvents <= 0 || events == nil {
			continue
		}
		plain := r.replay(sev, func(k int) slo.TierCheck { return slo.CheckTiers(o.TiersAt(r.at(k)), sev, burn(k)) })
		if rep.LowTraffic == nil {
			rep.LowTraffic = &LowTraffic{MinEvents: map[slo.Severity]float64{}, Removed: []RemovedAlert{}}
		}
		rep.LowTraffic.add(sev, minEvents, removedAlerts(plain, guarded, events))
	}
	sort.SliceStable(rep.Alerts, func(i, j int) bool { return rep.Alerts[i].FiredAt.Before(rep.Alerts[j].FiredAt) })
	return rep, nil
}

// firing is an alert of a replay with the step it fired at and the tier
// that made it fire.
type firing struct {
	Alert
	step int
	tier slo.BurnTier
}

// replay follows the alert state of severity sev through the steps, the
// tiers judged by check.
func (r *run) replay(sev slo.Severity, check func(k int) slo.TierCheck) []firing {
	var out []firing
	var state slo.AlertState
	var open *firing
	for k := 0; k < r.steps; k++ {
		c := check(k)
		state = state.Next(c, true, r.at(k))
		switch {
		case state.Firing && open == nil:
			t := c.Tier
			open = &firing{step: k, tier: t, Alert: Alert{Severity: sev, FiredAt: r.at(k), Condition: fmt.Sprintf("burn rate %s over %s and %s over %s > %s",
				formatValue(c.Long), model.Duration(t.Long), formatValue(c.Short), model.Duration(t.Short), formatValue(t.Factor))}}
		case !state.Firing && open != nil:
			at := r.at(k)
			open.ResolvedAt = &at
			out = append(out, *open)
			open = nil
		}
	}
	if open != nil {
		out = append(out, *open)
	}
	return out
}

// formatValue prints a measured value with four significant digits.
func formatValue(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
