package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/slogate/slogate/api"
)

// Run is the stored record of a chaos run. Its JSON encoding is the
// database format, kept apart from the API's api.Run (see API) so that
// neither changes the other: fields may be added, with omitempty so that a
// record without them encodes as before, but never renamed or removed, or
// databases written by an earlier slogate no longer load.
type Run struct {
	ID         string       `json:"id"`
	Experiment string       `json:"experiment"`
	State      api.RunState `json:"state"`
	Reason     string       `json:"reason,omitempty"`
	StartedAt  time.Time    `json:"startedAt"`
	FinishedAt *time.Time   `json:"finishedAt,omitempty"` // when the chaos was declared finished (recovery starts)
	EndedAt    *time.Time   `json:"endedAt,omitempty"`    // when the run reached a terminal state
	// BudgetSpent is the largest share of a listed SLO's error budget spent
	// since the start (a ratio).
	BudgetSpent float64 `json:"budgetSpent"`
	// Baseline holds bad/total counts per SLO at the start, to compute the
	// spend; opaque to the store.
	Baseline map[string]Counts `json:"baseline,omitempty"`
	// UnknownStreak is how many evaluations in a row ended with one of the
	// run's hypotheses unknown: the supervisor's (package chaos, which says
	// why it is stored) and not served by the API.
	UnknownStreak int `json:"unknownStreak,omitempty"`
	// Repeats counts, per hypothesis/probe or SLO (TimelineKey), the
	// evaluations that repeated its last timeline entry and were not
	// recorded; the next entry recorded for it carries the count. The
	// supervisor's, like UnknownStreak, and not served by the API.
	Repeats map[string]int `json:"repeats,omitempty"`
	// Supervisor is the replica that supervises the run under the shared
	// store's lease (storage.url); empty with the embedded store, where the
	// one replica does.
	Supervisor string `json:"supervisor,omitempty"`
	// Timeline is kept apart from the record (see AppendTimeline): the
	// store fills it in on GetRun and ignores it on UpdateRun.
	Timeline []TimelineEntry `json:"timeline"`
}

// Counts are event counts of an SLO.
type Counts struct {
	Bad   float64 `json:"bad"`
	Total float64 `json:"total"`
}

// TimelineEntry is the stored record of one verdict, measurement or state
// change of a run. An entry is a plain value that is the same in the
// database and in the API, so it is the wire type itself; the database
// format is pinned by TestOldRecordsLoad, so a change of api.TimelineEntry
// that would break stored runs fails there first.
type TimelineEntry = api.TimelineEntry

// TimelineKey is what a timeline entry is about: its hypothesis and probe,
// or its SLO; "" for a state change.
func TimelineKey(e TimelineEntry) string {
	if e.Hypothesis == "" && e.Probe == "" && e.SLO == "" {
		return ""
	}
	return e.Hypothesis + "/" + e.Probe + "/" + e.SLO
}

// API is the run as the API serves it. A nil timeline (a listing) stays
// nil, which the API sends as null.
func (r *Run) API() *api.Run {
	out := &api.Run{
		ID: r.ID, Experiment: r.Experiment, State: r.State, Reason: r.Reason,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, EndedAt: r.EndedAt,
		BudgetSpent: r.BudgetSpent, Supervisor: r.Supervisor,
	}
	if r.Timeline != nil {
		out.Timeline = append([]api.TimelineEntry{}, r.Timeline...)
	}
	return out
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

// Validate checks what a store relies on and what JSON cannot hold.
func Validate(r *Run) error { return r.validate() }

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
	case r.UnknownStreak < 0:
		return fmt.Errorf("%w: unknownStreak is %d", ErrInvalidRun, r.UnknownStreak)
	}
	for slo, c := range r.Baseline {
		if !finite(c.Bad) || !finite(c.Total) {
			return fmt.Errorf("%w: baseline of %q is %v/%v", ErrInvalidRun, slo, c.Bad, c.Total)
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// ErrLeaseLost is a write under a lease that the replica no longer holds:
// another replica took over, and the write changed nothing.
var ErrLeaseLost = errors.New("lease lost to another replica")

// Lease is the right of one replica (Holder) to supervise runs, as a
// shared store grants it; Fence grows with every change of holder, and a
// write under the lease checks it.
type Lease struct {
	Name   string
	Holder string
	Fence  int64
}
