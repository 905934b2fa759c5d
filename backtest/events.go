package backtest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/rules"
	"github.com/slogate/slogate/slo"
)

// Low-traffic guards (minEvents) read how many events a window counted:
// the SLO's total events over it, what the evaluator sums from its slices.
// The ratio queries give a ratio only, and asking the total over every
// guarded window as well would cost as much again as those windows'
// ratios (Prometheus reads a window of samples per point). So the total
// events of each step are asked once per SLO, reaching back the longest
// guarded window, and a window's events are the sum of its steps, as the
// evaluator's are the sum of its slices. Calendar and time-slice SLOs have
// these counts already (counts): their guards cost no query. A window that
// is not a multiple of the step cannot be made of steps and is asked
// directly (rules.EventQueries over the window).

// eventWindows are, by SLO, the windows whose events a low-traffic guard
// reads: the long windows of its guarded alert tiers, and the window each
// guarded SLO probe reads.
func eventWindows(set *slo.Set) map[string][]time.Duration {
	out := map[string][]time.Duration{}
	add := func(name string, w time.Duration) {
		if !slices.Contains(out[name], w) {
			out[name] = append(out[name], w)
		}
	}
	for _, o := range set.SLOs {
		for _, sev := range slo.Severities {
			if !o.TierEnabled(sev) || o.AlertTierOf(sev).MinEvents <= 0 {
				continue
			}
			for _, t := range o.Tiers() {
				if t.Severity == sev {
					add(o.Name, t.Long)
				}
			}
		}
	}
	for _, h := range set.Hypotheses {
		for _, p := range h.Probes {
			if o := set.SLO(p.SLO); o != nil && p.MinEvents > 0 {
				add(o.Name, probeWindow(o, p))
			}
		}
	}
	for _, ws := range out {
		slices.Sort(ws)
	}
	return out
}

// probeWindow is the window an SLO probe reads, whose events its guard
// counts: its burn-rate window, else the SLO's (as in the evaluator).
func probeWindow(o *slo.SLO, p *slo.Probe) time.Duration {
	if p.BurnRate != nil {
		return p.BurnRate.Window
	}
	return o.Window
}

// eventPlan is how the events of an SLO's guarded windows are had.
type eventPlan struct {
	// summed windows are sums of the events of each step, which reach
	// back lead steps before the backtest.
	summed []time.Duration
	lead   int
	// fromCounts: the events of each step are the SLO's counts, asked
	// anyway for its calendar period or time slices.
	fromCounts bool
	// direct windows are not a multiple of the step: asked as they are.
	direct []time.Duration
}

func (r *run) eventPlan(o *slo.SLO) eventPlan {
	pl := eventPlan{fromCounts: o.Calendar != nil || o.Timeslices != nil}
	for _, w := range r.eventWins[o.Name] {
		switch {
		case o.Calendar != nil && w == o.Window:
			// The period so far, from the counts.
		case w%r.opts.Step == 0:
			pl.summed = append(pl.summed, w)
			pl.lead = max(pl.lead, int(w/r.opts.Step))
		default:
			pl.direct = append(pl.direct, w)
		}
	}
	if pl.fromCounts {
		pl.lead = r.countsLead(o)
	}
	return pl
}

// windowEvents are an SLO's events over its guarded windows at every step.
type windowEvents struct {
	step time.Duration
	// lead, sum and seen are prefix sums over the steps of the grid
	// extended lead steps back: sum[j] the total events of the steps
	// before j, seen[j] how many of them had data.
	lead int
	sum  []float64
	seen []int
	// period is a calendar SLO's events over its period so far, read for
	// its window (periodWindow).
	period       points
	periodWindow time.Duration
	direct       map[time.Duration]points
}

// over is the number of events over w ending at step k; ok is false when
// no part of the window had data (nothing measured, as opposed to nothing
// happening).
func (e *windowEvents) over(k int, w time.Duration) (float64, bool) {
	if e.periodWindow > 0 && w == e.periodWindow {
		return e.period.v[k], e.period.ok[k]
	}
	if p, ok := e.direct[w]; ok {
		if !p.ok[k] || math.IsNaN(p.v[k]) {
			return 0, false
		}
		return p.v[k], true
	}
	if e.sum == nil {
		return 0, false
	}
	hi := e.lead + k + 1
	lo := max(hi-int(w/e.step), 0)
	return e.sum[hi] - e.sum[lo], e.seen[hi] > e.seen[lo]
}

// reader is over as an slo.EventReader at step k: a window without data
// counts no events.
func (e *windowEvents) reader(k int) slo.EventReader {
	return func(w time.Duration) float64 {
		v, _ := e.over(k, w)
		return v
	}
}

// events fetches the events of o's guarded windows (eventPlan), once.
func (r *run) events(ctx context.Context, o *slo.SLO) (*windowEvents, error) {
	if e, ok := r.windowEvents[o.Name]; ok {
		return e, nil
	}
	pl := r.eventPlan(o)
	e := &windowEvents{step: r.opts.Step, lead: pl.lead, direct: map[time.Duration]points{}}
	var total points
	switch {
	case pl.fromCounts:
		c, err := r.counts(ctx, o)
		if err != nil {
			return nil, err
		}
		total = c.total
		if o.Calendar != nil {
			e.period, e.periodWindow = r.periodEvents(o, c), o.Window
		}
	case len(pl.summed) > 0:
		_, totalQ, err := rules.EventQueries(o, r.opts.Step)
		if err != nil {
			return nil, fmt.Errorf("slo %q: %w", o.Name, err)
		}
		start, n := r.from.Add(-time.Duration(pl.lead)*r.opts.Step), pl.lead+r.steps
		ss, err := r.queryGrid(ctx, totalQ, fmt.Sprintf("slo %s, total events by step", o.Name), start, r.opts.Step, n)
		if err != nil {
			return nil, err
		}
		total = newPoints(n)
		if len(ss) > 0 {
			total = ss[0].points
		}
	}
	if n := len(total.v); n > 0 {
		e.sum, e.seen = make([]float64, n+1), make([]int, n+1)
		for j := range n {
			e.sum[j+1], e.seen[j+1] = e.sum[j], e.seen[j]
			// A step without a total, or a NaN one, had no events.
			if total.ok[j] && !math.IsNaN(total.v[j]) {
				e.sum[j+1] += total.v[j]
				e.seen[j+1]++
			}
		}
	}
	for _, w := range pl.direct {
		_, totalQ, err := rules.EventQueries(o, w)
		if err != nil {
			return nil, fmt.Errorf("slo %q: %w", o.Name, err)
		}
		ss, err := r.query(ctx, totalQ, fmt.Sprintf("slo %s, total events over %s", o.Name, model.Duration(w)))
		if err != nil {
			return nil, err
		}
		p := newPoints(r.steps)
		if len(ss) > 0 {
			p = ss[0].points
		}
		e.direct[w] = p
	}
	r.windowEvents[o.Name] = e
	return e, nil
}

// periodEvents are a calendar SLO's events over its period so far at
// every step, counted like periodRatio counts them.
func (r *run) periodEvents(o *slo.SLO, c *stepCounts) points {
	out := newPoints(r.steps)
	var total float64
	var current time.Time
	seen := false
	for j := range c.lead + r.steps {
		if p, _ := o.Calendar.Period(c.at(r, j)); !p.Equal(current) {
			current, total, seen = p, 0, false
		}
		if c.total.ok[j] && !math.IsNaN(c.total.v[j]) {
			total += c.total.v[j]
			seen = true
		}
		if k := j - c.lead; k >= 0 {
			out.v[k], out.ok[k] = total, seen
		}
	}
	return out
}
