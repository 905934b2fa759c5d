package slo

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Per-group SLOs. An SLO with GroupBy is one SLO per set of values of those
// labels found in its data (one per cluster and route, say), plus the
// aggregate over all of them, which is the SLO itself. The SLO of a group
// is derived from the grouped one (ForGroup): the same definition with the
// group's label values as equality matchers in every series selector of its
// queries, so that it measures exactly what the grouped query measures for
// those values. The evaluator finds the groups (DiscoveryQuery) and follows
// them as they appear and disappear, up to MaxGroups.

// DefaultMaxGroups is how many groups of one SLO are followed unless the
// SLO says otherwise (maxGroups).
const DefaultMaxGroups = 100

// MaxMaxGroups bounds maxGroups: each group costs a set of slice buffers.
const MaxMaxGroups = 10000

// GroupPolicy says how a grouped SLO decides gates and run budgets.
type GroupPolicy string

// Group policies.
const (
	// GroupsEach: the aggregate and every group must meet the gate policy;
	// one group burning its budget closes the gate (the default).
	GroupsEach GroupPolicy = "each"
	// GroupsAggregate: only the aggregate decides.
	GroupsAggregate GroupPolicy = "aggregate"
)

// reservedGroupLabels cannot be grouped by: slogate sets them on every SLO
// series and alert, or they are Prometheus's own.
var reservedGroupLabels = []string{"slo", "service", "window", "severity", "group", "alertname", "le", "quantile"}

// checkGroupBy explains what is wrong with a groupBy list, or returns "".
func checkGroupBy(by []string) string {
	seen := map[string]bool{}
	for _, l := range by {
		if msg := checkLabelName(l, reservedGroupLabels); msg != "" {
			return msg
		}
		if seen[l] {
			return fmt.Sprintf("label %q is listed twice", l)
		}
		seen[l] = true
	}
	return ""
}

// Grouped reports whether the SLO is one SLO per group.
func (o *SLO) Grouped() bool { return len(o.GroupBy) > 0 && o.Parent == "" }

// GroupPolicyOrDefault is the SLO's gate policy for groups.
func (o *SLO) GroupPolicyOrDefault() GroupPolicy {
	if o.Gate.Groups == "" {
		return GroupsEach
	}
	return o.Gate.Groups
}

// MaxGroupsOrDefault is how many groups the SLO follows at most.
func (o *SLO) MaxGroupsOrDefault() int {
	if o.MaxGroups <= 0 {
		return DefaultMaxGroups
	}
	return o.MaxGroups
}

// GroupName is the name of the SLO of one group: the grouped SLO's name
// with the group's labels as a PromQL selector writes them,
// checkout{cluster="eu",route="/pay"}.
func GroupName(parent string, by []string, values map[string]string) string {
	var b strings.Builder
	b.WriteString(parent)
	b.WriteByte('{')
	for i, l := range by {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l + "=" + strconv.Quote(values[l]))
	}
	b.WriteByte('}')
	return b.String()
}

// GroupLabel is the value of the group label on the metrics of a group's
// SLO: cluster="eu", route="/pay".
func GroupLabel(by []string, values map[string]string) string {
	parts := make([]string, len(by))
	for i, l := range by {
		parts[i] = l + "=" + strconv.Quote(values[l])
	}
	return strings.Join(parts, ", ")
}

