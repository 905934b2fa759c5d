package slo

import (
	"math"
	"time"
)

// DefaultForecastWindow is the window whose burn rate budget forecasts
// assume continues.
const DefaultForecastWindow = 24 * time.Hour

// Forecast is what becomes of an SLO's error budget if the burn rate of the
// forecast window goes on: when it is spent, and what is left at the
// horizon. Both models assume events spread evenly over time.
type Forecast struct {
	// Exhausts says the budget runs out before the horizon, in ExhaustedIn
	// (0: it is spent already).
	Exhausts    bool
	ExhaustedIn time.Duration
	// AtEnd is the budget remaining at the horizon (negative: overspent).
	AtEnd float64
	// Horizon is how far the forecast looks: to the end of a calendar
	// period, or one rolling window ahead.
	Horizon time.Duration
}

// ForecastRolling forecasts a rolling window of length window whose budget
// remaining is remaining (1 - burn rate over the window) when the burn
// rate burn goes on: each moment, events of burn replace the oldest of the
// window, so after t the budget is 1 - ((1-remaining)(window-t) + burn·t)/window,
// and after a whole window, 1 - burn. A burn rate of 1 or less never spends
// a budget that is not spent yet.
func ForecastRolling(remaining, burn float64, window time.Duration) Forecast {
	f := Forecast{AtEnd: 1 - burn, Horizon: window}
	switch {
	case math.IsNaN(remaining) || math.IsNaN(burn):
		f.AtEnd = math.NaN()
	case remaining <= 0:
		f.Exhausts = true
	case burn > 1:
		f.Exhausts = true
		f.ExhaustedIn = time.Duration(remaining / (burn - 1 + remaining) * float64(window))
	}
	return f
}

// ForecastPeriod forecasts a calendar period elapsed into it, left before
// its end, whose budget remaining so far is remaining, when the burn rate
// burn goes on for the rest of it: after t the period's error ratio is the
// time-weighted mean of the one so far and burn's, so the budget is
// 1 - ((1-remaining)·elapsed + burn·t)/(elapsed+t). It runs out before the
// end only if burn is above 1.
func ForecastPeriod(remaining, burn float64, elapsed, left time.Duration) Forecast {
	e, l := elapsed.Seconds(), left.Seconds()
	f := Forecast{Horizon: left, AtEnd: 1 - ((1-remaining)*e+burn*l)/(e+l)}
	switch {
	case math.IsNaN(remaining) || math.IsNaN(burn):
		f.AtEnd = math.NaN()
	case remaining <= 0:
		f.Exhausts = true
	case burn > 1:
		if t := remaining * e / (burn - 1); t <= l {
			f.Exhausts, f.ExhaustedIn = true, time.Duration(t*float64(time.Second))
		}
	}
	return f
}
