package chaos

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/internal/clip"
	"github.com/slogate/slogate/slo"
)

// A run's life is decided by pure functions, like Prometheus's alert state
// machine: Decide for every evaluation, DecideStart, DecideFinish and
// MaxAbortReason bounds the reason given to an abort, in bytes.
const MaxAbortReason = 1024

// DecideAbort for the API. They read the run, what was observed and the
// time they are given, and return what is to change; the Manager stores
// the change, and only then tells anyone (metrics, long polls,
// OnTransition).

// Cause is why a run changed state: the machine-readable half of its
// reason, for tests, logs and whoever reacts to transitions.
type Cause string

// Causes of a state change.
const (
	CauseStarted           Cause = "started"            // → running: the gate was open
	CauseHypothesisFailed  Cause = "hypothesis-failed"  // running → aborted
	CauseBudgetSpent       Cause = "budget-spent"       // running → aborted: over maxBudgetSpend
	CauseMaxDuration       Cause = "max-duration"       // running → aborted: longer than maxDuration
	CauseUnsupervised      Cause = "hypothesis-unknown" // running → aborted: unknown for Policy.UnknownAbortAfter evaluations
	CauseExperimentRemoved Cause = "experiment-removed" // running or recovering → aborted
	CauseFinished          Cause = "finished"           // running → recovering, through the API
	CauseAbortedByAPI      Cause = "aborted-by-api"     // running or recovering → aborted
	CauseRecovered         Cause = "recovered"          // recovering → passed
	CauseNotRecovered      Cause = "not-recovered"      // recovering → failed: not within recovery
)

// Policy is what Decide takes from the service's configuration rather than
// from the experiment.
type Policy struct {
	// UnknownAbortAfter is how many evaluations in a row a running
	// experiment's hypothesis may be unknown before the run is aborted
	// (unless the experiment says onUnknown: open).
	UnknownAbortAfter int
}

// Observations are what one evaluation measured of an experiment's
// hypotheses and SLOs, in the experiment's order.
type Observations struct {
	Hypotheses []HypothesisObservation
	SLOs       []SLOObservation
}

// HypothesisObservation is the latest evaluation of one of the
// experiment's hypotheses.
type HypothesisObservation struct {
	Name string
	// Evaluated is false when the snapshot has no status for it (not
	// evaluated yet, or not by this replica).
	Evaluated bool
	Status    evaluator.HypothesisStatus
}

// SLOObservation is how much of one of the experiment's SLOs' error budget
// the run has spent.
type SLOObservation struct {
	Name string
	// Spent is the share of the SLO window's error budget that bad events
	// since the run's start spent; meaningful only when Known.
	Spent float64
	Known bool
}

// Observe reads what Decide needs of experiment exp from one snapshot, for
// a run started at since and an evaluation at at.
func Observe(st Statuses, exp *slo.Experiment, since, at time.Time) Observations {
	var obs Observations
	for _, name := range exp.Hypotheses {
		h, ok := st.Hypothesis(name)
		obs.Hypotheses = append(obs.Hypotheses, HypothesisObservation{Name: name, Evaluated: ok, Status: h})
	}
	for _, name := range exp.SLOs {
		spent, ok := budgetSpent(st, name, since, at)
		obs.SLOs = append(obs.SLOs, SLOObservation{Name: name, Spent: spent, Known: ok})
		obs.SLOs = append(obs.SLOs, observeGroups(st, name, since, at)...)
	}
	return obs
}

// observeGroups observes the groups of a grouped SLO whose policy is each:
// the group that spent the largest share of its own budget, and the first
// whose spend is unknown, if any. One entry for the worst instead of one
// per group keeps the timeline of a run over a hundred groups readable;
// the decision is the same, since every group has the same limit.
func observeGroups(st Statuses, name string, since, at time.Time) []SLOObservation {
	def := st.SLODef(name)
	if def == nil || !def.Grouped() || def.GroupPolicyOrDefault() != slo.GroupsEach {
		return nil
	}
	s, _ := st.SLO(name)
	if s.Groups == nil {
		return nil
	}
	var worst, unknown *SLOObservation
	for _, member := range s.Groups.Members {
		spent, ok := budgetSpent(st, member, since, at)
		switch {
		case !ok && unknown == nil:
			unknown = &SLOObservation{Name: member, Spent: spent}
		case ok && (worst == nil || spent > worst.Spent):
			worst = &SLOObservation{Name: member, Spent: spent, Known: true}
		}
	}
	var out []SLOObservation
	for _, o := range []*SLOObservation{worst, unknown} {
		if o != nil {
			out = append(out, *o)
		}
	}
	return out
}

