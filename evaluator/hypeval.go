package evaluator

import (
	"context"
	"math"
	"time"

	"github.com/slogate/slogate/slo"
)

// hypState is a hypothesis and its debounced verdict.
type hypState struct {
	def    *slo.Hypothesis
	status HypothesisStatus
}

func newHypState(def *slo.Hypothesis) *hypState {
	st := &hypState{def: def}
	st.status = HypothesisStatus{Name: def.Name, Verdict: slo.Unknown}
	for _, p := range def.Probes {
		st.status.Probes = append(st.status.Probes, ProbeStatus{
			Name: p.Name, Query: p.Query, SLO: p.SLO, Tolerance: probeTolerance(p),
			Value: Num(math.NaN()), Outcome: "not evaluated", Verdict: slo.Unknown,
		})
	}
	return st
}

// adopt keeps the verdict history of the previous definition of the same
// hypothesis, so a reload does not reset a failing verdict to unknown.
func (h *hypState) adopt(old *hypState) {
	if old == nil {
		return
	}
	h.status.Verdict = old.status.Verdict
	h.status.Since = old.status.Since
	h.status.Streak = old.status.Streak
	h.status.RawStreak = old.status.RawStreak
	h.status.LastSuccess = old.status.LastSuccess
}

func probeTolerance(p *slo.Probe) string {
	if p.Tolerance != nil {
		return p.Tolerance.String()
	}
	s := ""
	if p.BudgetRemaining != nil {
		s = "budgetRemaining " + p.BudgetRemaining.String()
	}
	if p.BurnRate != nil {
		if s != "" {
			s += ", "
		}
		s += "burnRate(" + windowName(p.BurnRate.Window) + ") < " + formatFloat(p.BurnRate.Below)
	}
	return s
}

// sloLookup gives hypotheses the SLO statuses of the same cycle.
type sloLookup func(name string) (*sloState, SLOStatus, bool)

// evaluate measures every probe and updates the debounced verdict.
func (h *hypState) evaluate(ctx context.Context, f fetcher, now time.Time, slos sloLookup) HypothesisStatus {
	def := h.def
	st := h.status
	st.EvaluatedAt = now
	st.Probes = make([]ProbeStatus, len(def.Probes))
	verdicts := make([]slo.Verdict, len(def.Probes))
	ok := true
	for i, p := range def.Probes {
		ps := h.evaluateProbe(ctx, f, now, p, slos)
		if ps.Outcome == OutcomeError.String() {
			ok = false
		}
		st.Probes[i] = ps
		verdicts[i] = ps.Verdict
	}
	if ok {
		st.LastSuccess = now
	}
	st.Fresh = ok

	d := slo.Debounce{Verdict: st.Verdict, Since: st.Since, Streak: st.Streak, RawStreak: st.RawStreak}
	d.Observe(slo.Worst(verdicts...), now, def.FailAfter, def.PassAfter)
	st.Verdict, st.Since, st.Streak, st.RawStreak = d.Verdict, d.Since, d.Streak, d.RawStreak
	h.status = st
	return st
}

func (h *hypState) evaluateProbe(ctx context.Context, f fetcher, now time.Time, p *slo.Probe, slos sloLookup) ProbeStatus {
	def := h.def
	ps := ProbeStatus{Name: p.Name, Query: p.Query, SLO: p.SLO, Tolerance: probeTolerance(p), Value: Num(math.NaN())}
	judge := func(v float64, holds bool) {
		ps.Value = Num(v)
		ps.Within = &holds
		ps.Verdict = slo.Fail
		if holds {
			ps.Verdict = slo.Pass
		}
	}
	if p.SLO != "" {
		state, sst, found := slos(p.SLO)
		switch {
		case !found:
			ps.Outcome, ps.Error, ps.Verdict = OutcomeError.String(), "SLO "+p.SLO+" is not evaluated", def.OnError.Verdict()
			return ps
		case !sst.Fresh:
			ps.Outcome, ps.Verdict = OutcomeError.String(), def.OnError.Verdict()
			ps.Error = "SLO " + p.SLO + " has no fresh data"
			if sst.Error != "" {
				ps.Error += ": " + sst.Error
			}
			return ps
		}
		holds, nodata := true, false
		value := math.NaN()
		if p.BudgetRemaining != nil {
			if br := float64(sst.BudgetRemaining); math.IsNaN(br) {
				nodata = true
			} else {
				value, holds = br, p.BudgetRemaining.Holds(br)
			}
		}
		if p.BurnRate != nil {
			c, missing := state.tracker.windowCounts(p.BurnRate.Window, now)
			if burn := slo.BurnRate(c.bad, c.total, state.tracker.def.Objective); missing > 0 || math.IsNaN(burn) {
				nodata = true
			} else {
				holds = holds && burn < p.BurnRate.Below
				if p.BudgetRemaining == nil {
					value = burn
				}
			}
		}
		if nodata {
			ps.Outcome, ps.Verdict = OutcomeNoData.String(), def.OnNoData.Verdict()
			return ps
		}
		ps.Outcome = OutcomeValue.String()
		judge(value, holds)
		return ps
	}

	res := Classify(f.instant(ctx, p.Query, now))
	ps.Outcome = res.Outcome.String()
	ps.Series = len(res.Series)
	switch res.Outcome {
	case OutcomeError:
		ps.Error = res.Err.Error()
		ps.Verdict = def.OnError.Verdict()
	case OutcomeNoData, OutcomeNaN:
		ps.Verdict = def.OnNoData.Verdict()
	case OutcomeValue:
		judge(res.Value, p.Tolerance.Holds(res.Value))
	case OutcomeMulti:
		judgeSeries(&ps, res.Series, p.Tolerance, def)
	}
	return ps
}

// judgeSeries applies the series policy: with "all" one series out of
// tolerance fails the probe and the value shown is that series'; with "any"
// one series within tolerance passes it. Series without a number count as
// no data when nothing else decides.
func judgeSeries(ps *ProbeStatus, series []SeriesValue, tol *slo.Tolerance, def *slo.Hypothesis) {
	var first, decisive *SeriesValue
	nan := false
	for i := range series {
		s := &series[i]
		if math.IsNaN(s.Value) {
			nan = true
			continue
		}
		if first == nil {
			first = s
		}
		holds := tol.Holds(s.Value)
		if def.Series == slo.SeriesAny && holds && decisive == nil {
			decisive = s
		}
		if def.Series != slo.SeriesAny && !holds && decisive == nil {
			decisive = s
		}
	}
	set := func(s *SeriesValue, holds bool) {
		ps.Value = Num(s.Value)
		ps.Within = &holds
		ps.Verdict = slo.Fail
		if holds {
			ps.Verdict = slo.Pass
		}
	}
	switch {
	case decisive != nil:
		set(decisive, def.Series == slo.SeriesAny)
	case nan || first == nil:
		ps.Verdict = def.OnNoData.Verdict()
	case def.Series == slo.SeriesAny:
		set(first, false)
	default:
		set(first, true)
	}
}
