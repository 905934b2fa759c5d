package api

import "time"

// RunState is where a chaos run is in its life:
// running → (aborted | recovering → (passed | failed | aborted)).
type RunState string

// States of a run.
const (
	StateRunning    RunState = "running"
	StateRecovering RunState = "recovering"
	StatePassed     RunState = "passed"
	StateFailed     RunState = "failed"
	StateAborted    RunState = "aborted"
)

// Terminal reports whether the run is over: passed, failed or aborted.
func (s RunState) Terminal() bool {
	return s == StatePassed || s == StateFailed || s == StateAborted
}

// Valid reports whether s is one of the five states.
func (s RunState) Valid() bool {
	return s == StateRunning || s == StateRecovering || s.Terminal()
}

// CanBecome reports whether a run in state s may later be in state next.
// Staying put is allowed (a run changes in other ways); a terminal state
// is final.
func (s RunState) CanBecome(next RunState) bool {
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

// Run is a chaos run as the run endpoints serve it; the start call answers
// 201 with one.
type Run struct {
	ID         string   `json:"id"`
	Experiment string   `json:"experiment"`
	State      RunState `json:"state"`
	// Reason says why the run is in its state: a state change's message.
	Reason    string    `json:"reason,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	// FinishedAt is when the chaos was declared finished (recovery starts).
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// EndedAt is when the run reached a terminal state.
	EndedAt *time.Time `json:"endedAt,omitempty"`
	// BudgetSpent is the largest share of a listed SLO's error budget the
	// run spent since its start (a ratio).
	BudgetSpent float64 `json:"budgetSpent"`
	// Supervisor is the replica that supervises the run when replicas
	// share a PostgreSQL store; absent with the embedded store.
	Supervisor string `json:"supervisor,omitempty"`
	// Timeline is null in listings, which leave it out.
	Timeline []TimelineEntry `json:"timeline"`
}

// TimelineEntry is one verdict, measurement or state change of a run. A
// state change has neither hypothesis, probe nor SLO, and the new state as
// its verdict.
type TimelineEntry struct {
	At         time.Time `json:"at"`
	Hypothesis string    `json:"hypothesis,omitempty"`
	Probe      string    `json:"probe,omitempty"`
	// SLO is set on the share of its error budget spent since the start.
	SLO string `json:"slo,omitempty"`
	// Value is null when there was no value (no data, NaN, error): JSON
	// cannot carry NaN, and "no value" must not read as 0.
	Value *float64 `json:"value"`
	// Baseline is what a relative tolerance compared Value with: the
	// probe's baseline (taken before the run started) or the control
	// group's value; absent for fixed tolerances.
	Baseline *float64 `json:"baseline,omitempty"`
	Verdict  string   `json:"verdict"` // pass, fail, unknown, or a state like "aborted"
	Message  string   `json:"message,omitempty"`
	// Repeats is how many more evaluations the previous entry of the same
	// hypothesis and probe (or SLO) held unchanged before this one. An
	// outcome without a value (an error, no data) that repeats is not
	// recorded again at every evaluation: only when it starts, when it
	// changes, and when the run changes state.
	Repeats int `json:"repeats,omitempty"`
}
