package evaluator

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/slogate/slogate/slo"
)

// sloState is an SLO's tracker and its latest status.
type sloState struct {
	tracker *sloTracker
	status  SLOStatus
	// alertSince remembers when each severity started firing.
	alertSince map[slo.Severity]time.Time
	// backfilled is set once every slice of the windows has been fetched.
	backfilled bool
}

func newSLOState(def *slo.SLO, interval, minRange time.Duration) (*sloState, error) {
	tr, err := newSLOTracker(def, interval, minRange)
	if err != nil {
		return nil, err
	}
	st := &sloState{tracker: tr, alertSince: map[slo.Severity]time.Time{}}
	st.status = SLOStatus{
		Name: def.Name, Service: def.Service, Description: def.Description, Labels: def.Labels,
		Objective: def.Objective, Window: windowName(def.Window),
		SLI: Num(math.NaN()), BudgetRemaining: Num(math.NaN()),
	}
	for _, sev := range []slo.Severity{slo.SeverityPage, slo.SeverityTicket} {
		st.status.Alerts = append(st.status.Alerts, AlertStatus{Severity: sev, BurnRate: Num(math.NaN()), Enabled: tierEnabled(def, sev)})
	}
	return st, nil
}

func tierEnabled(def *slo.SLO, sev slo.Severity) bool {
	if !def.Alerting.Enabled {
		return false
	}
	if sev == slo.SeverityPage {
		return def.Alerting.Page.Enabled
	}
	return def.Alerting.Ticket.Enabled
}

// evaluate fetches what is missing and computes the SLO's status at now.
// The returned status is a copy the caller may publish.
func (s *sloState) evaluate(ctx context.Context, f fetcher, now time.Time) SLOStatus {
	def := s.tracker.def
	err := s.tracker.update(ctx, f, now)
	st := s.status
	st.EvaluatedAt = now
	st.Error = ""
	if err != nil {
		st.Error = err.Error()
	}

	windows := slo.Windows(def.Window)
	byDur := make(map[time.Duration]WindowStatus, len(windows)+4)
	measure := func(w time.Duration) WindowStatus {
		if ws, ok := byDur[w]; ok {
			return ws
		}
		c, missing := s.tracker.windowCounts(w, now)
		ws := WindowStatus{Window: windowName(w), Duration: w, Bad: Num(c.bad), Total: Num(c.total), Complete: missing == 0}
		ws.SLI = Num(1 - slo.ErrorRatio(c.bad, c.total))
		ws.BurnRate = Num(slo.BurnRate(c.bad, c.total, def.Objective))
		if !ws.Complete {
			ws.SLI, ws.BurnRate = Num(math.NaN()), Num(math.NaN())
		}
		byDur[w] = ws
		return ws
	}
	st.Windows = st.Windows[:0:0]
	for _, w := range windows {
		st.Windows = append(st.Windows, measure(w))
	}
	full := byDur[def.Window]
	st.SLI = full.SLI
	if full.Complete {
		st.BudgetRemaining = Num(slo.BudgetRemaining(float64(full.Bad), float64(full.Total), def.Objective))
	} else {
		st.BudgetRemaining = Num(math.NaN())
	}

	// The newest slice is what makes the status current: without it the
	// windows are complete only up to the outage.
	newest := s.tracker.fine.sliceOf(now)
	s.tracker.mu.Lock()
	fresh := s.tracker.fine.has(newest)
	s.tracker.mu.Unlock()
	if fresh && err == nil {
		st.LastSuccess = now
	}
	st.Fresh = fresh

	st.Alerts = append([]AlertStatus(nil), s.status.Alerts...)
	for i := range st.Alerts {
		a := &st.Alerts[i]
		a.Enabled = tierEnabled(def, a.Severity)
		firing, known, cond, burn := false, true, "", math.NaN()
		for _, tier := range slo.BurnTiers(def.Window) {
			if tier.Severity != a.Severity {
				continue
			}
			long, short := measure(tier.Long), measure(tier.Short)
			if !long.Complete || !short.Complete {
				known = false
				continue
			}
			if math.IsNaN(burn) || float64(long.BurnRate) > burn {
				burn = float64(long.BurnRate)
			}
			if float64(long.BurnRate) > tier.Factor && float64(short.BurnRate) > tier.Factor && !firing {
				firing = true
				burn = float64(long.BurnRate)
				cond = fmt.Sprintf("burn rate > %s over %s and %s", formatFloat(tier.Factor), windowName(tier.Long), windowName(tier.Short))
			}
		}
		if !known && !firing {
			// Part of the data is missing: keep the last state rather than
			// resolving (or raising) an alert on a hole.
			continue
		}
		a.BurnRate = Num(burn)
		a.Firing = firing && a.Enabled
		a.Condition = cond
		if a.Firing {
			since, ok := s.alertSince[a.Severity]
			if !ok {
				since = now
				s.alertSince[a.Severity] = since
			}
			a.Since = &since
		} else {
			delete(s.alertSince, a.Severity)
			a.Since = nil
		}
	}
	s.status = st
	return st
}
