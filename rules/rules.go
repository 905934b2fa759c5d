// Package rules turns SLO definitions into Prometheus recording and
// alerting rules, for teams that want Prometheus itself to record the SLIs
// and fire the burn-rate alerts (alongside or instead of slogate serve).
//
// Three styles are generated:
//
//   - StyleWindows (the default) records the error ratio of every window
//     directly from the indicator queries, with slogate's arithmetic
//     (summed queries, a missing numerator counting as no errors):
//     slo:sli_error:ratio_rate<window>. Long windows (30d) are expensive
//     for Prometheus to evaluate, but the numbers are exact and the groups
//     run at the global evaluation interval.
//   - StyleBuckets records the bad and total events of the last five
//     minutes, slo:sli_events:increase5m{type="bad"|"total"}, in a group
//     evaluated every 5m, and computes every window as the sum of those
//     buckets (sum_over_time), the layout Pyrra's maintainers propose. A
//     window then costs Prometheus a few thousand samples whatever the
//     traffic, at the price of a 5-minute resolution; windows only become
//     right once the buckets cover them (30 days after the rules start,
//     unless the buckets are backfilled with promtool).
//   - StyleSloth writes what Sloth generates for the same SLOs: its group
//     names, its labels (sloth_id, sloth_service, sloth_slo, sloth_window,
//     sloth_severity), its metadata series and sloth_slo_info, its SLI
//     expressions (the period's ratio averaged from the 5m one) and its
//     alert expressions, so that Sloth's dashboards and the Alertmanager
//     routes of Sloth users keep working. See sloth.go for what it does
//     not reproduce.
//
// The windows and buckets styles record the same series names
// (slo:sli_error:ratio_rate<w>, slo:objective:ratio,
// slo:error_budget:ratio, slo:error_budget_remaining:ratio) with the
// labels slo, service and the SLO's own labels, and the same multi-window
// multi-burn-rate alerts, so dashboards and alert routes work with either.
//
// Low-traffic guards (alerting.minEvents, or a tier's own) apply in every
// style: each burn-rate condition of a guarded severity is ANDed with
// "the long window counts at least minEvents events", read from
// slo:sli_total:increase<w>, the SLO's total events over w, recorded for
// the long windows of guarded tiers only (from the indicator's total query
// in the windows and sloth styles, the total buckets in the buckets style).
// slogate serve also holds a firing alert while its long window has too few
// events; a Prometheus rule cannot hold, so there the alert resolves
// instead. Raw indicators (an error ratio of time) have no events to count,
// and their guards are refused (ErrRawMinEvents).
package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/slogate/slogate/slo"
)

// Style selects how the SLI windows are recorded and how the series are
// named.
type Style string

const (
	StyleWindows Style = "windows"
	StyleSloth   Style = "sloth"
	StyleBuckets Style = "buckets"
)

// Styles are the accepted styles, the default first.
var Styles = []Style{StyleWindows, StyleSloth, StyleBuckets}

// ErrInternal marks a generated rule that Prometheus would refuse: a bug in
// slogate, never a problem of the definitions (the loader validated them).
var ErrInternal = errors.New("internal error")

// ErrTimeslices refuses rules for a time-slice SLO: PromQL can count good
// slices only with a subquery at the slice resolution over the whole
// window, 43,200 steps for one-minute slices of 30 days at every rule
// evaluation; slogate serve counts them once per slice instead.
var ErrTimeslices = errors.New("time slices are not written as Prometheus rules: counting them over a window takes a subquery at the slice resolution over the whole window (43,200 steps for one-minute slices of 30 days) at every evaluation; let slogate serve evaluate this SLO and use its slogate_slo_* metrics and alerts")

// ErrGroups refuses rules for an SLO grouped with groupBy (or Pyrra's
// grouping) whose queries do not group by those labels themselves.
var ErrGroups = errors.New("per-group SLOs (groupBy) are not written as rules: the rules would record only the aggregate, while slogate serve follows every group with its own budget, alerts and cap; let slogate serve evaluate this SLO, or write `sum by (labels)` into the queries themselves (as Sloth does), which the rules keep")

// ErrCalendar refuses rules for a calendar SLO: a PromQL range is a fixed
// duration back from each evaluation, and a window that starts at the 1st
// of the month grows all month long, so no recording rule measures it.
// slogate serve evaluates calendar SLOs, and exports their SLI, budget and
// alerts as metrics instead (slogate_slo_*).
var ErrCalendar = errors.New("calendar windows cannot be written as Prometheus rules (a PromQL range has a fixed length, the period so far does not); let slogate serve evaluate this SLO and use its slogate_slo_* metrics and alerts, or give it a rolling window like 30d for rules")

