package slo

import (
	"math"
	"time"
)

// Severity of a burn-rate alert tier.
type Severity string

const (
	SeverityPage   Severity = "page"
	SeverityTicket Severity = "ticket"
)

// BurnTier is one multi-window burn-rate condition: it fires when the burn
// rate exceeds Factor over both the Long and the Short window.
type BurnTier struct {
	Severity Severity
	Long     time.Duration
	Short    time.Duration
	Factor   float64
	// Budget is the share of the period's error budget that burning at
	// Factor spends within Long (0.02 for the workbook's 1h page tier).
	Budget float64
}

// The SRE workbook's windows and the share of the budget each condition
// allows to be consumed within its long window (2 % in 1h, 5 % in 6h, 10 %
// in 1d and 10 % in 3d of a 30-day budget).
var workbookTiers = []struct {
	severity    Severity
	long, short time.Duration
	consumption float64
}{
	{SeverityPage, time.Hour, 5 * time.Minute, 0.02},
	{SeverityPage, 6 * time.Hour, 30 * time.Minute, 0.05},
	{SeverityTicket, 24 * time.Hour, 2 * time.Hour, 0.10},
	{SeverityTicket, 72 * time.Hour, 6 * time.Hour, 0.10},
}

// BurnTiers returns the multi-window multi-burn-rate conditions for an SLO
// window. The windows are the workbook's; the factors are scaled so each
// condition still means the same share of the budget spent (for 30d: 14.4,
// 6, 3 and 1; for 28d: 13.44, 5.6, 2.8, 0.93). This is what Sloth does too.
func BurnTiers(window time.Duration) []BurnTier {
	out := make([]BurnTier, 0, len(workbookTiers))
	for _, t := range workbookTiers {
		f := t.consumption * window.Seconds() / t.long.Seconds()
		out = append(out, BurnTier{
			Severity: t.severity, Long: t.long, Short: t.short,
			Factor: math.Round(f*1e6) / 1e6, Budget: t.consumption,
		})
	}
	return out
}

// StandardWindows are the windows slogate evaluates for every SLO besides
// the SLO window itself.
var StandardWindows = []time.Duration{
	5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
	6 * time.Hour, 24 * time.Hour, 72 * time.Hour,
}

// Windows returns the windows evaluated for an SLO window: the standard ones
// shorter than it, then the SLO window, sorted ascending, without duplicates.
// For a calendar SLO, whose Window is the longest its period can be, the
// standard windows are the same (all shorter than its shortest period) and
// the last stands for the period so far.
func Windows(window time.Duration) []time.Duration {
	out := make([]time.Duration, 0, len(StandardWindows)+1)
	for _, w := range StandardWindows {
		if w < window {
			out = append(out, w)
		}
	}
	return append(out, window)
}

// ErrorRatio is bad/total. With no events it is NaN: no traffic is neither
// 100 % good nor an error.
func ErrorRatio(bad, total float64) float64 {
	if total <= 0 {
		return math.NaN()
	}
	r := bad / total
	if r < 0 {
		return 0
	}
	return r
}

// BurnRate is how fast the budget burns: error ratio / (1 - objective).
// 1 spends exactly the budget over the SLO window. With no events nothing is
// burning, so the burn rate is 0.
func BurnRate(bad, total, objectivePercent float64) float64 {
	if total <= 0 {
		return 0
	}
	return ErrorRatio(bad, total) / (1 - objectivePercent/100)
}

// BudgetRemaining is 1 - (bad/total)/(1 - objective) over the SLO window.
// It goes negative once the budget is overspent. With no events nothing was
// spent, so it is 1.
func BudgetRemaining(bad, total, objectivePercent float64) float64 {
	return 1 - BurnRate(bad, total, objectivePercent)
}

// BudgetSpent is the share of the SLO window's error budget that bad events
// spent, given the SLO window's expected total events. It is what a chaos run
// is charged: bad events during the run over the budget of the window.
func BudgetSpent(bad, windowTotal, objectivePercent float64) float64 {
	if windowTotal <= 0 {
		return 0
	}
	return bad / (windowTotal * (1 - objectivePercent/100))
}
