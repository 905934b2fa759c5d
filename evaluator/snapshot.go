package evaluator

import (
	"slices"
	"time"

	"github.com/slogate/slogate/slo"
)

// Snapshot is one evaluation cycle's truth: the definitions it evaluated and
// every status it computed, published at once when the cycle ends (and when
// definitions are swapped). It is never modified after publication, so the
// API, the UI, the metrics collector, the gate, the run supervisor and the
// alerts each read a whole cycle, never a mix of two and never a field a
// worker is writing.
//
// One thing changes with the reader's clock: a status that was not
// refreshed for Options.StaleAfter reads as stale (and a hypothesis verdict
// as unknown), so that a stuck loop or a silent Prometheus never keeps a
// gate open. Each
// Snapshot value is read as of one time, fixed when it was handed out.
type Snapshot struct {
	at, lastGood time.Time
	cycles       int
	staleAfter   time.Duration
	defs         *slo.Set
	slos         map[string]*sloEntry
	sloNames     []string // sorted
	hyps         map[string]HypothesisStatus
	hypNames     []string // sorted
	// readAt is the reader's time, for freshness.
	readAt time.Time
}

// sloEntry is an SLO in a snapshot: its status, and its tracker for counts
// over arbitrary spans (a run's budget spend, the charts).
type sloEntry struct {
	status     SLOStatus
	tracker    *sloTracker
	backfilled bool
}

// Snapshot returns the latest published snapshot, read as of now.
func (e *Evaluator) Snapshot() *Snapshot {
	s := *e.snap.Load()
	s.readAt = e.opts.Now()
	return &s
}

// Definitions are the definitions the snapshot holds (never nil).
func (s *Snapshot) Definitions() *slo.Set { return s.defs }

// SLODef is the definition of the SLO named name: of an SLO this replica
// evaluates, including the SLO of one group of a grouped SLO, or else of
// the definitions; nil if there is none.
func (s *Snapshot) SLODef(name string) *slo.SLO {
	if entry, ok := s.slos[name]; ok {
		return entry.tracker.def
	}
	return s.defs.SLO(name)
}

// ReadAt is the time the snapshot is read as of: when it was handed out.
func (s *Snapshot) ReadAt() time.Time { return s.readAt }

// Ready reports whether a cycle has completed since start.
func (s *Snapshot) Ready() bool { return s.cycles > 0 }

// LastCycle is the evaluation time of the snapshot's cycle, and of the
// latest cycle in which every query succeeded.
func (s *Snapshot) LastCycle() (last, lastGood time.Time) { return s.at, s.lastGood }

// SLOs returns the statuses of the SLOs this replica evaluates, by name.
func (s *Snapshot) SLOs() []SLOStatus {
	out := make([]SLOStatus, 0, len(s.sloNames))
	for _, name := range s.sloNames {
		out = append(out, s.sloStatus(s.slos[name].status))
	}
	return out
}

// SLO returns one SLO's status; false if this replica does not evaluate it.
func (s *Snapshot) SLO(name string) (SLOStatus, bool) {
	entry, ok := s.slos[name]
	if !ok {
		return SLOStatus{}, false
	}
	return s.sloStatus(entry.status), true
}

func (s *Snapshot) sloStatus(st SLOStatus) SLOStatus {
	st.Fresh = st.Fresh && s.fresh(st.LastSuccess)
	return st
}

// Hypotheses returns every hypothesis status, by name.
func (s *Snapshot) Hypotheses() []HypothesisStatus {
	out := make([]HypothesisStatus, 0, len(s.hypNames))
	for _, name := range s.hypNames {
		out = append(out, s.hypStatus(s.hyps[name]))
	}
	return out
}

// Hypothesis returns one hypothesis' status.
func (s *Snapshot) Hypothesis(name string) (HypothesisStatus, bool) {
	st, ok := s.hyps[name]
	if !ok {
		return HypothesisStatus{}, false
	}
	return s.hypStatus(st), true
}

func (s *Snapshot) hypStatus(st HypothesisStatus) HypothesisStatus {
	st.Fresh = st.Fresh && s.fresh(st.LastSuccess)
	if !s.fresh(st.EvaluatedAt) && st.Verdict != slo.Unknown {
		// The loop has not evaluated it for StaleAfter (stuck, waiting on
		// a silent Prometheus, or shutting down): an old verdict is not a
		// verdict.
		st.Verdict = slo.Unknown
	}
	return st
}

func (s *Snapshot) fresh(last time.Time) bool {
	return !last.IsZero() && s.readAt.Sub(last) < s.staleAfter
}

// SLOCounts returns the bad and total events of an SLO in (from, to], and
// whether all of that span could be measured. The counts come from the
// SLO's slice buffers, which only the evaluation loop writes: read by the
// run supervisor after a cycle, they are that cycle's.
func (s *Snapshot) SLOCounts(name string, from, to time.Time) (bad, total float64, complete bool, ok bool) {
	entry, found := s.slos[name]
	if !found {
		return 0, 0, false, false
	}
	c, missing := entry.tracker.countsBetween(from, to)
	return c.Bad, c.Total, missing == 0, true
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// The accessors below read the latest snapshot, one call each: for tests
// and tools that look at one status. Code that reads several statuses to
// decide something (a gate answer, a page, a scrape) takes one Snapshot
// and reads them all from it.

// SLO returns one SLO's status from the latest snapshot.
func (e *Evaluator) SLO(name string) (SLOStatus, bool) { return e.Snapshot().SLO(name) }

// SLOs returns every SLO's status from the latest snapshot.
func (e *Evaluator) SLOs() []SLOStatus { return e.Snapshot().SLOs() }

// Hypothesis returns one hypothesis' status from the latest snapshot.
func (e *Evaluator) Hypothesis(name string) (HypothesisStatus, bool) {
	return e.Snapshot().Hypothesis(name)
}

// Hypotheses returns every hypothesis' status from the latest snapshot.
func (e *Evaluator) Hypotheses() []HypothesisStatus { return e.Snapshot().Hypotheses() }

// Ready reports whether a cycle has completed since start.
func (e *Evaluator) Ready() bool { return e.Snapshot().Ready() }

// History returns an SLO's chart series from the latest snapshot.
func (e *Evaluator) History(name string) (SLOHistory, bool) { return e.Snapshot().History(name) }

// Fresh applies the snapshot's freshness rule to a last successful
// evaluation at last: what a status published by another shard is judged
// by too.
func (s *Snapshot) Fresh(last time.Time) bool { return s.fresh(last) }