// ErrRawMinEvents refuses rules for a low-traffic guard on a raw indicator:
// minEvents counts events, and an error ratio of time has none. slogate
// serve counts the seconds of the window that had a ratio, which PromQL
// counts only with a subquery at the scrape resolution over the window at
// every evaluation.
var ErrRawMinEvents = errors.New("minEvents on a raw indicator is not written as Prometheus rules: a raw error ratio has no events to count (slogate serve counts the seconds that had a ratio, which a rule can count only with a subquery over the whole window at every evaluation); drop minEvents for rules, or let slogate serve evaluate this SLO")

// Names of the recorded series.
const (
	SLIErrorPrefix = "slo:sli_error:ratio_rate" // + window, e.g. 5m, 30d
	// SLITotalPrefix + window: the SLO's total events over the window,
	// recorded for the long windows of the tiers a minEvents guards.
	SLITotalPrefix        = "slo:sli_total:increase"
	ObjectiveMetric       = "slo:objective:ratio"
	ErrorBudgetMetric     = "slo:error_budget:ratio"
	BudgetRemainingMetric = "slo:error_budget_remaining:ratio"
	EventsMetric          = "slo:sli_events:increase5m"
)

// SLIErrorMetric is the recorded error ratio of one window.
func SLIErrorMetric(w time.Duration) string { return SLIErrorPrefix + model.Duration(w).String() }

// SLITotalMetric is the recorded count of events of one window.
func SLITotalMetric(w time.Duration) string { return SLITotalPrefix + model.Duration(w).String() }

// Group intervals of the bucket style. The bucket group must run exactly
// every bucketStep, or sum_over_time would count events twice or miss
// some; the other groups only read the buckets and run every 30s, so that
// alerts react within the bucket resolution plus half a minute.
const (
	bucketStep     = 5 * time.Minute
	bucketInterval = model.Duration(bucketStep)
	readInterval   = model.Duration(30 * time.Second)
)

// Options configure Generate.
type Options struct {
	Style Style // default StyleWindows
}