// budgetSpent is the share of the SLO window's error budget that bad events
// in (from, to] spent.
func budgetSpent(st Statuses, name string, from, to time.Time) (float64, bool) {
	def := st.SLODef(name)
	s, ok := st.SLO(name)
	if def == nil || !ok || !s.Fresh {
		return math.NaN(), false
	}
	if !to.After(from) {
		return 0, true
	}
	bad, _, complete, ok := st.SLOCounts(name, from, to)
	if !ok || !complete {
		return math.NaN(), false
	}
	ws, ok := s.WindowStatus(def.Window)
	if !ok || !ws.Measured(def.Gate.OnIncompleteWindow == slo.IncompletePartial) {
		return math.NaN(), false
	}
	return slo.BudgetSpent(bad, float64(ws.Total), def.Objective), true
}

// Decision is what is to become of a run.
type Decision struct {
	// At is when the decision was taken: the evaluation time, or the time
	// of the API call.
	At time.Time
	// State is the run's next state: its current one when Cause is empty.
	State api.RunState
	// Cause and Reason say why the state changes; both are empty when it
	// does not. Reason is what users read, in the run and its timeline.
	Cause  Cause
	Reason string
	// Entries are to be appended to the timeline: the evaluation's
	// measurements, then the state change, if any.
	Entries []store.TimelineEntry
	// UnknownStreak is the run's new count of evaluations in a row that
	// ended with a hypothesis unknown.
	//
	// It is kept in the stored run, not in the memory of the process that
	// supervises it: a restart (a crash loop caused by the very chaos
	// being injected, say) or, once runs are shared through PostgreSQL,
	// a replica taking over the run must not give an unwatchable run a
	// fresh allowance of unknown evaluations. The record is written every
	// evaluation anyway, for the timeline, so this costs no extra write.
	UnknownStreak int
	// BudgetSpent is the largest share of a listed SLO's error budget the
	// run has spent, this evaluation included.
	BudgetSpent float64
	// Repeats is the run's new count of unrecorded repeats per timeline
	// key (store.Run.Repeats).
	Repeats map[string]int
}

// Changed reports whether the run changes state.
func (d Decision) Changed() bool { return d.Cause != "" }

// Apply returns the record of run after d, leaving run as it is: the state
// and reason, when the chaos finished and the run ended, the streak and
// spend, and the timeline with d's entries.
func (d Decision) Apply(run *store.Run) *store.Run {
	next := *run
	next.UnknownStreak, next.BudgetSpent, next.Repeats = d.UnknownStreak, d.BudgetSpent, d.Repeats
	if d.Changed() {
		at := d.At
		if run.State == api.StateRunning && d.State == api.StateRecovering {
			next.FinishedAt = &at
		}
		if d.State.Terminal() {
			next.EndedAt = &at
		}
		next.State, next.Reason = d.State, d.Reason
	}
	next.Timeline = append(slices.Clip(run.Timeline), d.Entries...)
	return &next
}

// keep is the decision that changes nothing about run.
func keep(run *store.Run, at time.Time) Decision {
	return Decision{At: at, State: run.State, UnknownStreak: run.UnknownStreak, BudgetSpent: run.BudgetSpent, Repeats: run.Repeats}
}

// collapseRepeats leaves out of d's entries the outcomes without a value
// (an error, no data) that only repeat the last entry recorded for the same
// hypothesis and probe, or SLO, and counts them in d.Repeats instead; the
// next entry recorded for that key carries the count. A backend failing the
// same way for hours thus adds two entries to a run, not one per
// evaluation. Nothing is left out of a decision that changes the run's
// state: the run's last outcomes are all on record.
func (d Decision) collapseRepeats(run *store.Run) Decision {
	last := map[string]store.TimelineEntry{}
	for _, e := range run.Timeline {
		last[store.TimelineKey(e)] = e
	}
	repeats := maps.Clone(run.Repeats)
	if repeats == nil {
		repeats = map[string]int{}
	}
	entries := make([]store.TimelineEntry, 0, len(d.Entries))
	for _, e := range d.Entries {
		k := store.TimelineKey(e)
		if k != "" {
			prev, seen := last[k]
			if !d.Changed() && seen && e.Value == nil && prev.Value == nil && e.Verdict == prev.Verdict && e.Message == prev.Message {
				repeats[k]++
				continue
			}
			e.Repeats = repeats[k]
			delete(repeats, k)
		}
		entries = append(entries, e)
	}
	d.Entries = entries
	d.Repeats = repeats
	if len(repeats) == 0 {
		d.Repeats = nil
	}
	return d
}

