package rules

// The Sloth style writes what Sloth (github.com/slok/sloth; compared with
// the generated examples of its commit 0e395d8, v0.16) generates for an SLO,
// so that teams moving from Sloth keep Sloth's Grafana dashboards and their
// Alertmanager routes. Per SLO, id being its sloth_id:
//
//	sloth-slo-sli-recordings-<id>   slo:sli_error:ratio_rate<w> for every
//	                                window of the alerts and the period
//	sloth-slo-meta-recordings-<id>  objective, budget, period, burn rates,
//	                                budget remaining, sloth_slo_info
//	sloth-slo-alerts-<id>           one alert per enabled severity
//
// The numbers are computed as Sloth computes them (objective/100,
// (100 - objective)/100, burn factors from the budget percentages), so that
// the expressions equal Sloth's to the last digit, and the queries are the
// user's, unchanged: no sum(), and no "or vector(0)", so a window without
// data records nothing, as in Sloth. What differs from Sloth's output:
//
//   - sloth_version on sloth_slo_info is "slogate", the generator;
//   - Sloth's --extra-labels flag has no equivalent (labels go in the spec);
//   - SLOs of formats Sloth does not read as such (native, OpenSLO v1) and
//     indicators Sloth does not have (good events, latency) are written the
//     way Sloth writes the nearest thing it has: sloth_id is
//     <service>-<name>, good events become the raw ratio 1 - good/total
//     as Sloth's OpenSLO reader writes them, latency its good/total or
//     the native histogram's 1 - histogram_fraction;
//   - OpenSLO SLOs alert like any other (Sloth's OpenSLO reader turns the
//     alerts off, slogate alerts on every SLO that does not);
//   - alerting rules that would be alike get the SLO's labels
//     (slothDistinctAlerts), and two SLOs with one sloth_id are refused;
//   - Sloth's SLI plugins, and its SLO plugins other than rule_intervals and
//     info_labels, are not run (the loader says so).

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/slo"
)

// Sloth's labels.
const (
	slothIDLabel        = "sloth_id"
	slothServiceLabel   = "sloth_service"
	slothSLOLabel       = "sloth_slo"
	slothWindowLabel    = "sloth_window"
	slothSeverityLabel  = "sloth_severity"
	slothVersionLabel   = "sloth_version"
	slothModeLabel      = "sloth_mode"
	slothSpecLabel      = "sloth_spec"
	slothObjectiveLabel = "sloth_objective"
)

// Series that only the Sloth style records.
const (
	TimePeriodMetric            = "slo:time_period:days"
	CurrentBurnRateMetric       = "slo:current_burn_rate:ratio"
	PeriodBurnRateMetric        = "slo:period_burn_rate:ratio"
	PeriodBudgetRemainingMetric = "slo:period_error_budget_remaining:ratio"
	SlothInfoMetric             = "sloth_slo_info"
)

// SlothVersion is the sloth_version of sloth_slo_info, where Sloth writes
// its own version: the generator, without slogate's version, so that the
// rules of a definition do not change with every release.
const SlothVersion = "slogate"

// Sloth's group name prefixes, followed by the sloth_id.
const (
	slothSLIGroupPrefix   = "sloth-slo-sli-recordings-"
	slothMetaGroupPrefix  = "sloth-slo-meta-recordings-"
	slothAlertGroupPrefix = "sloth-slo-alerts-"
)

// SlothID is the sloth_id of o. Sloth's is "<service>-<name>", which is the
// name slogate gives the SLOs it reads from Sloth specs (o.Source.Name then
// holds Sloth's name); the SLOs of other formats get theirs the same way,
// "<service>-<slogate name>", as if they had been written in a Sloth spec
// (an OpenSLO v1alpha SLO then gets the id Sloth gives it too). A native
// SLO named "<service>-<name>" already is Sloth's id: that is how `slogate
// convert` names a Sloth SLO, so a converted spec keeps its series.
func SlothID(o *slo.SLO) string {
	if o.Source.Name != "" || o.Service == "" || convertedSloth(o) {
		return o.Name
	}
	return o.Service + "-" + o.Name
}