// Generate returns the rule groups for every SLO of set, in the order of
// the set: per SLO a recording group slogate-<slo> (plus
// slogate-<slo>:buckets in the bucket style) and, when the SLO alerts, an
// alerting group slogate-<slo>:alerts; in the Sloth style Sloth's three
// groups (slothGroups). Every expression is parsed before it is returned;
// a failure wraps ErrInternal.
func Generate(set *slo.Set, opts Options) (*rulefmt.RuleGroups, error) {
	if opts.Style == "" {
		opts.Style = StyleWindows
	}
	if !slices.Contains(Styles, opts.Style) {
		return nil, fmt.Errorf("unknown rule style %q; use %s", opts.Style, StyleNames())
	}
	if opts.Style == StyleSloth {
		if err := checkSlothIDs(set); err != nil {
			return nil, err
		}
	}
	out := &rulefmt.RuleGroups{Groups: []rulefmt.RuleGroup{}}
	var errs []error
	for _, o := range set.SLOs {
		if o.Calendar != nil {
			errs = append(errs, fmt.Errorf("%s: slo %q: window %s: %w", o.Pos, o.Name, o.Calendar, ErrCalendar))
			continue
		}
		if o.Timeslices != nil {
			errs = append(errs, fmt.Errorf("%s: slo %q: %s of %s: %w", o.Pos, o.Name, o.Timeslices.Method(), slo.FormatDuration(o.Timeslices.Window), ErrTimeslices))
			continue
		}
		if o.Grouped() && !slices.Contains([]slo.Format{slo.FormatSloth, slo.FormatSlothCRD}, o.Source.Format) {
			errs = append(errs, fmt.Errorf("%s: slo %q: groupBy %s: %w", o.Pos, o.Name, strings.Join(o.GroupBy, ", "), ErrGroups))
			continue
		}
		if o.Indicator.Raw != nil && len(guardedWindows(o)) > 0 {
			errs = append(errs, fmt.Errorf("%s: slo %q: alerting minEvents: %w", o.Pos, o.Name, ErrRawMinEvents))
			continue
		}
		var groups []rulefmt.RuleGroup
		var err error
		if opts.Style == StyleSloth {
			groups, err = slothGroups(o)
		} else {
			groups, err = sloGroups(o, opts.Style)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out.Groups = append(out.Groups, groups...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.Style == StyleSloth {
		slothDistinctAlerts(out.Groups, set)
	}
	if err := checkExprs(out); err != nil {
		return nil, err
	}
	return out, nil
}

// Render is Generate written as a rule file, checked the way Prometheus
// loads it (rulefmt.Parse: names, labels, expressions and annotation
// templates).
func Render(set *slo.Set, opts Options) ([]byte, error) {
	groups, err := Generate(set, opts)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	style := opts.Style
	if style == "" {
		style = StyleWindows
	}
	fmt.Fprintf(&buf, "# Generated by slogate rules --style %s: Prometheus recording and alerting\n", style)
	buf.WriteString("# rules equivalent to the SLO definitions. Do not edit; regenerate instead.\n")
	if err := Write(&buf, groups); err != nil {
		return nil, err
	}
	// Label names as Prometheus 3 takes them: the loader keeps every name
	// to the legacy rules but those of sloth_slo_info, which Sloth's own
	// example spells plug-l1 (and warns about them).
	if _, errs := rulefmt.Parse(buf.Bytes(), false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler)); len(errs) > 0 {
		// Annotations are the user's Go templates, which Prometheus checks
		// too; anything else is slogate's fault.
		msgs := make([]string, len(errs))
		for i, err := range errs {
			// A problem rulefmt finds without a YAML node (a repeated group
			// name) is positioned at "0:0", which says nothing.
			msgs[i] = strings.TrimPrefix(err.Error(), "0:0: ")
		}
		return nil, fmt.Errorf("the generated rules do not load: %s", strings.Join(msgs, "; "))
	}
	return buf.Bytes(), nil
}

// Write encodes groups as YAML with two-space indentation.
func Write(w io.Writer, groups *rulefmt.RuleGroups) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(groups); err != nil {
		return fmt.Errorf("encoding rules: %w", err)
	}
	return enc.Close()
}

// checkExprs parses every expression as Prometheus will.
func checkExprs(groups *rulefmt.RuleGroups) error {
	var errs []error
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if _, err := promql.ParseExpr(r.Expr); err != nil {
				errs = append(errs, fmt.Errorf("%w: group %s: rule %s%s: generated invalid PromQL %q: %w",
					ErrInternal, g.Name, r.Record, r.Alert, r.Expr, err))
			}
		}
	}
	return errors.Join(errs...)
}

