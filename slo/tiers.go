package slo

import (
	"math"
	"time"
)

// TierEnabled reports whether the burn-rate alert of severity sev is on.
func (o *SLO) TierEnabled(sev Severity) bool {
	if !o.Alerting.Enabled {
		return false
	}
	if sev == SeverityPage {
		return o.Alerting.Page.Enabled
	}
	return o.Alerting.Ticket.Enabled
}

// AlertTierOf returns the alert settings of severity sev.
func (o *SLO) AlertTierOf(sev Severity) AlertTier {
	if sev == SeverityPage {
		return o.Alerting.Page
	}
	return o.Alerting.Ticket
}

// Severities are the burn-rate alert severities, in the order slogate
// reports them.
var Severities = []Severity{SeverityPage, SeverityTicket}

// BurnReader gives the burn rate over a window ending at the time being
// judged; known is false while part of the window has no data.
type BurnReader func(window time.Duration) (burn float64, known bool)

// TierCheck is what the burn-rate tiers of one severity say at one time.
type TierCheck struct {
	// Firing is true when a tier burns faster than its factor over both
	// its long and its short window.
	Firing bool
	// Hold is true when nothing fires but some window has no data: the
	// previous alert state stands, so that a data hole neither resolves a
	// firing alert nor raises one.
	Hold bool
	// Tier is the first tier that fires, with its burn rates.
	Tier        BurnTier
	Long, Short float64
	// BurnRate is the long-window burn rate of Tier when firing, else the
	// highest long-window burn rate among the tiers with data (NaN if none).
	BurnRate float64
	// LowTraffic is true when a tier's long window counted fewer events
	// than the guard asks: that tier could not fire, and unless another
	// fires the state holds (Hold).
	LowTraffic bool
}

// EventReader gives the number of events over a window ending at the time
// being judged.
type EventReader func(window time.Duration) float64

// CheckTiers judges the tiers of severity sev, reading burn rates from burn.
func CheckTiers(tiers []BurnTier, sev Severity, burn BurnReader) TierCheck {
	return CheckTiersGuarded(tiers, sev, burn, nil, 0)
}

// CheckTiersGuarded is CheckTiers with a low-traffic guard: a tier whose
// long window counts fewer than minEvents events (read from events) is
// judged like a window without data. It neither fires nor counts as
// healthy, so that 3 errors in 5 requests at night page nobody, and a quiet
// hour does not resolve an alert either.
func CheckTiersGuarded(tiers []BurnTier, sev Severity, burn BurnReader, events EventReader, minEvents float64) TierCheck {
	c := TierCheck{BurnRate: math.NaN()}
	known := true
	for _, t := range tiers {
		if t.Severity != sev {
			continue
		}
		if minEvents > 0 && events != nil && !(events(t.Long) >= minEvents) {
			known, c.LowTraffic = false, true
			continue
		}
		long, okL := burn(t.Long)
		short, okS := burn(t.Short)
		if !okL || !okS {
			known = false
			continue
		}
		if c.Firing {
			continue
		}
		if math.IsNaN(c.BurnRate) || long > c.BurnRate {
			c.BurnRate = long
		}
		if long > t.Factor && short > t.Factor {
			c.Firing, c.Tier, c.Long, c.Short, c.BurnRate = true, t, long, short, long
		}
	}
	c.Hold = !known && !c.Firing
	return c
}

// AlertState is the state of one severity's burn-rate alert.
type AlertState struct {
	Firing bool
	// Since is when it started firing (zero while it does not).
	Since time.Time
}

// Next is the alert state after check at time at; a disabled tier never
// fires, and a check that holds keeps the state as it is.
func (a AlertState) Next(check TierCheck, enabled bool, at time.Time) AlertState {
	if check.Hold {
		return a
	}
	if !check.Firing || !enabled {
		return AlertState{}
	}
	if a.Firing {
		return a
	}
	return AlertState{Firing: true, Since: at}
}