// slothName is the sloth_slo of o: its name in its Sloth spec, or its name
// (without the service prefix of a converted Sloth SLO).
func slothName(o *slo.SLO) string {
	switch {
	case o.Source.Name != "":
		return o.Source.Name
	case convertedSloth(o):
		return strings.TrimPrefix(o.Name, o.Service+"-")
	}
	return o.Name
}

// convertedSloth reports whether o is a native SLO named the way `slogate
// convert` names a Sloth SLO, "<service>-<name>".
func convertedSloth(o *slo.SLO) bool {
	return o.Source.Format == slo.FormatNative && o.Service != "" && strings.HasPrefix(o.Name, o.Service+"-") && len(o.Name) > len(o.Service)+1
}

// slothIDLabels identify the series of o, as Sloth's filters do.
func slothIDLabels(o *slo.SLO) map[string]string {
	return map[string]string{slothIDLabel: SlothID(o), slothServiceLabel: o.Service, slothSLOLabel: slothName(o)}
}

// checkSlothIDs refuses two SLOs with one sloth_id (SLO "b" of service
// "a-x" and SLO "x-b" of service "a"): their series and groups would be the
// same.
func checkSlothIDs(set *slo.Set) error {
	seen := map[string]string{}
	var errs []error
	for _, o := range set.SLOs {
		id := SlothID(o)
		if other, dup := seen[id]; dup {
			errs = append(errs, fmt.Errorf("slo %q and slo %q both have the sloth_id %q (<service>-<name>): their series and rule groups would be the same; rename one", other, o.Name, id))
			continue
		}
		seen[id] = o.Name
	}
	return errors.Join(errs...)
}

// slothDistinctAlerts adds sloth_id, sloth_service and sloth_slo to the
// alerting rules that would otherwise be alike, those of SLOs sharing an
// alert name and labels, which promtool's lint refuses as duplicates (and
// so it would Sloth's own rules). The alerts carry these labels anyway,
// from the series they read, so they do not change; the rules of other
// SLOs stay as Sloth writes them, without.
func slothDistinctAlerts(groups []rulefmt.RuleGroup, set *slo.Set) {
	byID := map[string]*slo.SLO{}
	for _, o := range set.SLOs {
		byID[SlothID(o)] = o
	}
	key := func(r rulefmt.Rule) string { return r.Alert + labels.FromMap(r.Labels).String() }
	count := map[string]int{}
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				count[key(r)]++
			}
		}
	}
	for _, g := range groups {
		id, ok := strings.CutPrefix(g.Name, slothAlertGroupPrefix)
		o := byID[id]
		if !ok || o == nil {
			continue
		}
		// The values the series have: the SLO's labels win, as in Sloth.
		series := merged(slothIDLabels(o), o.Labels)
		for i, r := range g.Rules {
			if r.Alert == "" || count[key(r)] < 2 {
				continue
			}
			for name := range slothIDLabels(o) {
				g.Rules[i].Labels[name] = series[name]
			}
		}
	}
}

