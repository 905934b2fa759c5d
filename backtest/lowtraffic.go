package backtest

import (
	"sort"
	"time"

	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/slo"
)

// LowTraffic is what an SLO's low-traffic guard changed: its guarded alert
// severities are replayed once as slogate does (Alerts) and once without
// the guard, and the alerts of the second replay that the guard kept from
// being sent are Removed.
//
// An alert without the guard is removed when no alert with the guard
// starts while it fires. One with the guard always starts while one
// without it fires (the guard only holds a state; it never fires a tier),
// so AlertsRemoved is also how many fewer alerts were sent: an alert that a
// quiet hour no longer resolved, merging with the next, counts as removed
// too, since nobody was notified again.
type LowTraffic struct {
	// MinEvents is the guard of each severity that has one.
	MinEvents     map[slo.Severity]float64 `json:"minEvents"`
	AlertsRemoved int                      `json:"alertsRemoved"`
	PagesRemoved  int                      `json:"pagesRemoved"`
	// Removed are the alerts that fired without the guard only, in time
	// order.
	Removed []RemovedAlert `json:"removed"`
}

// RemovedAlert is an alert the guard removed, with the events that its
// firing tier's long window (Window) counted when it would have fired.
type RemovedAlert struct {
	Alert
	Events api.Num `json:"events"`
	Window string  `json:"window"`
}

func (l *LowTraffic) add(sev slo.Severity, minEvents float64, removed []RemovedAlert) {
	l.MinEvents[sev] = minEvents
	l.AlertsRemoved += len(removed)
	if sev == slo.SeverityPage {
		l.PagesRemoved += len(removed)
	}
	l.Removed = append(l.Removed, removed...)
	sort.SliceStable(l.Removed, func(i, j int) bool { return l.Removed[i].FiredAt.Before(l.Removed[j].FiredAt) })
}

// removedAlerts are the alerts of plain (one severity replayed without the
// guard) in whose firing interval no alert of guarded starts.
func removedAlerts(plain, guarded []firing, events *windowEvents) []RemovedAlert {
	out := []RemovedAlert{}
	for _, p := range plain {
		kept := false
		for _, g := range guarded {
			if !g.FiredAt.Before(p.FiredAt) && (p.ResolvedAt == nil || g.FiredAt.Before(*p.ResolvedAt)) {
				kept = true
				break
			}
		}
		if !kept {
			n, _ := events.over(p.step, p.tier.Long)
			out = append(out, RemovedAlert{Alert: p.Alert, Events: api.Num(n), Window: model.Duration(p.tier.Long).String()})
		}
	}
	return out
}

// HypothesisLowTraffic is what the low-traffic guards (minEvents) of a
// hypothesis' probes changed: its verdicts are replayed once as slogate
// judges them (Changes) and once with every probe judged on its value
// however few events it had. A change is the same in both when the
// verdict turned to the same one at the same step; the others were
// removed (only without the guard) or added (only with it: the guard's
// own onLowTraffic verdict, unknown by default, coming and going).
type HypothesisLowTraffic struct {
	// MinEvents is the guard of each probe that has one, by probe name.
	MinEvents    map[string]float64 `json:"minEvents"`
	FlipsRemoved int                `json:"flipsRemoved"`
	// FailsRemoved are the removed changes to fail: the false alarms a
	// quiet period would have raised.
	FailsRemoved int      `json:"failsRemoved"`
	FlipsAdded   int      `json:"flipsAdded"`
	Removed      []Change `json:"removed"`
	Added        []Change `json:"added"`
}

// diffChanges compares the changes of the replays with (guarded) and
// without (plain) the guards.
func diffChanges(plain, guarded []Change) *HypothesisLowTraffic {
	type key struct {
		at time.Time
		to slo.Verdict
	}
	keys := func(cs []Change) map[key]bool {
		m := map[key]bool{}
		for _, c := range cs {
			m[key{c.At, c.To}] = true
		}
		return m
	}
	inPlain, inGuarded := keys(plain), keys(guarded)
	l := &HypothesisLowTraffic{MinEvents: map[string]float64{}, Removed: []Change{}, Added: []Change{}}
	for _, c := range plain {
		if !inGuarded[key{c.At, c.To}] {
			l.Removed = append(l.Removed, c)
			if c.To == slo.Fail {
				l.FailsRemoved++
			}
		}
	}
	for _, c := range guarded {
		if !inPlain[key{c.At, c.To}] {
			l.Added = append(l.Added, c)
		}
	}
	l.FlipsRemoved, l.FlipsAdded = len(l.Removed), len(l.Added)
	return l
}
