package evaluator

import (
	"strconv"
	"time"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/slo"
)

// Num is api.Num: a float that marshals NaN and ±Inf as JSON null.
type Num = api.Num

// WindowStatus is an SLO measured over one window.
type WindowStatus struct {
	Window   string        `json:"window"`
	Duration time.Duration `json:"-"`
	Bad      Num           `json:"badEvents"`
	Total    Num           `json:"totalEvents"`
	SLI      Num           `json:"sli"`      // good/total; null with no traffic
	BurnRate Num           `json:"burnRate"` // null when incomplete
	// Complete is false while part of the window could not be fetched.
	Complete bool `json:"complete"`
	// Coverage is the share of the window with history to measure: below 1
	// while the window reaches back beyond what the backend keeps and
	// slogate has not kept itself (it has run for less than the window).
	Coverage Num `json:"coverage"`
	// onlyUncovered says the window misses nothing but such history: its
	// numbers are those of the part covered.
	onlyUncovered bool
}

// Measured reports whether the window's numbers can be used: complete, or,
// when partial is allowed (slo.IncompletePartial), missing only history
// that no longer exists.
func (w WindowStatus) Measured(partial bool) bool {
	return w.Complete || partial && w.onlyUncovered
}

// PeriodStatus is the calendar period of a calendar SLO at an evaluation:
// the budget is the whole period's, spent from Start.
type PeriodStatus struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// TimeLeft is End minus the evaluation time, in seconds.
	TimeLeft float64 `json:"timeLeftSeconds"`
	// Length is the period's length in seconds (a 31-day month, a month
	// with a daylight saving change: an hour more or less).
	Length float64 `json:"lengthSeconds"`
	// TimeZone is where the period's boundaries are midnight.
	TimeZone string `json:"timeZone"`
}

// ForecastStatus is an SLO's budget forecast (slo.Forecast): the burn rate
// over Window goes on.
type ForecastStatus struct {
	Window   string `json:"window"`
	BurnRate Num    `json:"burnRate"`
	// ExhaustedIn is the time until the budget is spent, in seconds (0:
	// spent already); null when it lasts to the horizon.
	ExhaustedIn Num `json:"exhaustionSeconds"`
	// BudgetAtEnd is the budget remaining at the horizon: the end of a
	// calendar period, or one rolling window ahead.
	BudgetAtEnd Num     `json:"budgetRemainingAtEnd"`
	Horizon     float64 `json:"horizonSeconds"`
}

// AlertStatus is the state of one burn-rate alert severity.
type AlertStatus struct {
	Severity slo.Severity `json:"severity"`
	Firing   bool         `json:"firing"`
	Since    *time.Time   `json:"since,omitempty"`
	// Condition is the tier that fired, like "burn rate > 14.4 over 1h and 5m".
	Condition string `json:"condition,omitempty"`
	BurnRate  Num    `json:"burnRate"` // long-window burn rate of that tier
	Enabled   bool   `json:"enabled"`
	// LowTraffic is true when a tier counted fewer events than its
	// minEvents: it could not fire, and the state held.
	LowTraffic bool `json:"lowTraffic"`
}

