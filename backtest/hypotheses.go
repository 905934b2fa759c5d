package backtest

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/slo"
)

// judgement is one probe at one step, before debouncing.
type judgement struct {
	verdict slo.Verdict
	// what says why, e.g. "error-rate = 0.031 not < 0.01" or
	// "error-rate: no data".
	what string
}

// hypothesis replays a hypothesis step by step: every probe is judged at
// every step, the raw verdict is fail if a probe fails, else unknown if a
// probe is unknown, else pass, and the verdict follows it after failAfter
// (passAfter) steps in a row, as in the evaluator. A probe with a
// low-traffic guard is judged by onLowTraffic where it counted fewer
// events than its minEvents; such a hypothesis is replayed a second time
// without the guards, to report what they changed.
func (r *run) hypothesis(ctx context.Context, set *slo.Set, h *slo.Hypothesis) (HypothesisReport, error) {
	rep := HypothesisReport{Name: h.Name, Changes: []Change{}}
	plain := make([][]judgement, len(h.Probes))
	guarded := make([][]judgement, len(h.Probes))
	minEvents := map[string]float64{}
	for i, p := range h.Probes {
		var guard []judgement
		var err error
		if p.SLO != "" {
			plain[i], guard, err = r.sloProbe(ctx, set, h, p)
		} else {
			if plain[i], err = r.queryProbe(ctx, h, p); err == nil {
				guard, err = r.eventsGuard(ctx, h, p)
			}
		}
		if err != nil {
			return rep, err
		}
		guarded[i] = plain[i]
		if p.MinEvents > 0 {
			minEvents[p.Name] = p.MinEvents
			guarded[i] = overlay(plain[i], guard)
		}
	}
	rep.Changes = r.verdicts(h, guarded)
	if len(minEvents) > 0 {
		rep.LowTraffic = diffChanges(r.verdicts(h, plain), rep.Changes)
		rep.LowTraffic.MinEvents = minEvents
	}
	return rep, nil
}

// verdicts debounces the raw verdicts of the probes' judgements into the
// changes of the hypothesis' verdict.
func (r *run) verdicts(h *slo.Hypothesis, probes [][]judgement) []Change {
	out := []Change{}
	var d slo.Debounce
	for k := 0; k < r.steps; k++ {
		step := make([]slo.Verdict, len(probes))
		for i, js := range probes {
			step[i] = js[k].verdict
		}
		raw := slo.Worst(step...)
		from := d.Verdict
		if from == "" {
			from = slo.Unknown
		}
		if d.Observe(raw, r.at(k), h.FailAfter, h.PassAfter) {
			out = append(out, Change{At: r.at(k), From: from, To: d.Verdict, Reason: reason(probes, k, raw)})
		}
	}
	return out
}

// overlay is js with the steps where guard judged (a low-traffic step, or
// events that could not be counted) replaced by guard's judgement.
func overlay(js, guard []judgement) []judgement {
	out := make([]judgement, len(js))
	for k := range js {
		out[k] = js[k]
		if guard != nil && guard[k].verdict != "" {
			out[k] = guard[k]
		}
	}
	return out
}

// lowTrafficText says why a probe was judged by onLowTraffic, as the
// evaluator says it.
func lowTrafficText(h *slo.Hypothesis, events, minEvents float64) string {
	return fmt.Sprintf("%s events, fewer than minEvents %s: too little traffic to judge (onLowTraffic: %s)",
		formatCount(events), formatCount(minEvents), h.OnLowTraffic.Verdict())
}

// formatCount prints a number of events, to two decimals at most: counts
// from rates are fractional, and 12345 reads better than 1.234e+04.
func formatCount(v float64) string { return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) }

// eventsGuard judges the low-traffic guard of a query probe at every step
// from its events query: onLowTraffic below minEvents (no series or NaN is
// no events), onError when the query gives several series; a zero
// judgement where the probe is judged on its value. Nil without a guard.
func (r *run) eventsGuard(ctx context.Context, h *slo.Hypothesis, p *slo.Probe) ([]judgement, error) {
	if p.Events == "" || p.MinEvents <= 0 {
		return nil, nil
	}
	ss, err := r.query(ctx, p.Events, fmt.Sprintf("hypothesis %s, probe %s, events", h.Name, p.Name))
	if err != nil {
		return nil, err
	}
	out := make([]judgement, r.steps)
	for k := range out {
		present := presentAt(ss, k)
		events := 0.0
		switch {
		case len(present) > 1:
			out[k] = judgement{h.OnError.Verdict(), fmt.Sprintf("%s: events: the query returned %d series; it must count all the probe's events in one (sum)", p.Name, len(present))}
			continue
		case len(present) == 1 && !math.IsNaN(present[0].v[k]):
			events = present[0].v[k]
		}
		if events < p.MinEvents {
			out[k] = judgement{h.OnLowTraffic.Verdict(), p.Name + ": " + lowTrafficText(h, events, p.MinEvents)}
		}
	}
	return out, nil
}

// presentAt are the series of ss with a point at step k.
func presentAt(ss []series, k int) []series {
	var out []series
	for _, s := range ss {
		if s.ok[k] {
			out = append(out, s)
		}
	}
	return out
}

// reason lists the probes that made the raw verdict of step k: the failing
// ones for fail, the unknown ones for unknown, all of them for pass.
func reason(probes [][]judgement, k int, raw slo.Verdict) string {
	var parts []string
	for _, js := range probes {
		if raw == slo.Pass || js[k].verdict == raw {
			parts = append(parts, js[k].what)
		}
	}
	return strings.Join(parts, "; ")
}

