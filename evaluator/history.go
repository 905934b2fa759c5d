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

// History returns the chart series of an SLO as of the snapshot's cycle.
func (s *Snapshot) History(name string) (SLOHistory, bool) {
	entry, ok := s.slos[name]
	if !ok || entry.status.EvaluatedAt.IsZero() {
		return SLOHistory{}, ok
	}
	t, def, now := entry.tracker, entry.tracker.def, entry.status.EvaluatedAt
	var h SLOHistory
	value := func(c slo.Counts, missing time.Duration, f func(slo.Counts) float64) Num {
		if missing > 0 {
			return Num(math.NaN())
		}
		return Num(f(c))
	}
	budget := func(c slo.Counts) float64 { return slo.BudgetRemaining(c.Bad, c.Total, def.Objective) }
	burn := func(c slo.Counts) float64 { return slo.BurnRate(c.Bad, c.Total, def.Objective) }
	for at := now.Truncate(time.Hour).Add(-historySpan); !at.After(now); at = at.Add(time.Hour) {
		from, _ := def.WindowAt(at) // a calendar SLO's budget starts afresh with each period
		c, m := t.countsBetween(from, at)
		h.BudgetRemaining = append(h.BudgetRemaining, Point{At: at, Value: value(c, m, budget)})
		c, m = t.countsBetween(at.Add(-time.Hour), at)
		h.BurnRate1h = append(h.BurnRate1h, Point{At: at, Value: value(c, m, burn)})
	}
	for at := now.Truncate(5 * time.Minute).Add(-fineSpan); !at.After(now); at = at.Add(5 * time.Minute) {
		c, m := t.countsBetween(at.Add(-5*time.Minute), at)
		h.BurnRate5m = append(h.BurnRate5m, Point{At: at, Value: value(c, m, burn)})
	}
	return h, true
}
