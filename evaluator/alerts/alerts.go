// Package alerts turns the evaluator's state into the alerts slogate sends
// to Alertmanager: burn-rate alerts of SLOs, violated steady-state
// hypotheses, stale evaluations, and aborted chaos runs.
//
// Label precedence, lowest first, so that users can route and silence with
// their own labels but never break an alert's identity:
//
//	SLO burn rate:   SLO labels < alerting.labels < severity=page|ticket
//	                 < tier labels < alertname, slo, service
//	hypothesis:      severity=warning < hypothesis labels < alertname, hypothesis
//	stale:           user labels < severity=warning < alertname, slo/service or hypothesis
//	aborted run:     severity=warning < experiment labels < alertname, experiment, run
//
// The tier's severity sits above alerting.labels on purpose: a severity
// there would give the page and the ticket alert of an SLO the same labels,
// making them one alert. Generated annotations likewise yield to the user's
// (alerting.annotations, then the tier's).
package alerts

import (
	"cmp"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/notifier"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/slo"
)

// Alert names besides the SLOs' own (alerting.name, default
// slo.DefaultAlertName).
const (
	NameSteadyStateViolated = "SteadyStateViolated"
	NameExperimentAborted   = "ChaosExperimentAborted"
	NameEvaluationStale     = "SlogateEvaluationStale"
)

// AbortedAlertDuration is how long a ChaosExperimentAborted alert lasts. An
// abort is an event, not a state that later resolves: the alert is sent
// once with this end, and Alertmanager resolves it by itself.
const AbortedAlertDuration = time.Hour

// Source is what Build reads; *evaluator.Evaluator is one.
type Source interface {
	SLOs() []evaluator.SLOStatus
	Hypotheses() []evaluator.HypothesisStatus
	Definitions() *slo.Set
}

var _ Source = (*evaluator.Snapshot)(nil)

// Options are the links put into alerts.
type Options struct {
	// ExternalURL is slogate's own URL as users reach it: the alerts'
	// generatorURL points to its API. Empty: no generatorURL.
	ExternalURL string
	// DashboardURL is Grafana's base URL: SLO alerts get a dashboard
	// annotation pointing to the SLO detail dashboard. Empty: none.
	DashboardURL string
	// StaleAfter is how long an SLO or hypothesis must have been without
	// a successful evaluation before SlogateEvaluationStale fires, so that
	// one failed query does not page anyone. Zero: at once.
	StaleAfter time.Duration
}

// Build returns every alert that should be firing now. It is meant for
// notifier.Update after each evaluation cycle.
func Build(src Source, opts Options) []notifier.Alert {
	defs := src.Definitions()
	if defs == nil {
		defs = &slo.Set{}
	}
	var out []notifier.Alert
	sloDef := defs.SLO
	if d, ok := src.(interface{ SLODef(string) *slo.SLO }); ok {
		sloDef = d.SLODef // the SLOs of groups too
	}
	for _, st := range src.SLOs() {
		def := sloDef(st.Name)
		if def == nil {
			continue // removed by a reload since the status was taken
		}
		for _, a := range st.Alerts {
			if a.Firing {
				out = append(out, sloAlert(st, a, def, opts))
			}
		}
		// The groups of a grouped SLO are measured from the same backend
		// as their aggregate, whose stale alert speaks for them all.
		if def.Parent == "" && stale(st.Fresh, st.EvaluatedAt, st.LastSuccess, opts) {
			out = append(out, staleSLOAlert(st, def, opts))
		}
	}
	for _, h := range src.Hypotheses() {
		def := defs.Hypothesis(h.Name)
		if def == nil {
			continue
		}
		if h.Verdict == slo.Fail {
			out = append(out, hypothesisAlert(h, def, opts))
		}
		if stale(h.Fresh, h.EvaluatedAt, h.LastSuccess, opts) {
			out = append(out, staleHypothesisAlert(h, def, opts))
		}
	}
	return out
}

