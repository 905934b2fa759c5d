package evaluator

import (
	"fmt"
	"math"
	"time"

	"github.com/slogate/slogate/slo"
)

// initialSLOStatus is the status of an SLO not evaluated yet: no numbers,
// not fresh, no alert firing.
func initialSLOStatus(def *slo.SLO) SLOStatus {
	st := SLOStatus{
		Name: def.Name, Service: def.Service, Description: def.Description, Labels: def.Labels,
		Parent: def.Parent, Group: def.Group,
		Objective: def.Objective, Window: def.WindowName(),
		SLI: Num(math.NaN()), BudgetRemaining: Num(math.NaN()),
		Windows:         []WindowStatus{}, // none yet: an empty list in the API, not null
		BudgetingMethod: def.Timeslices.Method(),
	}
	if ts := def.Timeslices; ts != nil {
		st.TimeSliceWindow = slo.FormatDuration(ts.Window)
	}
	for _, sev := range slo.Severities {
		st.Alerts = append(st.Alerts, AlertStatus{Severity: sev, BurnRate: Num(math.NaN()), Enabled: def.TierEnabled(sev)})
	}
	return st
}

// sloStatus computes an SLO's status at now from its tracker's buffers and
// its previous status (the alerts' state), after the cycle's answers were
// applied with error err, with a budget forecast at the burn rate of
// forecastWindow. It returns a new status; prev is not modified.
func sloStatus(t *sloTracker, prev SLOStatus, now time.Time, err error, forecastWindow time.Duration) SLOStatus {
	def := t.def
	st := initialSLOStatus(def)
	st.LastSuccess = prev.LastSuccess
	st.EvaluatedAt = now
	if err != nil {
		st.Error = err.Error()
	}

	partial := def.Gate.OnIncompleteWindow == slo.IncompletePartial
	byDur := map[time.Duration]WindowStatus{}
	measure := func(w time.Duration) WindowStatus {
		if ws, ok := byDur[w]; ok {
			return ws
		}
		from, name := now.Add(-w), windowName(w)
		if w == def.Window && def.Calendar != nil {
			// The period so far; Duration stays the SLO's Window, the key
			// by which the SLO window is looked up.
			from, _ = def.WindowAt(now)
			name = def.WindowName()
		}
		c, missing, uncovered := t.coverage(from, now)
		ws := WindowStatus{Window: name, Duration: w, Bad: Num(c.Bad), Total: Num(c.Total), Complete: missing == 0,
			Coverage: Num(1 - uncovered.Seconds()/now.Sub(from).Seconds()), onlyUncovered: missing > 0 && missing-uncovered < time.Second}
		ws.SLI, ws.BurnRate = Num(math.NaN()), Num(math.NaN())
		// The SLO window of a partial policy has the numbers of what is
		// covered (Measured); others only when complete.
		if ws.Measured(partial && w == def.Window) {
			ws.SLI = Num(1 - slo.ErrorRatio(c.Bad, c.Total))
			ws.BurnRate = Num(slo.BurnRate(c.Bad, c.Total, def.Objective))
		}
		byDur[w] = ws
		return ws
	}
	windows := slo.Windows(def.Window)
	st.Windows = make([]WindowStatus, 0, len(windows))
	for _, w := range windows {
		st.Windows = append(st.Windows, measure(w))
	}
	full := byDur[def.Window]
	st.SLI = full.SLI
	if def.Calendar != nil {
		start, end := def.Calendar.Period(now)
		st.Period = &PeriodStatus{Start: start, End: end, TimeLeft: end.Sub(now).Seconds(), Length: end.Sub(start).Seconds(), TimeZone: def.Calendar.Location.String()}
	}
	if full.Measured(partial) {
		st.BudgetRemaining = Num(slo.BudgetRemaining(float64(full.Bad), float64(full.Total), def.Objective))
	}
	st.Forecast = forecast(def, st, measure(min(forecastWindow, def.Window)), now)

	// The newest slice is what makes the status current: without it the
	// windows are complete only up to the outage.
	st.Fresh = t.hasSlice(now)
	if st.Fresh && err == nil {
		st.LastSuccess = now
	}

	burn := func(w time.Duration) (float64, bool) {
		ws := measure(w)
		return float64(ws.BurnRate), ws.Complete
	}
	tiers := def.TiersAt(now)
	for i := range st.Alerts {
		a := &st.Alerts[i]
		var was AlertStatus
		for _, p := range prev.Alerts {
			if p.Severity == a.Severity {
				was = p
			}
		}
		events := func(w time.Duration) float64 { return float64(measure(w).Total) }
		check := slo.CheckTiersGuarded(tiers, a.Severity, burn, events, def.AlertTierOf(a.Severity).MinEvents)
		a.LowTraffic = check.LowTraffic
		if check.Hold {
			// Part of the data is missing and nothing fires: keep the last
			// state rather than resolving (or raising) an alert on a hole.
			a.Firing, a.Since, a.Condition, a.BurnRate = was.Firing, was.Since, was.Condition, was.BurnRate
			continue
		}
		prevState := slo.AlertState{Firing: was.Firing}
		if was.Since != nil {
			prevState.Since = *was.Since
		}
		next := prevState.Next(check, a.Enabled, now)
		a.Firing, a.BurnRate = next.Firing, Num(check.BurnRate)
		if next.Firing {
			since := next.Since
			a.Since = &since
			tr := check.Tier
			a.Condition = fmt.Sprintf("burn rate > %s over %s and %s", formatFloat(tr.Factor), windowName(tr.Long), windowName(tr.Short))
		}
	}
	return st
}

// forecast is the budget forecast of an SLO whose status so far is st, at
// the burn rate measured over fw; nil while either is incomplete.
func forecast(def *slo.SLO, st SLOStatus, fw WindowStatus, now time.Time) *ForecastStatus {
	if !fw.Complete || !st.BudgetRemaining.Valid() {
		return nil
	}
	var f slo.Forecast
	if st.Period != nil {
		start, end := def.Calendar.Period(now)
		f = slo.ForecastPeriod(float64(st.BudgetRemaining), float64(fw.BurnRate), now.Sub(start), end.Sub(now))
	} else {
		f = slo.ForecastRolling(float64(st.BudgetRemaining), float64(fw.BurnRate), def.Window)
	}
	out := &ForecastStatus{Window: fw.Window, BurnRate: fw.BurnRate, ExhaustedIn: Num(math.NaN()), BudgetAtEnd: Num(f.AtEnd), Horizon: f.Horizon.Seconds()}
	if f.Exhausts {
		out.ExhaustedIn = Num(f.ExhaustedIn.Seconds())
	}
	return out
}