// SLOStatus is the latest evaluation of an SLO.
type SLOStatus struct {
	Name        string            `json:"name"`
	Service     string            `json:"service"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	// Parent and Group are set on the SLO of one group of a grouped SLO:
	// the grouped SLO's name and the group's label values.
	Parent string            `json:"parent,omitempty"`
	Group  map[string]string `json:"group,omitempty"`
	// Groups is set on a grouped SLO, whose own numbers are the aggregate
	// over all groups.
	Groups    *GroupsStatus `json:"groups,omitempty"`
	Objective float64       `json:"objective"` // percent
	Window    string        `json:"window"`
	// BudgetingMethod is occurrences (events), timeslices (the share of
	// good time slices) or ratioTimeslices (the mean of their ratios);
	// TimeSliceWindow is the slices' length for the latter two.
	BudgetingMethod string         `json:"budgetingMethod"`
	TimeSliceWindow string         `json:"timeSliceWindow,omitempty"`
	SLI             Num            `json:"sli"`
	BudgetRemaining Num            `json:"errorBudgetRemaining"`
	Windows         []WindowStatus `json:"windows"`
	// Period is the calendar period the budget belongs to; nil for a
	// rolling window.
	Period *PeriodStatus `json:"period,omitempty"`
	// Forecast is what the recent burn rate does to the budget if it goes
	// on; nil while the windows it needs are incomplete.
	Forecast    *ForecastStatus `json:"forecast,omitempty"`
	Alerts      []AlertStatus   `json:"alerts"`
	EvaluatedAt time.Time       `json:"evaluatedAt"`
	LastSuccess time.Time       `json:"lastSuccessAt"`
	Fresh       bool            `json:"fresh"`
	Error       string          `json:"error,omitempty"`
}

// GroupsStatus is what a grouped SLO knows of its groups.
type GroupsStatus struct {
	By []string `json:"by"`
	// Policy is the gate policy: each (every group must meet it) or
	// aggregate.
	Policy slo.GroupPolicy `json:"policy"`
	// Limit is maxGroups; Found the groups with data, Tracked those
	// followed (at most Limit), Limited those found but not followed.
	Limit   int `json:"limit"`
	Found   int `json:"found"`
	Tracked int `json:"tracked"`
	Limited int `json:"limited"`
	// Members are the names of the groups' SLOs, sorted.
	Members []string `json:"members"`
	// Discovered says the groups were looked for at least once; until then
	// Members is empty for want of an answer, not of groups.
	Discovered bool `json:"discovered"`
}

// Window returns the status of window w, if evaluated.
func (s *SLOStatus) WindowStatus(w time.Duration) (WindowStatus, bool) {
	for _, ws := range s.Windows {
		if ws.Duration == w {
			return ws, true
		}
	}
	return WindowStatus{}, false
}

// ProbeStatus is the latest measurement of one probe.
type ProbeStatus struct {
	Name      string      `json:"name"`
	Query     string      `json:"query,omitempty"`
	SLO       string      `json:"slo,omitempty"`
	Tolerance string      `json:"tolerance"`
	Value     Num         `json:"value"`
	Outcome   string      `json:"outcome"` // value, no data, NaN, several series, error
	Within    *bool       `json:"withinTolerance"`
	Verdict   slo.Verdict `json:"verdict"` // of this evaluation, before debouncing
	Series    int         `json:"series"`
	Error     string      `json:"error,omitempty"`
	// Baseline is what a relative tolerance compared Value with: the
	// probe's baseline, or the control group's value; absent for fixed
	// tolerances.
	Baseline *ProbeBaseline `json:"baseline,omitempty"`
	// Events is what the probe's events query counted (minEvents);
	// absent without a guard.
	Events *Num `json:"events,omitempty"`
}

// ProbeBaseline is the reference of a relative tolerance at one
// evaluation.
type ProbeBaseline struct {
	// Mode is baseline (the probe's own past), compare (a control group
	// now) or mann-whitney (both groups' samples).
	Mode string `json:"mode"`
	// Value is the baseline, the control group's value, or with a test
	// the median of the control samples (Value of the probe is then the
	// experiment's median).
	Value Num `json:"value"`
	// From and To are the baseline window, or the span of the samples.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Frozen says the reference belongs to the run that watches the
	// hypothesis: a baseline taken before it started, samples since then.
	Frozen bool        `json:"frozen"`
	Test   *TestStatus `json:"test,omitempty"`
}

// TestStatus is the state of a statistical comparison.
type TestStatus struct {
	ControlSamples    int `json:"controlSamples"`
	ExperimentSamples int `json:"experimentSamples"`
	MinSamples        int `json:"minSamples"`
	// PFail and PPass are the one-sided p-values of "worse by at least
	// minEffect" and "better than that"; Alpha the level they are held to
	// at this look.
	PFail    Num    `json:"pFail"`
	PPass    Num    `json:"pPass"`
	Alpha    Num    `json:"alpha"`
	Decision string `json:"decision"` // pass, fail, inconclusive, too-few
}

// HypothesisStatus is the latest evaluation of a hypothesis.
type HypothesisStatus struct {
	Name        string        `json:"name"`
	Verdict     slo.Verdict   `json:"verdict"`
	Since       time.Time     `json:"since"`
	Probes      []ProbeStatus `json:"probes"`
	EvaluatedAt time.Time     `json:"evaluatedAt"`
	LastSuccess time.Time     `json:"lastSuccessAt"`
	Fresh       bool          `json:"fresh"`
	// Streak is how many evaluations in a row gave the same raw verdict.
	Streak    int         `json:"streak"`
	RawStreak slo.Verdict `json:"streakVerdict"`
}

func windowName(d time.Duration) string { return slo.FormatDuration(d) }

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