// ForGroup returns the SLO of one group of a grouped SLO: its queries select
// only the series with the group's label values, its labels carry them, and
// Parent names the grouped SLO. values must hold a value for every GroupBy
// label ("" selects the series without the label).
func (o *SLO) ForGroup(values map[string]string) (*SLO, error) {
	if !o.Grouped() {
		return nil, fmt.Errorf("slo %q is not grouped", o.Name)
	}
	ms := make([]*labels.Matcher, 0, len(o.GroupBy))
	group := make(map[string]string, len(o.GroupBy))
	for _, l := range o.GroupBy {
		v, ok := values[l]
		if !ok {
			return nil, fmt.Errorf("slo %q: group without a value for %q", o.Name, l)
		}
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l, v))
		group[l] = v
	}
	c := *o
	c.Name = GroupName(o.Name, o.GroupBy, values)
	c.Parent = o.Name
	c.Group = group
	c.Labels = maps.Clone(o.Labels)
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	maps.Copy(c.Labels, group)
	inject := func(q string) (string, error) {
		if q == "" {
			return "", nil
		}
		return InjectMatchers(q, ms)
	}
	var err error
	ind := o.Indicator
	switch {
	case ind.Ratio != nil:
		r := *ind.Ratio
		if r.Errors, err = inject(r.Errors); err == nil {
			if r.Good, err = inject(r.Good); err == nil {
				r.Total, err = inject(r.Total)
			}
		}
		c.Indicator = Indicator{Ratio: &r}
	case ind.Latency != nil:
		l := *ind.Latency
		l.Histogram, err = inject(l.Histogram)
		c.Indicator = Indicator{Latency: &l}
	case ind.Raw != nil:
		r := *ind.Raw
		r.ErrorRatio, err = inject(r.ErrorRatio)
		c.Indicator = Indicator{Raw: &r}
	case ind.Threshold != nil:
		t := *ind.Threshold
		t.Query, err = inject(t.Query)
		c.Indicator = Indicator{Threshold: &t}
	}
	if err != nil {
		return nil, fmt.Errorf("slo %q: %w", c.Name, err)
	}
	return &c, nil
}

// InjectMatchers adds ms to every series selector of the query template q
// (a selector that has a matcher on the same label gets both, which select
// the intersection).
func InjectMatchers(q string, ms []*labels.Matcher) (string, error) {
	expr, err := parseTemplate(q)
	if err != nil {
		return "", err
	}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			vs.LabelMatchers = append(vs.LabelMatchers, ms...)
		}
		return nil
	})
	return templated(expr), nil
}

// parseTemplate parses a query template with the window sentinel in place
// of {{.window}}, for rewriting through the AST (templated prints it back).
func parseTemplate(q string) (parser.Expr, error) {
	filled := windowRE.ReplaceAllLiteralString(q, model.Duration(windowSentinel).String())
	expr, err := promql.ParseExpr(filled)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	return expr, nil
}

// DiscoveryQuery is the instant query that lists the groups of a grouped
// SLO with data in the last rng: one series per group, labelled with the
// group's values, from every series selector of the queries that count its
// events (or time) in total.
func (o *SLO) DiscoveryQuery(rng time.Duration) (string, error) {
	if !o.Grouped() {
		return "", fmt.Errorf("slo %q is not grouped", o.Name)
	}
	var q string
	ind := o.Indicator
	switch {
	case ind.Ratio != nil:
		q = ind.Ratio.Total
	case ind.Raw != nil:
		q = ind.Raw.ErrorRatio
	case ind.Threshold != nil:
		q = ind.Threshold.Query
	case ind.Latency != nil:
		q = ind.Latency.Histogram
	}
	expr, err := parseTemplate(q)
	if err != nil {
		return "", err
	}
	var parts []string
	seen := map[string]bool{}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		sel := &parser.VectorSelector{Name: vs.Name, LabelMatchers: vs.LabelMatchers}
		if ind.Latency != nil {
			// The histogram's _count series, which every classic
			// histogram has; a native one is its own name.
			if !ind.Latency.Native {
				sel = countSelector(vs)
			}
		}
		call := &parser.Call{Func: parser.Functions["last_over_time"], Args: parser.Expressions{&parser.MatrixSelector{VectorSelector: sel, Range: rng}}}
		agg := &parser.AggregateExpr{Op: parser.GROUP, Expr: call, Grouping: slices.Clone(o.GroupBy)}
		s := agg.String()
		if !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
		return nil
	})
	if len(parts) == 0 {
		return "", fmt.Errorf("slo %q: its queries select no series to find groups in", o.Name)
	}
	return strings.Join(parts, " or "), nil
}

// countSelector is the _count series of a classic histogram selector.
func countSelector(vs *parser.VectorSelector) *parser.VectorSelector {
	name := vs.Name
	var ms []*labels.Matcher
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel {
			if name == "" {
				name = m.Value
			}
			continue
		}
		ms = append(ms, m)
	}
	name += "_count"
	return &parser.VectorSelector{Name: name, LabelMatchers: append(ms, labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, name))}
}
