package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"time"
)

// State is where a chaos run is in its life:
// running → (aborted | recovering → (passed | failed | aborted)).
type State string

// States of a run.
const (
	StateRunning    State = "running"
	StateRecovering State = "recovering"
	StatePassed     State = "passed"
	StateFailed     State = "failed"
	StateAborted    State = "aborted"
)

// Terminal reports whether the run is over: passed, failed or aborted.
func (s State) Terminal() bool {
	return s == StatePassed || s == StateFailed || s == StateAborted
}

// Valid reports whether s is one of the five states.
func (s State) Valid() bool {
	return s == StateRunning || s == StateRecovering || s.Terminal()
}

// CanBecome reports whether a run in state s may be updated to state next.
// Staying put is allowed (to update other fields); a terminal state is
// final. The store enforces this so that two racing decisions (a finish
// request and an abort by the evaluator) cannot both win.
func (s State) CanBecome(next State) bool {
	if s == next {
		return true
	}
	switch s {
	case StateRunning:
		return next == StateRecovering || next == StateAborted
	case StateRecovering:
		return next == StatePassed || next == StateFailed || next == StateAborted
	}
	return false
}

// Run is one chaos experiment run, as persisted and as served by the API.
type Run struct {
	ID         string     `json:"id"`
	Experiment string     `json:"experiment"`
	State      State      `json:"state"`
	Reason     string     `json:"reason,omitempty"`
	StartedAt  time.Time  `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"` // when the chaos was declared finished (recovery starts)
	EndedAt    *time.Time `json:"endedAt,omitempty"`    // when the run reached a terminal state
	// BudgetSpent is the largest share of a listed SLO's error budget spent
	// since the start (a ratio).
	BudgetSpent float64 `json:"budgetSpent"`
	// Baseline holds bad/total counts per SLO at the start, to compute the
	// spend; opaque to the store.
	Baseline map[string]Counts `json:"baseline,omitempty"`
	// Timeline is kept apart from the record (see AppendTimeline): the
	// store fills it in on GetRun and ignores it on UpdateRun.
	Timeline []TimelineEntry `json:"timeline"`
}

// Counts are event counts of an SLO.
type Counts struct {
	Bad   float64 `json:"bad"`
	Total float64 `json:"total"`
}

// TimelineEntry is one verdict, measurement or state change of a run.
type TimelineEntry struct {
	At         time.Time `json:"at"`
	Hypothesis string    `json:"hypothesis,omitempty"`
	Probe      string    `json:"probe,omitempty"`
	SLO        string    `json:"slo,omitempty"`
	// Value is null when there was no value (NaN, no data, error): JSON
	// cannot carry NaN, and "no value" must not read as 0.
	Value   *float64 `json:"value"`
	Verdict string   `json:"verdict"` // pass | fail | unknown, or a state change like "aborted"
	Message string   `json:"message,omitempty"`
}

// FloatPtr returns a pointer to v, or nil when v is NaN or infinite, which
// JSON cannot carry.
func FloatPtr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// idLayout makes IDs sort like their start times, to the millisecond.
const idLayout = "20060102T150405.000Z"

// NewID returns a run ID for a run started at t: the UTC time to the
// millisecond and 8 random hex digits, e.g. 20261128T053300.123Z-1a2b3c4d.
// IDs sort by time, are unique without coordination between replicas, and
// are safe in URLs and file names.
func NewID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24: it crashes the program instead
	return t.UTC().Format(idLayout) + "-" + hex.EncodeToString(b[:])
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// validate checks what the store relies on and what JSON cannot hold.
func (r *Run) validate() error {
	switch {
	case !idRe.MatchString(r.ID):
		return fmt.Errorf("%w: id %q must be 1-128 letters, digits, '.', '_' or '-'", ErrInvalidRun, r.ID)
	case r.Experiment == "":
		return fmt.Errorf("%w: experiment is empty", ErrInvalidRun)
	case !r.State.Valid():
		return fmt.Errorf("%w: unknown state %q", ErrInvalidRun, r.State)
	case r.StartedAt.Before(time.Unix(0, 0)):
		return fmt.Errorf("%w: startedAt %s is not set", ErrInvalidRun, r.StartedAt)
	case !finite(r.BudgetSpent):
		return fmt.Errorf("%w: budgetSpent is %v", ErrInvalidRun, r.BudgetSpent)
	}
	for slo, c := range r.Baseline {
		if !finite(c.Bad) || !finite(c.Total) {
			return fmt.Errorf("%w: baseline of %q is %v/%v", ErrInvalidRun, slo, c.Bad, c.Total)
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
