package evaluator

import (
	"math"
	"time"

	"github.com/slogate/slogate/slo"
)

// Point is one value of a chart.
type Point struct {
	At    time.Time `json:"at"`
	Value Num       `json:"value"`
}

// SLOHistory is what the UI charts for an SLO, computed on demand from the
// slice buffers rather than stored: budget remaining and the 1h burn rate
// every hour of the last day, and the 5m burn rate every 5 minutes of the
// last 6 hours.
type SLOHistory struct {
	BudgetRemaining []Point `json:"errorBudgetRemaining"`
	BurnRate1h      []Point `json:"burnRate1h"`
	BurnRate5m      []Point `json:"burnRate5m"`
}

// History returns the chart series of an SLO as of its latest evaluation.
func (e *Evaluator) History(name string) (SLOHistory, bool) {
	e.mu.RLock()
	st, ok := e.slos[name]
	status := e.sloStatus[name]
	e.mu.RUnlock()
	if !ok || status.EvaluatedAt.IsZero() {
		return SLOHistory{}, ok
	}
	def := st.tracker.def
	now := status.EvaluatedAt
	var h SLOHistory
	value := func(c counts, missing time.Duration, f func(counts) float64) Num {
		if missing > 0 {
			return Num(math.NaN())
		}
		return Num(f(c))
	}
	budget := func(c counts) float64 { return slo.BudgetRemaining(c.bad, c.total, def.Objective) }
	burn := func(c counts) float64 { return slo.BurnRate(c.bad, c.total, def.Objective) }
	for t := now.Truncate(time.Hour).Add(-historySpan); !t.After(now); t = t.Add(time.Hour) {
		c, m := st.tracker.countsBetween(t.Add(-def.Window), t)
		h.BudgetRemaining = append(h.BudgetRemaining, Point{At: t, Value: value(c, m, budget)})
		c, m = st.tracker.countsBetween(t.Add(-time.Hour), t)
		h.BurnRate1h = append(h.BurnRate1h, Point{At: t, Value: value(c, m, burn)})
	}
	for t := now.Truncate(5 * time.Minute).Add(-fineSpan); !t.After(now); t = t.Add(5 * time.Minute) {
		c, m := st.tracker.countsBetween(t.Add(-5*time.Minute), t)
		h.BurnRate5m = append(h.BurnRate5m, Point{At: t, Value: value(c, m, burn)})
	}
	return h, true
}