// judge compares a value with a tolerance.
func judge(name string, v float64, tol *slo.Tolerance) judgement {
	if tol.Holds(v) {
		return judgement{slo.Pass, fmt.Sprintf("%s = %s %s", name, formatValue(v), tol)}
	}
	return judgement{slo.Fail, fmt.Sprintf("%s = %s not %s", name, formatValue(v), tol)}
}

// queryProbe judges a PromQL probe at every step. No series and NaN are
// no data (onNoData); several series follow the hypothesis' series policy.
// A relative tolerance is judged by relativeProbe or testProbe.
func (r *run) queryProbe(ctx context.Context, h *slo.Hypothesis, p *slo.Probe) ([]judgement, error) {
	switch {
	case p.Relative != nil && p.Relative.Test != nil:
		return r.testProbe(ctx, h, p)
	case p.Relative != nil:
		return r.relativeProbe(ctx, h, p)
	}
	ss, err := r.query(ctx, p.Query, fmt.Sprintf("hypothesis %s, probe %s", h.Name, p.Name))
	if err != nil {
		return nil, err
	}
	noData := h.OnNoData.Verdict()
	out := make([]judgement, r.steps)
	for k := range out {
		present := presentAt(ss, k)
		switch {
		case len(present) == 0:
			out[k] = judgement{noData, p.Name + ": no data"}
		case len(present) == 1 && math.IsNaN(present[0].v[k]):
			out[k] = judgement{noData, p.Name + ": NaN"}
		case len(present) == 1:
			out[k] = judge(p.Name, present[0].v[k], p.Tolerance)
		default:
			out[k] = judgeSeries(p, h, present, k)
		}
	}
	return out, nil
}

// judgeSeries applies the hypothesis' series policy (slo.JudgeSeries), as
// the evaluator does.
func judgeSeries(p *slo.Probe, h *slo.Hypothesis, ss []series, k int) judgement {
	values := make([]float64, len(ss))
	for i, s := range ss {
		values[i] = s.v[k]
	}
	i, holds, ok := h.JudgeSeries(values, p.Tolerance)
	if !ok {
		return judgement{h.OnNoData.Verdict(), fmt.Sprintf("%s: %d series, some NaN", p.Name, len(ss))}
	}
	j := judge(p.Name+labelString(ss[i].labels), values[i], p.Tolerance)
	if holds == (h.Series != slo.SeriesAny) {
		// No value decided: the first stands for all of them.
		j.what += fmt.Sprintf(" (%d series)", len(ss))
	}
	return j
}

func labelString(m model.Metric) string {
	ls := model.LabelSet(m).Clone()
	delete(ls, model.MetricNameLabel)
	return ls.String()
}

// sloProbe judges a probe on an SLO's budget remaining and burn rate. Where
// the SLO's window has no data the probe follows onNoData. With minEvents,
// guard is onLowTraffic where the window the probe reads counted fewer
// events (a window without any data is left to onNoData).
func (r *run) sloProbe(ctx context.Context, set *slo.Set, h *slo.Hypothesis, p *slo.Probe) (js, guard []judgement, err error) {
	o := set.SLO(p.SLO)
	if o == nil {
		return nil, nil, fmt.Errorf("hypothesis %q: probe %q: SLO %q is not defined", h.Name, p.Name, p.SLO)
	}
	budget := o.ErrorBudget()
	var full, burnWin points
	if p.BudgetRemaining != nil {
		if full, err = r.sloRatio(ctx, o); err != nil {
			return nil, nil, err
		}
	}
	if p.BurnRate != nil {
		get := func() (points, error) { return r.ratio(ctx, o, p.BurnRate.Window) }
		if p.BurnRate.Window == o.Window {
			get = func() (points, error) { return r.sloRatio(ctx, o) } // a calendar SLO's period so far
		}
		if burnWin, err = get(); err != nil {
			return nil, nil, err
		}
	}
	if p.MinEvents > 0 {
		events, err := r.events(ctx, o)
		if err != nil {
			return nil, nil, err
		}
		w := probeWindow(o, p)
		guard = make([]judgement, r.steps)
		for k := range guard {
			if n, ok := events.over(k, w); ok && n < p.MinEvents {
				guard[k] = judgement{h.OnLowTraffic.Verdict(), fmt.Sprintf("%s: SLO %s counted %s events over %s, fewer than minEvents %s: too little traffic to judge (onLowTraffic: %s)",
					p.Name, o.Name, formatCount(n), model.Duration(w), formatCount(p.MinEvents), h.OnLowTraffic.Verdict())}
			}
		}
	}
	noData := h.OnNoData.Verdict()
	js = make([]judgement, r.steps)
	for k := range js {
		verdict := slo.Pass
		var parts []string
		missing := false
		if p.BudgetRemaining != nil {
			b, ok := budgetRemaining(full, k, budget)
			if !ok {
				missing = true
			} else {
				j := judge("budget remaining", b, p.BudgetRemaining)
				parts = append(parts, j.what)
				if j.verdict == slo.Fail {
					verdict = slo.Fail
				}
			}
		}
		if p.BurnRate != nil {
			b, ok := burnRate(burnWin, k, budget)
			if !ok {
				missing = true
			} else {
				below := &slo.Tolerance{Op: slo.OpLT, Value: p.BurnRate.Below}
				j := judge("burn rate over "+model.Duration(p.BurnRate.Window).String(), b, below)
				parts = append(parts, j.what)
				if j.verdict == slo.Fail {
					verdict = slo.Fail
				}
			}
		}
		if missing {
			js[k] = judgement{noData, p.Name + ": no data for SLO " + o.Name}
			continue
		}
		js[k] = judgement{verdict, p.Name + ": " + strings.Join(parts, ", ")}
	}
	return js, guard, nil
}