// merged is the union of ms, the later ones winning, as Sloth merges labels.
func merged(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// slothGroups are Sloth's three groups of o; the alerting one only when
// o alerts. Their intervals are the SLO's rule intervals (Sloth's
// rule_intervals plugin); zero leaves Prometheus's global interval.
func slothGroups(o *slo.SLO) ([]rulefmt.RuleGroup, error) {
	sli, err := slothRatio(o)
	if err != nil {
		return nil, err
	}
	ids := slothIDLabels(o)
	quick := slothQuickWindow(o)
	var recordings []rulefmt.Rule
	for _, w := range slothWindows(o) {
		var e parser.Expr
		if w == o.Window && quick < w {
			e = slothPeriodRatio(ids, quick, w)
		} else if e, err = sli(w); err != nil {
			return nil, err
		}
		window := map[string]string{slothWindowLabel: model.Duration(w).String()}
		recordings = append(recordings, rulefmt.Rule{Record: SLIErrorMetric(w), Expr: e.String(), Labels: merged(ids, window, o.Labels)})
	}
	totals, err := slothTotalRules(o)
	if err != nil {
		return nil, err
	}
	recordings = append(recordings, totals...)
	id := SlothID(o)
	groups := []rulefmt.RuleGroup{
		{Name: slothSLIGroupPrefix + id, Interval: model.Duration(o.RuleIntervals.SLIError), Rules: recordings},
		{Name: slothMetaGroupPrefix + id, Interval: model.Duration(o.RuleIntervals.Metadata), Rules: slothMetaRules(o, quick)},
	}
	if alerts := slothAlertRules(o); len(alerts) > 0 {
		groups = append(groups, rulefmt.RuleGroup{Name: slothAlertGroupPrefix + id, Interval: model.Duration(o.RuleIntervals.Alert), Rules: alerts})
	}
	return groups, nil
}

// slothRatio is o's error ratio over a window as Sloth writes its SLIs:
// an events SLI as (errors) / (total), a raw one as (ratio), the queries
// as written. Sloth has no good events: it reads OpenSLO's good/total as
// the raw ratio 1 - (good) / (total), and so are good events and classic
// latency histograms (the requests within the threshold over all of them)
// written here; a native histogram's latency is its direct error ratio,
// 1 - histogram_fraction.
func slothRatio(o *slo.SLO) (func(time.Duration) (parser.Expr, error), error) {
	ev, err := o.Events()
	if err != nil {
		return nil, err
	}
	parse := (&sli{o: o}).parsed
	inParens := func(q string) func(time.Duration) (parser.Expr, error) {
		p := parse(q)
		return func(w time.Duration) (parser.Expr, error) {
			e, err := p(w)
			if err != nil {
				return nil, err
			}
			return &parser.ParenExpr{Expr: e}, nil
		}
	}
	// over builds num / den from two parenthesized queries; they are
	// vectors (the loader checked), so the division matches one to one.
	over := func(num, den func(time.Duration) (parser.Expr, error)) func(time.Duration) (parser.Expr, error) {
		return func(w time.Duration) (parser.Expr, error) {
			n, err := num(w)
			if err != nil {
				return nil, err
			}
			d, err := den(w)
			if err != nil {
				return nil, err
			}
			return binary(parser.DIV, n, d), nil
		}
	}
	switch {
	case ev.Raw != "":
		return inParens(ev.Raw), nil
	case ev.Ratio != "":
		return inParens(ev.Ratio), nil
	case ev.Bad != "":
		return over(inParens(ev.Bad), inParens(ev.Total)), nil
	}
	ratio := over(inParens(ev.Good), inParens(ev.Total))
	return func(w time.Duration) (parser.Expr, error) {
		r, err := ratio(w)
		if err != nil {
			return nil, err
		}
		return &parser.ParenExpr{Expr: binary(parser.SUB, number(1), r)}, nil
	}, nil
}

// slothTotalRules record o's total events over the long windows of its
// guarded tiers (guardedWindows) for the alerts' low-traffic guards, which
// Sloth does not have: slo:sli_total:increase<w>, the total query as
// written times the window's seconds, with the labels of the ratios
// (sloth_window included), so that the alert matches them label for label,
// group by group for a Sloth SLO grouped by labels. An SLO without a guard
// records none, as Sloth.
func slothTotalRules(o *slo.SLO) ([]rulefmt.Rule, error) {
	windows := guardedWindows(o)
	if len(windows) == 0 {
		return nil, nil
	}
	ev, err := o.Events()
	if err != nil {
		return nil, err
	}
	total := (&sli{o: o}).parsed(ev.Total)
	var out []rulefmt.Rule
	for _, w := range windows {
		e, err := total(w)
		if err != nil {
			return nil, err
		}
		window := map[string]string{slothWindowLabel: model.Duration(w).String()}
		out = append(out, rulefmt.Rule{
			Record: SLITotalMetric(w),
			Expr:   binary(parser.MUL, &parser.ParenExpr{Expr: e}, number(w.Seconds())).String(),
			Labels: merged(slothIDLabels(o), window, o.Labels),
		})
	}
	return out, nil
}

// slothWindows are the windows Sloth records: those of the alerts,
// ascending, then the period (once, should it be one of them).
func slothWindows(o *slo.SLO) []time.Duration {
	var out []time.Duration
	for _, t := range o.Tiers() {
		out = append(out, t.Short, t.Long)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if !slices.Contains(out, o.Window) {
		out = append(out, o.Window)
	}
	return out
}

// slothQuickWindow is the short window of the quick page alert, Sloth's
// "current" window: the period's ratio is averaged from it, and the
// current burn rate read from it.
func slothQuickWindow(o *slo.SLO) time.Duration {
	var quick time.Duration
	for _, t := range o.Tiers() {
		if t.Severity == slo.SeverityPage {
			return t.Short
		}
		if quick == 0 || t.Short < quick {
			quick = t.Short
		}
	}
	return quick
}

// slothPeriodRatio is Sloth's default ("optimized") SLI of the period: the
// mean of the quick window's ratios recorded over it, which costs
// Prometheus little but weighs every evaluation alike, busy or quiet.
func slothPeriodRatio(ids map[string]string, quick, period time.Duration) parser.Expr {
	overPeriod := func(fn string) parser.Expr {
		return call(fn, &parser.MatrixSelector{VectorSelector: selector(SLIErrorMetric(quick), ids), Range: period})
	}
	return &parser.BinaryExpr{
		Op: parser.DIV, LHS: overPeriod("sum_over_time"), RHS: overPeriod("count_over_time"),
		VectorMatching: &parser.VectorMatching{Card: parser.CardOneToOne, MatchingLabels: []string{slothWindowLabel}},
	}
}

// slothObjective is the objective as a ratio, as Sloth computes it:
// 99.9 gives 0.9990000000000001, which is what its rules hold.
func slothObjective(o *slo.SLO) float64 { return o.Objective / 100 }

// slothBudget is the error budget as Sloth's alerts compute it,
// (100 - objective) / 100: 0.0009999999999999432 for 99.9.
func slothBudget(o *slo.SLO) float64 { return (100 - o.Objective) / 100 }

// slothMetaRules are Sloth's metadata series: objective, budget, period
// in days, burn rates over the quick window and the period, the period's
// budget remaining, and sloth_slo_info.
func slothMetaRules(o *slo.SLO, quick time.Duration) []rulefmt.Rule {
	ids := slothIDLabels(o)
	lbls := merged(ids, o.Labels)
	burnRate := func(w time.Duration) parser.Expr {
		return &parser.BinaryExpr{
			Op: parser.DIV, LHS: selector(SLIErrorMetric(w), ids), RHS: selector(ErrorBudgetMetric, ids),
			VectorMatching: &parser.VectorMatching{
				Card: parser.CardManyToOne, On: true,
				MatchingLabels: []string{slothIDLabel, slothSLOLabel, slothServiceLabel},
			},
		}
	}
	spec, mode := slothSpec(o.Source.Format)
	info := merged(lbls, map[string]string{
		slothVersionLabel:   SlothVersion,
		slothModeLabel:      mode,
		slothSpecLabel:      spec,
		slothObjectiveLabel: strconv.FormatFloat(o.Objective, 'f', -1, 64),
	}, o.InfoLabels)
	objective := number(slothObjective(o))
	return []rulefmt.Rule{
		{Record: ObjectiveMetric, Expr: call("vector", objective).String(), Labels: lbls},
		{Record: ErrorBudgetMetric, Expr: call("vector", binary(parser.SUB, number(1), objective)).String(), Labels: lbls},
		{Record: TimePeriodMetric, Expr: call("vector", number(o.Window.Hours()/24)).String(), Labels: lbls},
		{Record: CurrentBurnRateMetric, Expr: burnRate(quick).String(), Labels: lbls},
		{Record: PeriodBurnRateMetric, Expr: burnRate(o.Window).String(), Labels: lbls},
		{Record: PeriodBudgetRemainingMetric, Expr: binary(parser.SUB, number(1), selector(PeriodBurnRateMetric, ids)).String(), Labels: lbls},
		{Record: SlothInfoMetric, Expr: call("vector", number(1)).String(), Labels: info},
	}
}

// slothSpec is what sloth_slo_info says of the spec an SLO was read from
// (sloth_spec) and of what generated the rules (sloth_mode), as Sloth's
// CLI says it for the specs it reads; native and OpenSLO v1 SLOs, which
// Sloth does not read, get their own format and the mode of a Prometheus
// rule file.
func slothSpec(f slo.Format) (spec, mode string) {
	switch f {
	case slo.FormatSloth:
		return "prometheus/v1", "cli-gen-prom"
	case slo.FormatSlothCRD:
		return "sloth.slok.dev/v1", "cli-gen-k8s"
	case slo.FormatOpenSLOv1alpha:
		return "openslo/v1alpha", "cli-gen-openslo"
	case slo.FormatOpenSLO:
		return "openslo/v1", "cli-gen-openslo"
	}
	return string(slo.FormatNative), "cli-gen-prom"
}

// slothFactor is the burn factor of t as Sloth computes it, from the
// percentage of the budget the tier allows to burn (errorBudgetPercent)
// and the hours of the period and of the long window, so that thresholds
// have Sloth's digits (slogate's own factors are rounded to 1e-6).
func slothFactor(o *slo.SLO, t slo.BurnTier) float64 {
	if t.Budget <= 0 {
		return t.Factor
	}
	// Budget is the percentage over 100: round12 gives back the
	// percentage as written (0.07 × 100 is 7.000000000000001).
	pct := round12(t.Budget * 100)
	return pct * o.Window.Hours() / 100 / t.Long.Hours()
}

// Sloth's default annotations of its alerts; the user's override them.
const (
	slothTitle   = "(%s) {{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is too fast."
	slothSummary = "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is over expected."
)

// slothAlertRules are Sloth's alerts: per enabled severity, the quick and
// the slow condition, each the short window's ratio over the threshold
// and the long window's too, without sloth_window so that the two match.
// The alert's value is the short window's ratio. The labels are
// sloth_severity and the user's (the SLO's labels come with the series),
// the annotations Sloth's title and summary and the user's.
func slothAlertRules(o *slo.SLO) []rulefmt.Rule {
	a := o.Alerting
	if !a.Enabled {
		return nil
	}
	name := a.Name
	if name == "" {
		name = slo.DefaultAlertName
	}
	ids := slothIDLabels(o)
	budget := number(slothBudget(o))
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
		for _, t := range o.Tiers() {
			if t.Severity != sev {
				continue
			}
			over := func(w time.Duration) parser.Expr {
				return &parser.AggregateExpr{
					Op:       parser.MAX,
					Expr:     binary(parser.GTR, selector(SLIErrorMetric(w), ids), binary(parser.MUL, number(slothFactor(o, t)), budget)),
					Grouping: []string{slothWindowLabel}, Without: true,
				}
			}
			both := binary(parser.LAND, over(t.Short), over(t.Long))
			if n := minEvents(o, sev); n > 0 {
				// Too few events over the long window: the tier cannot
				// fire (slogate serve would also keep a firing alert
				// firing meanwhile, which a rule cannot).
				both = binary(parser.LAND, both, &parser.AggregateExpr{
					Op: parser.MAX, Expr: guard(ids, t.Long, n),
					Grouping: []string{slothWindowLabel}, Without: true,
				})
			}
			both = &parser.ParenExpr{Expr: both}
			if cond == nil {
				cond = both
			} else {
				cond = binary(parser.LOR, cond, both)
			}
		}
		if cond == nil {
			continue
		}
		annotations := merged(map[string]string{
			"title":   fmt.Sprintf(slothTitle, sev),
			"summary": slothSummary,
		}, a.Annotations, tier.Annotations)
		labels := merged(map[string]string{slothSeverityLabel: string(sev)}, a.Labels, tier.Labels)
		out = append(out, rulefmt.Rule{Alert: name, Expr: cond.String(), Labels: labels, Annotations: annotations})
	}
	return out
}