// to makes d a change to state, with its timeline entry last.
func (d Decision) to(state api.RunState, cause Cause, reason string) Decision {
	d.State, d.Cause, d.Reason = state, cause, reason
	d.Entries = append(d.Entries, store.TimelineEntry{At: d.At, Verdict: string(state), Message: reason})
	return d
}

// Decide is what becomes of an active run after the evaluation at time at
// observed obs; exp is the experiment's definition, nil when it is gone.
//
// A running run is aborted, in this order of precedence, when a hypothesis
// fails, when an SLO's budget spent since the start exceeds maxBudgetSpend,
// when it has run longer than maxDuration, or when a hypothesis has been
// unknown for p.UnknownAbortAfter evaluations in a row and the experiment
// does not say onUnknown: open. A recovering run passes at the first
// evaluation at or after the finish in which every hypothesis passes, and
// fails once recovery has elapsed without one; an evaluation that predates
// the finish says nothing about recovery. Either is aborted when its
// experiment's definition was removed. Every evaluation's measurements go
// to the timeline, whatever is decided, except an outcome without a value
// that repeats the last one recorded (see collapseRepeats); a terminal run
// is left as it is.
func Decide(run *store.Run, obs Observations, exp *slo.Experiment, at time.Time, p Policy) Decision {
	return decide(run, obs, exp, at, p).collapseRepeats(run)
}

func decide(run *store.Run, obs Observations, exp *slo.Experiment, at time.Time, p Policy) Decision {
	d := keep(run, at)
	if run.State.Terminal() {
		return d
	}
	if exp == nil {
		return d.to(api.StateAborted, CauseExperimentRemoved, "experiment definition was removed")
	}
	var failed, unknown []string
	for _, h := range obs.Hypotheses {
		if !h.Evaluated {
			unknown = append(unknown, h.Name+" (not evaluated)")
			d.Entries = append(d.Entries, store.TimelineEntry{At: at, Hypothesis: h.Name, Verdict: string(slo.Unknown)})
			continue
		}
		for _, pr := range h.Status.Probes {
			e := store.TimelineEntry{
				At: at, Hypothesis: h.Name, Probe: pr.Name, Value: store.FloatPtr(float64(pr.Value)),
				Verdict: string(pr.Verdict), Message: pr.Error,
			}
			if pr.Baseline != nil {
				e.Baseline = store.FloatPtr(float64(pr.Baseline.Value))
			}
			d.Entries = append(d.Entries, e)
		}
		switch {
		case h.Status.Verdict == slo.Fail:
			failed = append(failed, h.Name+": "+failingProbes(h.Status))
		case h.Status.Verdict == slo.Unknown && !awaitingEvidence(h.Status):
			unknown = append(unknown, h.Name+": "+failingProbes(h.Status))
		}
	}
	overspent := ""
	for _, s := range obs.SLOs {
		e := store.TimelineEntry{At: at, SLO: s.Name, Value: store.FloatPtr(s.Spent), Verdict: string(slo.Pass), Message: "share of the error budget spent since the start"}
		switch {
		case !s.Known:
			e.Value, e.Verdict, e.Message = nil, string(slo.Unknown), "budget spent unknown: SLO data incomplete"
		case exp.MaxBudgetSpend > 0 && s.Spent > exp.MaxBudgetSpend:
			e.Verdict = string(slo.Fail)
			overspent = fmt.Sprintf("SLO %s: run spent %s of the error budget, more than maxBudgetSpend %s", s.Name, pct(s.Spent), pct(exp.MaxBudgetSpend))
		}
		if s.Known && s.Spent > d.BudgetSpent {
			d.BudgetSpent = s.Spent
		}
		d.Entries = append(d.Entries, e)
	}
	if len(unknown) > 0 {
		d.UnknownStreak++
	} else {
		d.UnknownStreak = 0
	}

	switch run.State {
	case api.StateRunning:
		switch {
		case len(failed) > 0:
			return d.to(api.StateAborted, CauseHypothesisFailed, "hypothesis failed: "+strings.Join(failed, "; "))
		case overspent != "":
			return d.to(api.StateAborted, CauseBudgetSpent, overspent)
		case exp.MaxDuration > 0 && at.Sub(run.StartedAt) > exp.MaxDuration:
			return d.to(api.StateAborted, CauseMaxDuration, fmt.Sprintf("ran longer than maxDuration %s", slo.FormatDuration(exp.MaxDuration)))
		case exp.OnUnknown != slo.GateOpen && d.UnknownStreak >= p.UnknownAbortAfter:
			return d.to(api.StateAborted, CauseUnsupervised, fmt.Sprintf("hypothesis unknown for %d evaluations, the run cannot be supervised: %s", d.UnknownStreak, strings.Join(unknown, "; ")))
		}
	case api.StateRecovering:
		if run.FinishedAt == nil || at.Before(*run.FinishedAt) {
			// This evaluation predates the finish: it says nothing about recovery.
			break
		}
		if len(failed) == 0 && len(unknown) == 0 {
			return d.to(api.StatePassed, CauseRecovered, "hypotheses hold after the experiment")
		}
		if !at.Before(run.FinishedAt.Add(exp.Recovery)) {
			why := strings.Join(slices.Concat(failed, unknown), "; ")
			return d.to(api.StateFailed, CauseNotRecovered, fmt.Sprintf("hypotheses did not hold again within recovery %s: %s", slo.FormatDuration(exp.Recovery), why))
		}
	}
	return d
}

