// Package slo is slogate's domain: SLOs, steady-state hypotheses and chaos
// experiments, the burn-rate and error-budget arithmetic, tolerances, and the
// loading and validation of definition files (native, Sloth and OpenSLO).
//
// It imports only the standard library and Prometheus's model, labels and
// PromQL parser packages, so that it can be reused by a CRD controller later.
package slo

import (
	"strconv"
	"time"
)

// APIVersion is the apiVersion of native definitions.
const APIVersion = "slogate.dev/v1"

// Kinds of native documents.
const (
	KindSLO        = "SLO"
	KindHypothesis = "Hypothesis"
	KindExperiment = "Experiment"
)

// Pos is where a definition (or one of its fields) was written.
type Pos struct {
	File string
	Line int
	Col  int
}

// String renders the position as file:line:col, the form editors jump to.
func (p Pos) String() string {
	if p.File == "" {
		return ""
	}
	return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col)
}

// Set is a complete, validated collection of definitions. A Set is never
// modified after Load returns it: a reload builds a new Set.
type Set struct {
	SLOs        []*SLO
	Hypotheses  []*Hypothesis
	Experiments []*Experiment
	// AlertWindows are Sloth's custom burn-rate windows, one per SLO
	// period; the SLOs of that period use them (SLO.Tiers).
	AlertWindows []*AlertWindows
}

// AlertWindows are the burn-rate tiers of the SLOs whose window is Period
// (Sloth's AlertWindows document).
type AlertWindows struct {
	Period time.Duration
	Tiers  []BurnTier
	Pos    Pos
}

// SLO returns the SLO named name, or nil.
func (s *Set) SLO(name string) *SLO {
	for _, o := range s.SLOs {
		if o.Name == name {
			return o
		}
	}
	return nil
}