func sloAlert(st evaluator.SLOStatus, a evaluator.AlertStatus, def *slo.SLO, opts Options) notifier.Alert {
	tier := def.Alerting.Page
	if a.Severity == slo.SeverityTicket {
		tier = def.Alerting.Ticket
	}
	labels := merge(def.Labels, def.Alerting.Labels,
		map[string]string{"severity": string(a.Severity)},
		tier.Labels,
		def.Group, // a group's values are not overridden by alerting labels
		map[string]string{
			"alertname": cmp.Or(def.Alerting.Name, slo.DefaultAlertName),
			"slo":       cmp.Or(def.Parent, st.Name), // a group's labels tell it apart
			"service":   st.Service,
		})

	burn := formatNum(float64(a.BurnRate))
	summary := fmt.Sprintf("%s is burning its error budget %s× too fast (%s)", st.Name, burn, a.Severity)
	if !a.BurnRate.Valid() {
		summary = fmt.Sprintf("%s is burning its error budget too fast (%s)", st.Name, a.Severity)
	}
	var desc strings.Builder
	if st.Description != "" {
		desc.WriteString(st.Description + "\n")
	}
	fmt.Fprintf(&desc, "SLO %s of service %s (objective %s%% over %s): %s. %s of the error budget remains.",
		st.Name, st.Service, formatNum(st.Objective), st.Window,
		cmp.Or(a.Condition, "burn rate "+burn+"×"), formatPercent(float64(st.BudgetRemaining)))
	annotations := map[string]string{
		"summary":                summary,
		"description":            desc.String(),
		"burn_rate":              burn,
		"error_budget_remaining": formatPercent(float64(st.BudgetRemaining)),
		"objective":              formatNum(st.Objective) + "%",
		"window":                 st.Window,
	}
	if a.Condition != "" {
		annotations["condition"] = a.Condition
	}
	if opts.DashboardURL != "" {
		annotations["dashboard"] = DashboardLink(opts.DashboardURL, cmp.Or(def.Parent, st.Name))
	}
	out := notifier.Alert{
		Labels:       labels,
		Annotations:  merge(annotations, def.Alerting.Annotations, tier.Annotations),
		GeneratorURL: link(opts.ExternalURL, "api/v1/slos", st.Name),
	}
	if a.Since != nil {
		out.StartsAt = *a.Since
	}
	return out
}

// DashboardLink is the Grafana SLO detail dashboard of an SLO.
func DashboardLink(base, sloName string) string {
	return strings.TrimSuffix(base, "/") + "/d/slogate-slo-detail?var-slo=" + url.QueryEscape(sloName)
}

func hypothesisAlert(h evaluator.HypothesisStatus, def *slo.Hypothesis, opts Options) notifier.Alert {
	labels := merge(map[string]string{"severity": "warning"}, def.Labels,
		map[string]string{"alertname": NameSteadyStateViolated, "hypothesis": h.Name})

	var failing []evaluator.ProbeStatus
	for _, p := range h.Probes {
		if p.Verdict == slo.Fail {
			failing = append(failing, p)
		}
	}
	annotations := map[string]string{}
	var desc strings.Builder
	if len(failing) == 0 {
		annotations["summary"] = fmt.Sprintf("steady-state hypothesis %s is violated", h.Name)
		desc.WriteString("Every probe held in the latest evaluation; the verdict stays fail until enough evaluations in a row pass.")
	} else {
		first := failing[0]
		annotations["summary"] = fmt.Sprintf("steady-state hypothesis %s is violated: %s", h.Name, probeText(first))
		annotations["probe"] = first.Name
		annotations["value"] = formatNum(float64(first.Value))
		fmt.Fprintf(&desc, "%d of %d probes out of tolerance:", len(failing), len(h.Probes))
		for _, p := range failing {
			desc.WriteString("\n- " + probeText(p))
		}
	}
	annotations["description"] = desc.String()
	out := notifier.Alert{
		Labels:       labels,
		Annotations:  annotations,
		GeneratorURL: link(opts.ExternalURL, "api/v1/hypotheses", h.Name),
	}
	if !h.Since.IsZero() {
		out.StartsAt = h.Since
	}
	return out
}

// probeText is a probe's measurement against its tolerance, e.g.
// "error-rate = 0.0342 (tolerance < 0.01)".
func probeText(p evaluator.ProbeStatus) string {
	var s string
	if p.Value.Valid() {
		s = p.Name + " = " + formatNum(float64(p.Value))
	} else {
		s = p.Name + ": " + cmp.Or(p.Outcome, "no value")
	}
	s += " (tolerance " + p.Tolerance + ")"
	if p.Error != "" {
		s += ": " + p.Error
	}
	return s
}

// stale reports whether an evaluated item has been without fresh data for
// StaleAfter. Items never evaluated yet are not stale: slogate is starting.
func stale(fresh bool, evaluatedAt, lastSuccess time.Time, opts Options) bool {
	if fresh || evaluatedAt.IsZero() {
		return false
	}
	return lastSuccess.IsZero() || evaluatedAt.Sub(lastSuccess) >= opts.StaleAfter
}

