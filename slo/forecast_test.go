package slo

import (
	"math"
	"testing"
	"time"
)

func TestForecast(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name      string
		f         Forecast
		exhausts  bool
		in        time.Duration
		atEnd     float64
		horizonIs time.Duration
	}{
		// 30d window, half the budget left, burning 2×: after t the budget
		// is 1 - (0.5(30d-t) + 2t)/30d = 0 at t = 15d/1.5 = 10d.
		{"rolling, burning fast", ForecastRolling(0.5, 2, 30*day), true, 10 * day, -1, 30 * day},
		// Burning 1× or less never spends what is left.
		{"rolling, burning at 1", ForecastRolling(0.5, 1, 30*day), false, 0, 0, 30 * day},
		{"rolling, burning slowly", ForecastRolling(0.2, 0.5, 30*day), false, 0, 0.5, 30 * day},
		{"rolling, spent already", ForecastRolling(-0.1, 0.5, 30*day), true, 0, 0.5, 30 * day},
		// 10 days into a 30-day month, 60 % left, burning 3×: after t the
		// ratio is (0.4·10d + 3t)/(10d+t) = 1 at t = 6d/2 = 3d; at the end,
		// 1 - (4 + 60)/30 budgets.
		{"period, burning fast", ForecastPeriod(0.6, 3, 10*day, 20*day), true, 3 * day, 1 - 64.0/30, 20 * day},
		// Burning 1.2× from 1 day before the end with 90 % left: the budget
		// would last 0.9·29d/0.2 = 130.5 days; the month ends first.
		{"period, ends before exhaustion", ForecastPeriod(0.9, 1.2, 29*day, day), false, 0, 1 - (0.1*29+1.2)/30, day},
		{"period, quiet", ForecastPeriod(0.8, 0, 15*day, 15*day), false, 0, 1 - 0.2*15/30, 15 * day},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			if f.Exhausts != tt.exhausts || (tt.exhausts && (f.ExhaustedIn-tt.in).Abs() > time.Second) {
				t.Errorf("exhausts %v in %s, want %v in %s", f.Exhausts, f.ExhaustedIn, tt.exhausts, tt.in)
			}
			if math.Abs(f.AtEnd-tt.atEnd) > 1e-9 || f.Horizon != tt.horizonIs {
				t.Errorf("at the end %g over %s, want %g over %s", f.AtEnd, f.Horizon, tt.atEnd, tt.horizonIs)
			}
		})
	}
	if f := ForecastRolling(math.NaN(), 2, day); !math.IsNaN(f.AtEnd) || f.Exhausts {
		t.Errorf("unknown budget: %+v, want no forecast", f)
	}
}
