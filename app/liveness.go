package app

import "time"

// liveness judges the evaluation loop by its heartbeat: alive while the
// loop showed a sign of life (a cycle starting or ending, a query of a
// cycle coming back, even with an error) within the threshold. A dead or
// slow Prometheus keeps the loop beating, so it never fails /health; a
// deadlocked loop stops beating and does.
type liveness struct {
	heartbeat func() time.Time
	now       func() time.Time
	threshold time.Duration
	// since stands in for the heartbeat until the loop has beaten once.
	since time.Time
}

// livenessThreshold is how long the loop may stay silent: four intervals
// (a cycle that overruns skips boundaries but still beats), and never less
// than two query timeouts and an interval, the longest a healthy cycle
// waits on a Prometheus that answers nothing.
func livenessThreshold(interval, queryTimeout time.Duration) time.Duration {
	return max(4*interval, 2*queryTimeout+interval)
}

func newLiveness(heartbeat, now func() time.Time, interval, queryTimeout time.Duration) *liveness {
	return &liveness{heartbeat: heartbeat, now: now, threshold: livenessThreshold(interval, queryTimeout), since: now()}
}

func (l *liveness) alive() bool {
	last := l.heartbeat()
	if last.IsZero() {
		last = l.since
	}
	return l.now().Sub(last) <= l.threshold
}
