package backtest

import (
	"context"
	"fmt"
	"math"
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
// (passAfter) steps in a row, as in the evaluator.
func (r *run) hypothesis(ctx context.Context, set *slo.Set, h *slo.Hypothesis) (HypothesisReport, error) {
	rep := HypothesisReport{Name: h.Name, Changes: []Change{}}
	probes := make([][]judgement, len(h.Probes))
	for i, p := range h.Probes {
		var err error
		if p.SLO != "" {
			probes[i], err = r.sloProbe(ctx, set, h, p)
		} else {
			probes[i], err = r.queryProbe(ctx, h, p)
		}
		if err != nil {
			return rep, err
		}
	}
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
			rep.Changes = append(rep.Changes, Change{At: r.at(k), From: from, To: d.Verdict, Reason: reason(probes, k, raw)})
		}
	}
	return rep, nil
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
func (r *run) queryProbe(ctx context.Context, h *slo.Hypothesis, p *slo.Probe) ([]judgement, error) {
	ss, err := r.query(ctx, p.Query, fmt.Sprintf("hypothesis %s, probe %s", h.Name, p.Name))
	if err != nil {
		return nil, err
	}
	noData := h.OnNoData.Verdict()
	out := make([]judgement, r.steps)
	for k := range out {
		var present []series
		for _, s := range ss {
			if s.ok[k] {
				present = append(present, s)
			}
		}
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
// the SLO's window has no data the probe follows onNoData.
func (r *run) sloProbe(ctx context.Context, set *slo.Set, h *slo.Hypothesis, p *slo.Probe) ([]judgement, error) {
	o := set.SLO(p.SLO)
	if o == nil {
		return nil, fmt.Errorf("hypothesis %q: probe %q: SLO %q is not defined", h.Name, p.Name, p.SLO)
	}
	budget := o.ErrorBudget()
	var full, burnWin points
	var err error
	if p.BudgetRemaining != nil {
		if full, err = r.sloRatio(ctx, o); err != nil {
			return nil, err
		}
	}
	if p.BurnRate != nil {
		get := func() (points, error) { return r.ratio(ctx, o, p.BurnRate.Window) }
		if p.BurnRate.Window == o.Window {
			get = func() (points, error) { return r.sloRatio(ctx, o) } // a calendar SLO's period so far
		}
		if burnWin, err = get(); err != nil {
			return nil, err
		}
	}
	noData := h.OnNoData.Verdict()
	out := make([]judgement, r.steps)
	for k := range out {
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
			out[k] = judgement{noData, p.Name + ": no data for SLO " + o.Name}
			continue
		}
		out[k] = judgement{verdict, p.Name + ": " + strings.Join(parts, ", ")}
	}
	return out, nil
}