// DecideStart is the run that a start of ans.Experiment at time at opens
// if the gate answer ans is open, without its ID; a closed or unknown gate
// gives ErrGateClosed.
func DecideStart(ans *api.GateAnswer, at time.Time) (*store.Run, error) {
	if !ans.Open() {
		return nil, fmt.Errorf("%w: experiment %q: %s", ErrGateClosed, ans.Experiment, ans.Status)
	}
	at = at.UTC()
	return &store.Run{
		Experiment: ans.Experiment, State: api.StateRunning, StartedAt: at,
		Timeline: []store.TimelineEntry{{At: at, Verdict: string(api.StateRunning), Message: "run started: gate open"}},
	}, nil
}

// DecideFinish declares the chaos of a running run over at time at: it
// starts recovering. Any other run gives ErrConflict.
func DecideFinish(run *store.Run, at time.Time) (Decision, error) {
	if run.State != api.StateRunning {
		return Decision{}, fmt.Errorf("%w: run %s is %s, only a running run can finish", ErrConflict, run.ID, run.State)
	}
	return keep(run, at).to(api.StateRecovering, CauseFinished, "chaos finished; checking recovery"), nil
}

// DecideAbort ends a running or recovering run as aborted at time at, for
// reason ("aborted through the API" when empty). A run that is over gives
// ErrConflict.
func DecideAbort(run *store.Run, reason string, at time.Time) (Decision, error) {
	if run.State.Terminal() {
		return Decision{}, fmt.Errorf("%w: run %s already %s", ErrConflict, run.ID, run.State)
	}
	if reason == "" {
		reason = "aborted through the API"
	}
	// The caller's text goes into the run, its timeline and the
	// ChaosExperimentAborted alert: bounded like a backend's.
	return keep(run, at).to(api.StateAborted, CauseAbortedByAPI, clip.String(reason, MaxAbortReason)), nil
}

// awaitingEvidence reports whether every probe of an unknown hypothesis is
// unknown for want of evidence, not of data: too little traffic, too few
// samples, or a test that has not decided yet. Prometheus answers, so the
// run is watched, and it goes on; a missing or failed measurement counts
// toward the abort instead.
func awaitingEvidence(h evaluator.HypothesisStatus) bool {
	for _, p := range h.Probes {
		switch {
		case p.Verdict != slo.Unknown:
		case p.Outcome == evaluator.OutcomeLowTraffic, p.Outcome == evaluator.OutcomeTooFew, p.Outcome == evaluator.OutcomeInconclusive:
		default:
			return false
		}
	}
	return h.Fresh
}

func failingProbes(h evaluator.HypothesisStatus) string {
	var parts []string
	for _, p := range h.Probes {
		if p.Verdict != slo.Pass {
			parts = append(parts, p.Name+" "+probeMessage(p))
		}
	}
	if len(parts) == 0 {
		return "verdict " + string(h.Verdict)
	}
	return strings.Join(parts, ", ")
}