// StyleNames lists the styles for messages: "windows, sloth or buckets".
func StyleNames() string {
	names := make([]string, len(Styles))
	for i, s := range Styles {
		names[i] = string(s)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// ErrorRatioQuery is the PromQL error ratio of an SLO over window w, the
// expression recorded as slo:sli_error:ratio_rate<w> in the windows style.
func ErrorRatioQuery(o *slo.SLO, w time.Duration) (string, error) {
	s, err := newSLI(o)
	if err != nil {
		return "", err
	}
	e, err := s.ratio(w)
	if err != nil {
		return "", err
	}
	return e.String(), nil
}

// RecordedWindows are the windows recorded for an SLO in the windows and
// buckets styles: those slogate evaluates (slo.Windows) and those its
// burn-rate tiers read (o.Tiers: the workbook's, or Sloth AlertWindows of
// its period), ascending.
func RecordedWindows(o *slo.SLO) []time.Duration {
	seen := map[time.Duration]bool{}
	var out []time.Duration
	add := func(w time.Duration) {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	for _, w := range slo.Windows(o.Window) {
		add(w)
	}
	for _, t := range o.Tiers() {
		add(t.Long)
		add(t.Short)
	}
	slices.Sort(out)
	return out
}

func sloGroups(o *slo.SLO, style Style) ([]rulefmt.RuleGroup, error) {
	s, err := newSLI(o)
	if err != nil {
		return nil, err
	}
	var groups []rulefmt.RuleGroup
	var windows []rulefmt.Rule
	switch style {
	case StyleBuckets:
		buckets, err := bucketRules(s)
		if err != nil {
			return nil, err
		}
		groups = append(groups, rulefmt.RuleGroup{Name: groupName(o) + ":buckets", Interval: bucketInterval, Rules: buckets})
		windows = bucketWindowRules(s)
	default:
		if windows, err = windowRules(s); err != nil {
			return nil, err
		}
	}
	totals, err := totalRules(s, style)
	if err != nil {
		return nil, err
	}
	windows = append(windows, totals...)
	// The SLO's rule intervals (Sloth's rule_intervals) apply here as to
	// Sloth's groups, the SLI one to the recording group; the bucket
	// style's intervals are part of its arithmetic and stay.
	rec := rulefmt.RuleGroup{Name: groupName(o), Interval: model.Duration(o.RuleIntervals.SLIError), Rules: append(windows, metaRules(o)...)}
	if style == StyleBuckets {
		rec.Interval = readInterval
	}
	groups = append(groups, rec)
	if alerts := alertRules(o); len(alerts) > 0 {
		g := rulefmt.RuleGroup{Name: groupName(o) + ":alerts", Interval: model.Duration(o.RuleIntervals.Alert), Rules: alerts}
		if style == StyleBuckets {
			g.Interval = readInterval
		}
		groups = append(groups, g)
	}
	return groups, nil
}

// guardedWindows are the long windows of the tiers whose severity alerts
// with a low-traffic guard (minEvents > 0), ascending: the windows whose
// events the alerts count.
func guardedWindows(o *slo.SLO) []time.Duration {
	var out []time.Duration
	for _, t := range o.Tiers() {
		if minEvents(o, t.Severity) > 0 {
			out = append(out, t.Long)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// minEvents is the low-traffic guard of severity sev: 0 when there is none
// or the severity does not alert.
func minEvents(o *slo.SLO, sev slo.Severity) float64 {
	if !o.TierEnabled(sev) {
		return 0
	}
	return o.AlertTierOf(sev).MinEvents
}

// totalRules record the SLO's total events over the long windows of its
// guarded tiers (guardedWindows), as slo:sli_total:increase<w>, for the
// alerts' guards: in the windows style the indicator's total rate over w
// times its seconds (the same total query the window's ratio divides by,
// and for a latency indicator the histogram's _count), in the bucket style
// the total buckets summed over w.
//
// Recorded rather than written into the alerts: a recorded series carries
// the labels the ratios carry, so the alert ANDs it label for label like
// its other operands (no on(), which would let one group's traffic open
// another's guard in a Sloth SLO grouped by labels), and a dashboard can
// show the count the guard compares. Evaluation costs the same either way
// (one read of the total over the window per evaluation, which Prometheus
// would do in the alert otherwise); it stays cheap because only guarded
// long windows are recorded, and in the bucket style that read is a sum
// of 5m buckets.
func totalRules(s *sli, style Style) ([]rulefmt.Rule, error) {
	var out []rulefmt.Rule
	for _, w := range guardedWindows(s.o) {
		var e parser.Expr
		if style == StyleBuckets {
			sel := idLabels(s.o)
			sel["type"] = EventsTotal
			// sum without (type): the series carry the labels of the
			// ratios, which have no type.
			e = &parser.AggregateExpr{Op: parser.SUM, Without: true, Grouping: []string{"type"},
				Expr: call("sum_over_time", &parser.MatrixSelector{VectorSelector: selector(EventsMetric, sel), Range: w})}
		} else {
			var err error
			if _, e, err = s.events(w); err != nil {
				return nil, err
			}
		}
		out = append(out, rulefmt.Rule{Record: SLITotalMetric(w), Expr: e.String(), Labels: sloLabels(s.o)})
	}
	return out, nil
}

// guard is the low-traffic condition of a tier with long window w: at
// least n events over w (the recorded slo:sli_total:increase<w>).
func guard(lbls map[string]string, w time.Duration, n float64) parser.Expr {
	return binary(parser.GTE, selector(SLITotalMetric(w), lbls), number(n))
}

// groupName is the SLO's recording group; its other groups add ":alerts"
// and ":buckets". SLO names cannot hold ':', so no two SLOs' groups share a
// name (with '-', SLO "api"'s alerts and SLO "api-alerts" did).
func groupName(o *slo.SLO) string { return "slogate-" + o.Name }

// sloLabels are the labels of every series recorded for o: its own labels,
// then slo and service, which the loader keeps users from setting.
func sloLabels(o *slo.SLO) map[string]string {
	l := maps.Clone(o.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l["slo"] = o.Name
	l["service"] = o.Service
	return l
}

// idLabels select the series of o among those of other SLOs.
func idLabels(o *slo.SLO) map[string]string {
	return map[string]string{"slo": o.Name, "service": o.Service}
}

// errorBudget is 1 - objective rounded to 12 significant digits, so that
// 99.9 % gives 0.001 in the rules and not 0.0010000000000000009.
func errorBudget(o *slo.SLO) float64 { return round12(o.ErrorBudget()) }

func round12(v float64) float64 {
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 12, 64), 64)
	if err != nil {
		return v
	}
	return r
}

// metaRules record the objective, the budget and the budget remaining over
// the SLO window.
func metaRules(o *slo.SLO) []rulefmt.Rule {
	lbls := sloLabels(o)
	budget := errorBudget(o)
	remaining := binary(parser.SUB, number(1),
		binary(parser.DIV, selector(SLIErrorMetric(o.Window), idLabels(o)), number(budget)))
	return []rulefmt.Rule{
		{Record: ObjectiveMetric, Expr: call("vector", number(round12(o.Objective/100))).String(), Labels: lbls},
		{Record: ErrorBudgetMetric, Expr: call("vector", number(budget)).String(), Labels: lbls},
		{Record: BudgetRemainingMetric, Expr: remaining.String(), Labels: lbls},
	}
}

// alertRules are the multi-window multi-burn-rate alerts, one rule per
// enabled severity, named like the alerts slogate serve sends.
func alertRules(o *slo.SLO) []rulefmt.Rule {
	a := o.Alerting
	if !a.Enabled {
		return nil
	}
	name := a.Name
	if name == "" {
		name = slo.DefaultAlertName
	}
	budget := errorBudget(o)
	var out []rulefmt.Rule
	for _, sev := range []slo.Severity{slo.SeverityPage, slo.SeverityTicket} {
		tier := a.Page
		if sev == slo.SeverityTicket {
			tier = a.Ticket
		}
		if !tier.Enabled {
			continue
		}
		var cond parser.Expr
		var conds []string
		for _, t := range o.Tiers() {
			if t.Severity != sev {
				continue
			}
			over := func(w time.Duration) parser.Expr {
				return binary(parser.GTR, selector(SLIErrorMetric(w), idLabels(o)),
					binary(parser.MUL, number(t.Factor), number(budget)))
			}
			both := binary(parser.LAND, over(t.Long), over(t.Short))
			if n := minEvents(o, sev); n > 0 {
				// Too few events over the long window: the tier cannot
				// fire. slogate serve would also keep a firing alert
				// firing meanwhile; a rule cannot, and resolves it.
				both = binary(parser.LAND, both, guard(idLabels(o), t.Long, n))
			}
			if cond == nil {
				cond = both
			} else {
				cond = binary(parser.LOR, cond, both)
			}
			conds = append(conds, fmt.Sprintf("%s× over %s and %s",
				strconv.FormatFloat(t.Factor, 'g', -1, 64), model.Duration(t.Long), model.Duration(t.Short)))
		}
		if cond == nil {
			continue
		}
		// slo and service are on the series already; setting them keeps
		// the rules of SLOs sharing an alert name apart for promtool's
		// duplicate check, and the loader keeps users from overriding them.
		labels := map[string]string{"severity": string(sev)}
		maps.Copy(labels, a.Labels)
		maps.Copy(labels, tier.Labels)
		maps.Copy(labels, idLabels(o))
		// Names come from the alert's labels, not pasted into the text:
		// Prometheus expands annotations as Go templates.
		guarded := ""
		if n := minEvents(o, sev); n > 0 {
			guarded = fmt.Sprintf(", with at least %s events over the long window", strconv.FormatFloat(n, 'g', -1, 64))
		}
		annotations := map[string]string{
			"summary": "SLO {{ $labels.slo }} of {{ $labels.service }} is burning its error budget too fast",
			"description": fmt.Sprintf("The error budget of {{ $labels.slo }} (%s%% over %s) burns faster than %s%s. "+
				"Error ratio over the long window: {{ $value | humanizePercentage }}.",
				strconv.FormatFloat(o.Objective, 'g', -1, 64), model.Duration(o.Window), strings.Join(conds, ", or "), guarded),
		}
		maps.Copy(annotations, a.Annotations)
		maps.Copy(annotations, tier.Annotations)
		out = append(out, rulefmt.Rule{Alert: name, Expr: cond.String(), Labels: labels, Annotations: annotations})
	}
	return out
}