// Hypothesis returns the hypothesis named name, or nil.
func (s *Set) Hypothesis(name string) *Hypothesis {
	for _, h := range s.Hypotheses {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Experiment returns the experiment named name, or nil.
func (s *Set) Experiment(name string) *Experiment {
	for _, e := range s.Experiments {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// SLO is a service level objective over a rolling window or calendar
// periods.
type SLO struct {
	Name        string
	Labels      map[string]string // user labels, copied onto metrics and alerts
	Service     string
	Description string
	// Objective is the target in percent, 0 < Objective < 100 (99.9 means
	// 99.9 % of events must be good).
	Objective float64
	// Window is the rolling window; for a calendar SLO, the longest its
	// period can be (what the slice buffers must hold).
	Window time.Duration
	// Calendar, when set, makes the window calendar periods (see
	// WindowAt) instead of a rolling Window.
	Calendar *Calendar
	// Timeslices, when set, makes the SLO count time slices instead of
	// events (OpenSLO's Timeslices and RatioTimeslices).
	Timeslices *Timeslices
	Indicator  Indicator
	Alerting   Alerting
	Gate       GatePolicy
	Pos        Pos
	// Source is the format the SLO was read from, and its name there.
	Source Source
	// RuleIntervals and InfoLabels come from Sloth's rule_intervals and
	// info_labels plugins and only concern `slogate rules`.
	RuleIntervals RuleIntervals
	InfoLabels    map[string]string
	// GroupBy, when set, makes the SLO one SLO per set of values of these
	// labels found in its data, besides the aggregate (groups.go);
	// MaxGroups caps how many are followed (0: DefaultMaxGroups).
	GroupBy   []string
	MaxGroups int
	// Parent and Group are set on the SLO of one group (SLO.ForGroup): the
	// grouped SLO's name and the group's label values.
	Parent string
	Group  map[string]string
}

// RuleIntervals are the evaluation intervals of the rule groups `slogate
// rules` writes for an SLO; zero leaves Prometheus's global interval.
type RuleIntervals struct {
	SLIError, Metadata, Alert time.Duration
}

// Source says where a definition was read from: `slogate check` reports
// it, and `slogate rules --style sloth` names the series as Sloth would.
type Source struct {
	Format Format
	// Name is the SLO's name in that format when it is not Name: a Sloth
	// SLO's name within its service (Name is "<service>-<name>").
	Name string
}

// Format is a definition format slogate reads.
type Format string

const (
	FormatNative         Format = "slogate.dev/v1"
	FormatSloth          Format = "sloth prometheus/v1"
	FormatSlothCRD       Format = "sloth.slok.dev/v1 PrometheusServiceLevel"
	FormatOpenSLO        Format = "openslo/v1"
	FormatOpenSLOv1alpha Format = "openslo/v1alpha"
	FormatPyrra          Format = "pyrra.dev/v1alpha1 ServiceLevelObjective"
)

// ErrorBudget is the allowed error ratio, 1 - objective (0.001 for 99.9 %).
func (o *SLO) ErrorBudget() float64 { return 1 - o.Objective/100 }

// Indicator holds exactly one of its fields.
type Indicator struct {
	Ratio   *RatioIndicator
	Latency *LatencyIndicator
	Raw     *RawIndicator
	// Threshold compares a value with a tolerance in each time slice; only
	// with Timeslices.
	Threshold *ThresholdIndicator
}

// RatioIndicator counts events. Queries are templates in which {{.window}}
// is replaced by a PromQL duration; each must return the per-second rate of
// events over that window (as `sum(rate(x[{{.window}}]))` does), so that
// rate × window length is the number of events.
type RatioIndicator struct {
	Errors string // bad events; exactly one of Errors and Good is set
	Good   string
	Total  string
}

// LatencyIndicator counts requests slower than Threshold as bad.
type LatencyIndicator struct {
	// Histogram is a series selector for the histogram without the
	// _bucket/_count suffix, e.g. http_request_duration_seconds{job="x"}.
	Histogram string
	Threshold float64 // seconds; for classic histograms it must be a bucket bound
	Native    bool    // native histogram: histogram_fraction instead of buckets
}

// RawIndicator is an error ratio query (0..1) averaged over {{.window}}.
// Its events are seconds: the SLI is time-weighted.
type RawIndicator struct {
	ErrorRatio string
}

// Alerting configures the multi-window multi-burn-rate alerts of an SLO.
type Alerting struct {
	Enabled     bool
	Name        string // alert name, default DefaultAlertName
	Labels      map[string]string
	Annotations map[string]string
	Page        AlertTier
	Ticket      AlertTier
	// Tiers are the SLO's own burn-rate windows and factors, from the
	// AlertWindows of its period; nil means BurnTiers(Window).
	Tiers []BurnTier
}

// Tiers returns the SLO's multi-window burn-rate conditions: its period's
// AlertWindows if the set has them, else the workbook's scaled to its
// window (BurnTiers).
func (o *SLO) Tiers() []BurnTier {
	if o.Alerting.Tiers != nil {
		return o.Alerting.Tiers
	}
	return BurnTiers(o.Window)
}

// DefaultAlertName is the alert name of SLOs that do not name theirs.
const DefaultAlertName = "SLOErrorBudgetBurn"

// AlertTier is one severity of burn-rate alerts.
type AlertTier struct {
	Enabled bool
	// MinEvents is the fewest events a tier's long window must count for
	// the tier to fire; below it the tier is low traffic: it neither fires
	// nor resolves (alerting.minEvents, or the tier's own). 0: no guard.
	MinEvents   float64
	Labels      map[string]string
	Annotations map[string]string
}

// GatePolicy decides whether an SLO allows a chaos run.
type GatePolicy struct {
	// MinBudgetRemaining as a ratio (0.25 for "25%"); nil means no check.
	MinBudgetRemaining *float64
	// MaxBurnRate over BurnRateWindow; nil means no check.
	MaxBurnRate    *float64
	BurnRateWindow time.Duration // default 1h
	// OnIncompleteWindow says what the budget is while the SLO window
	// reaches back beyond the history that exists (the backend's retention,
	// and slogate has not run for a whole window yet): unknown (the
	// default, the gate stays closed) or partial (the budget of the part
	// covered, marked incomplete with its coverage).
	OnIncompleteWindow IncompletePolicy
	// Groups says whether every group of a grouped SLO must meet the
	// policy (each, the default) or only the aggregate (aggregate).
	Groups GroupPolicy
	// MinEvents is the fewest events a checked window (the SLO window for
	// the budget, BurnRateWindow for the burn rate) must count for its
	// check to be judged; below it the check is OnLowTraffic (unknown by
	// default: the gate stays closed on no evidence). 0: no guard.
	MinEvents    float64
	OnLowTraffic Policy
}

// IncompletePolicy is what an SLO's budget is over a window only partly
// covered by history.
type IncompletePolicy string

// Incomplete-window policies.
const (
	IncompleteUnknown IncompletePolicy = "unknown"
	IncompletePartial IncompletePolicy = "partial"
)

// Verdict policies for hypotheses.
type Policy string

const (
	PolicyPass    Policy = "pass"
	PolicyFail    Policy = "fail"
	PolicyUnknown Policy = "unknown"
)

// SeriesPolicy says how a probe returning several series is judged.
type SeriesPolicy string

const (
	SeriesAll SeriesPolicy = "all" // every series must be within tolerance
	SeriesAny SeriesPolicy = "any" // one series within tolerance is enough
)

// Hypothesis is a steady-state hypothesis: probes that must hold.
type Hypothesis struct {
	Name      string
	Labels    map[string]string
	Probes    []*Probe
	FailAfter int // consecutive misses before the verdict turns fail (>= 1)
	PassAfter int // consecutive hits before it turns pass again (>= 1)
	OnNoData  Policy
	OnError   Policy
	// OnLowTraffic is the verdict of a probe measured on fewer events
	// than its MinEvents (or samples than its test's MinSamples): unknown
	// by default, so that one failed request in five neither fails nor
	// passes a hypothesis.
	OnLowTraffic Policy
	Series       SeriesPolicy
	Pos          Pos
}

// Probe is one measurement of a hypothesis: either a PromQL query with a
// tolerance, or a reference to an SLO with budget/burn-rate tolerances.
type Probe struct {
	Name string

	Query     string     // PromQL instant query (query probes)
	Tolerance *Tolerance // for query probes with a fixed tolerance
	// Relative, instead of Tolerance, compares the query's value with its
	// own baseline or with a control group (relative.go).
	Relative *Relative
	// Events, when set, is a query counting the events behind the value
	// (like sum(increase(requests_total[5m]))); below MinEvents the probe
	// is judged by the hypothesis' OnLowTraffic. SLO probes count the
	// SLO's own events over the window they read.
	Events    string
	MinEvents float64

	SLO             string     // SLO probes: the SLO's name
	BudgetRemaining *Tolerance // on the error budget remaining ratio (may be nil)
	BurnRate        *BurnRateTolerance

	Pos Pos
}

// BurnRateTolerance holds when the burn rate over Window is below Below.
type BurnRateTolerance struct {
	Window time.Duration
	Below  float64
}

// GateMode is what an experiment's gate does with an unknown verdict.
type GateMode string

const (
	GateClosed GateMode = "closed"
	GateOpen   GateMode = "open"
)

// Experiment is a chaos experiment guarded by hypotheses and SLO budgets.
type Experiment struct {
	Name       string
	Labels     map[string]string
	Hypotheses []string
	SLOs       []string
	// MaxBudgetSpend is the share of each listed SLO's error budget (of its
	// window) a run may spend, as a ratio (0.05 for "5%"); 0 means no limit.
	MaxBudgetSpend float64
	MaxDuration    time.Duration // 0 means no limit
	Recovery       time.Duration // hypotheses must hold again within this after finish
	OnUnknown      GateMode
	Pos            Pos
}