func staleSLOAlert(st evaluator.SLOStatus, def *slo.SLO, opts Options) notifier.Alert {
	labels := merge(def.Labels, map[string]string{"severity": "warning"},
		map[string]string{"alertname": NameEvaluationStale, "slo": st.Name, "service": st.Service})
	desc := fmt.Sprintf("slogate could not measure SLO %s from Prometheus; its burn-rate alerts, gate and verdicts are unknown until it can.", st.Name)
	if st.Error != "" {
		desc += " Last error: " + st.Error
	}
	return notifier.Alert{
		Labels: labels,
		Annotations: map[string]string{
			"summary":      fmt.Sprintf("SLO %s: data is stale, verdicts are unknown", st.Name),
			"description":  desc,
			"last_success": formatTime(st.LastSuccess),
		},
		GeneratorURL: link(opts.ExternalURL, "api/v1/slos", st.Name),
	}
}

func staleHypothesisAlert(h evaluator.HypothesisStatus, def *slo.Hypothesis, opts Options) notifier.Alert {
	labels := merge(def.Labels, map[string]string{"severity": "warning"},
		map[string]string{"alertname": NameEvaluationStale, "hypothesis": h.Name})
	var errs []string
	for _, p := range h.Probes {
		if p.Error != "" {
			errs = append(errs, p.Name+": "+p.Error)
		}
	}
	desc := fmt.Sprintf("slogate could not evaluate hypothesis %s from Prometheus; its verdict and the gates of its experiments are unknown until it can.", h.Name)
	if len(errs) > 0 {
		desc += " Errors: " + strings.Join(errs, "; ")
	}
	return notifier.Alert{
		Labels: labels,
		Annotations: map[string]string{
			"summary":      fmt.Sprintf("hypothesis %s: data is stale, verdicts are unknown", h.Name),
			"description":  desc,
			"last_success": formatTime(h.LastSuccess),
		},
		GeneratorURL: link(opts.ExternalURL, "api/v1/hypotheses", h.Name),
	}
}

// RunAborted is the one-shot alert for an aborted chaos run, for
// notifier.Send. It starts when the run ended (now if that is unknown) and
// ends AbortedAlertDuration later by itself. exp may be nil when the
// experiment's definition is gone.
func RunAborted(r *store.Run, exp *slo.Experiment, opts Options) notifier.Alert {
	var expLabels map[string]string
	if exp != nil {
		expLabels = exp.Labels
	}
	labels := merge(map[string]string{"severity": "warning"}, expLabels,
		map[string]string{"alertname": NameExperimentAborted, "experiment": r.Experiment, "run": r.ID})
	start := time.Now()
	if r.EndedAt != nil {
		start = *r.EndedAt
	}
	reason := cmp.Or(r.Reason, "no reason given")
	return notifier.Alert{
		Labels: labels,
		Annotations: map[string]string{
			"summary":      fmt.Sprintf("chaos experiment %s: run %s aborted: %s", r.Experiment, r.ID, reason),
			"description":  fmt.Sprintf("Run %s of chaos experiment %s, started %s, was aborted: %s. It spent %s of an SLO's error budget. Stop injecting faults.", r.ID, r.Experiment, formatTime(r.StartedAt), reason, formatPercent(r.BudgetSpent)),
			"reason":       reason,
			"budget_spent": formatPercent(r.BudgetSpent),
		},
		StartsAt:     start,
		EndsAt:       start.Add(AbortedAlertDuration),
		GeneratorURL: link(opts.ExternalURL, "api/v1/runs", r.ID),
	}
}

// merge copies the maps into a new one, later ones winning. Empty values
// are skipped: a label with an empty value is no label in Alertmanager.
func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			if v == "" {
				delete(out, k)
				continue
			}
			out[k] = v
		}
	}
	return out
}

// link is base/path/name, or "" without a base.
func link(base, path, name string) string {
	if base == "" {
		return ""
	}
	return strings.TrimSuffix(base, "/") + "/" + path + "/" + url.PathEscape(name)
}

// formatNum prints about three significant digits, without exponents and
// trailing zeros: 16.2, 0.0342, 1234, 3.
func formatNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "unknown"
	}
	decimals := 0
	if a := math.Abs(v); a > 0 {
		decimals = min(max(2-int(math.Floor(math.Log10(a))), 0), 6)
	}
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// formatPercent prints a ratio as a percentage: 0.425 → "42.5%".
func formatPercent(ratio float64) string {
	if math.IsNaN(ratio) || math.IsInf(ratio, 0) {
		return "unknown"
	}
	return formatNum(ratio*100) + "%"
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
