package evaluator

import (
	"fmt"
	"math"
	"time"

	"github.com/slogate/slogate/slo"
)

// initialHypothesisStatus is the status of a hypothesis not evaluated yet.
func initialHypothesisStatus(def *slo.Hypothesis) HypothesisStatus {
	st := HypothesisStatus{Name: def.Name, Verdict: slo.Unknown}
	for _, p := range def.Probes {
		st.Probes = append(st.Probes, ProbeStatus{
			Name: p.Name, Query: p.Query, SLO: p.SLO, Tolerance: probeTolerance(p),
			Value: Num(math.NaN()), Outcome: "not evaluated", Verdict: slo.Unknown,
		})
	}
	return st
}

func probeTolerance(p *slo.Probe) string {
	if p.Tolerance != nil {
		return p.Tolerance.String()
	}
	if p.Relative != nil {
		return p.Relative.String()
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

// hypothesisStatus judges every probe of def at now and debounces the
// verdict from prev. answers are those of the query probes by index
// (ignored for SLO probes); slos are the SLO statuses of the same cycle.
func hypothesisStatus(def *slo.Hypothesis, prev HypothesisStatus, now time.Time, answers []probeAnswers, slos map[string]SLOStatus) HypothesisStatus {
	st := HypothesisStatus{Name: def.Name, EvaluatedAt: now, LastSuccess: prev.LastSuccess, Probes: make([]ProbeStatus, len(def.Probes))}
	verdicts := make([]slo.Verdict, len(def.Probes))
	ok := true
	for i, p := range def.Probes {
		var ps ProbeStatus
		if p.SLO != "" {
			sst, found := slos[p.SLO]
			ps = sloProbe(def, p, sst, found)
			if g := sst.Groups; found && g != nil && g.Policy == slo.GroupsEach {
				ps = groupsProbe(def, p, ps, g, slos)
			}
		} else {
			ps = judgeQueryProbe(def, p, answers[i])
		}
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

	d := slo.Debounce{Verdict: prev.Verdict, Since: prev.Since, Streak: prev.Streak, RawStreak: prev.RawStreak}
	d.Observe(slo.Worst(verdicts...), now, def.FailAfter, def.PassAfter)
	st.Verdict, st.Since, st.Streak, st.RawStreak = d.Verdict, d.Since, d.Streak, d.RawStreak
	return st
}

func newProbeStatus(p *slo.Probe) ProbeStatus {
	return ProbeStatus{Name: p.Name, Query: p.Query, SLO: p.SLO, Tolerance: probeTolerance(p), Value: Num(math.NaN())}
}

// judged sets a probe's value and whether it is within tolerance.
func (ps *ProbeStatus) judged(v float64, holds bool) {
	ps.Value = Num(v)
	ps.Within = &holds
	ps.Verdict = slo.Fail
	if holds {
		ps.Verdict = slo.Pass
	}
}

// sloProbe judges a probe on an SLO's budget remaining and burn rate, as
// the SLO's status of this cycle has them.
func sloProbe(def *slo.Hypothesis, p *slo.Probe, sst SLOStatus, found bool) ProbeStatus {
	ps := newProbeStatus(p)
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
	if p.MinEvents > 0 {
		// The window the probe reads: its burn-rate window, else the SLO's.
		var w time.Duration
		for _, ws := range sst.Windows {
			w = max(w, ws.Duration)
		}
		if p.BurnRate != nil {
			w = p.BurnRate.Window
		}
		if ws, measured := sst.WindowStatus(w); measured && ws.Complete {
			ps.Events = numPtr(float64(ws.Total))
			if float64(ws.Total) < p.MinEvents {
				ps.Outcome, ps.Verdict = OutcomeLowTraffic, def.OnLowTraffic.Verdict()
				ps.Error = fmt.Sprintf("SLO %s counted %s events over %s, fewer than minEvents %s: too little traffic to judge (onLowTraffic: %s)",
					p.SLO, eventCount(float64(ws.Total)), windowName(w), formatFloat(p.MinEvents), def.OnLowTraffic.Verdict())
				return ps
			}
		}
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
		// The loader accepts only windows the evaluator measures.
		ws, measured := sst.WindowStatus(p.BurnRate.Window)
		if burn := float64(ws.BurnRate); !measured || math.IsNaN(burn) {
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
	ps.judged(value, holds)
	return ps
}

// groupsProbe judges an SLO probe on a grouped SLO whose gate policy is
// each: the aggregate's judgement agg, unless a group does worse, whose
// judgement is then the probe's (its SLO field naming the group). Before
// the groups are first found the probe is unknown.
func groupsProbe(def *slo.Hypothesis, p *slo.Probe, agg ProbeStatus, g *GroupsStatus, slos map[string]SLOStatus) ProbeStatus {
	if !g.Discovered {
		agg.Outcome, agg.Verdict, agg.Error = OutcomeNoData.String(), def.OnNoData.Verdict(), "the groups of SLO "+p.SLO+" are not known yet"
		return agg
	}
	worst := agg
	for _, member := range g.Members {
		sst, found := slos[member]
		var ps ProbeStatus
		if !found || !sst.Fresh && sst.LastSuccess.IsZero() {
			// A group found this cycle, not measured yet: no data, not
			// an error of the hypothesis.
			ps = newProbeStatus(p)
			ps.Outcome, ps.Verdict, ps.Error = OutcomeNoData.String(), def.OnNoData.Verdict(), "group "+member+" is not measured yet"
		} else {
			ps = sloProbe(def, p, sst, found)
		}
		if slo.Worst(worst.Verdict, ps.Verdict) != worst.Verdict {
			ps.SLO = member
			worst = ps
		}
	}
	return worst
}

// judgeQueryProbe judges a PromQL probe: its low-traffic guard first,
// then its value against a fixed or a relative tolerance.
func judgeQueryProbe(def *slo.Hypothesis, p *slo.Probe, a probeAnswers) ProbeStatus {
	if ps, ok := lowTraffic(def, p, a); !ok {
		return ps
	}
	var ps ProbeStatus
	if p.Relative != nil {
		ps = relativeProbe(def, p, a)
	} else {
		ps = queryProbe(def, p, a.value)
	}
	if a.hasEvents && a.events.Outcome == OutcomeValue {
		ps.Events = numPtr(a.events.Value)
	}
	return ps
}

// queryProbe judges a PromQL probe's answer: errors follow onError, no
// series and NaN follow onNoData, several series the series policy.
func queryProbe(def *slo.Hypothesis, p *slo.Probe, res Result) ProbeStatus {
	ps := newProbeStatus(p)
	ps.Outcome = res.Outcome.String()
	ps.Series = len(res.Series)
	switch res.Outcome {
	case OutcomeError:
		ps.Error = res.Err.Error()
		ps.Verdict = def.OnError.Verdict()
	case OutcomeNoData, OutcomeNaN:
		ps.Verdict = def.OnNoData.Verdict()
	case OutcomeValue:
		ps.judged(res.Value, p.Tolerance.Holds(res.Value))
	case OutcomeMulti:
		values := make([]float64, len(res.Series))
		for i, s := range res.Series {
			values[i] = s.Value
		}
		if i, holds, ok := def.JudgeSeries(values, p.Tolerance); ok {
			ps.judged(values[i], holds)
		} else {
			ps.Verdict = def.OnNoData.Verdict()
		}
	}
	return ps
}
