package slo

import (
	"slices"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/slogate/slogate/internal/yamlnode"
)

// Per-group SLOs in the formats slogate reads besides its own. Pyrra says
// it with grouping: [label, ...] on its indicator. Sloth has no field for
// it: its SLI rule divides the error query by the total query series by
// series, so queries that both aggregate by the same labels give one SLI,
// and one set of alerts, per group. Both become SLO.GroupBy; the queries
// stay as written, since the evaluator sums what they return into the
// aggregate and injects each group's values into their selectors.

// pyrraGrouping reads the grouping list of a Pyrra indicator. An empty
// list is no grouping (Pyrra's own default when it writes the field).
func (d *decoder) pyrraGrouping(g *fields) []string {
	n := g.node("grouping")
	if n == nil {
		return nil
	}
	path := joinPath(g.path, "grouping")
	var by []string
	for i, e := range g.list("grouping") {
		if e == nil || e.Kind != yaml.ScalarNode || e.Value == "" {
			got := "null"
			if e != nil {
				got = yamlnode.Describe(e)
			}
			d.errorf(cmpNode(e, n), "%s[%d]: expected a label name, got %s", path, i, got)
			return nil
		}
		by = append(by, e.Value)
		if msg := checkGroupBy(by); msg != "" {
			d.errorf(e, "%s[%d]: %s", path, i, msg)
			return nil
		}
	}
	return by
}

// topGrouping returns the labels q's result is grouped by, as far as its
// outermost operation shows: an aggregation by labels (sum by (cluster)
// (...) or sum(...) by (cluster)), behind any parentheses, or an operation
// between such aggregations by the same labels (count - fast, as Sloth's
// latency SLOs write) or with a number. nil when it is none of these
// (without, group_left, an aggregation by nothing). q is a query template
// the loader has already accepted.
func topGrouping(q string) []string {
	expr, err := promql.ParseExpr(fillForParse(q))
	if err != nil {
		return nil
	}
	return grouping(expr)
}

func grouping(expr parser.Expr) []string {
	switch e := expr.(type) {
	case *parser.ParenExpr:
		return grouping(e.Expr)
	case *parser.AggregateExpr:
		if e.Without || len(e.Grouping) == 0 {
			return nil
		}
		return e.Grouping
	case *parser.BinaryExpr:
		lScalar, rScalar := e.LHS.Type() == parser.ValueTypeScalar, e.RHS.Type() == parser.ValueTypeScalar
		switch {
		case lScalar && rScalar:
			return nil
		case lScalar:
			return grouping(e.RHS)
		case rScalar:
			return grouping(e.LHS)
		}
		// group_left and group_right add labels from the other side.
		if m := e.VectorMatching; m != nil && (m.Card == parser.CardManyToOne || m.Card == parser.CardOneToMany) {
			return nil
		}
		l, r := grouping(e.LHS), grouping(e.RHS)
		if l == nil || r == nil || !sameLabels(l, r) {
			return nil
		}
		return l
	}
	return nil
}

// sameLabels reports whether a and b list the same labels in any order.
func sameLabels(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// byText renders a grouping as PromQL writes it: (cluster, route).
func byText(by []string) string { return "(" + strings.Join(by, ", ") + ")" }

// slothGroupBy makes a Sloth SLO grouped when its error and total queries
// both aggregate by the same labels, in the order the error query lists
// them. Queries grouped differently are a trap in Sloth too (its division
// pairs series with the same labels, and theirs differ), so that is a
// warning, and the SLO stays one aggregate. Both queries must have been accepted by the loader.
func (d *decoder) slothGroupBy(ev *fields, sp slothSpelling, r *RatioIndicator) []string {
	errNode, totalNode := ev.node(sp.errorQuery), ev.node(sp.totalQuery)
	errPath, totalPath := joinPath(ev.path, sp.errorQuery), joinPath(ev.path, sp.totalQuery)
	errBy, totalBy := topGrouping(r.Errors), topGrouping(r.Total)
	example := errBy
	if example == nil {
		example = totalBy
	}
	fix := "the SLO is evaluated as one aggregate, not one SLO per group; aggregate both queries by the same labels, like sum by " +
		byText(example) + " (rate(...)), for one SLO per group, or neither for the aggregate alone"
	switch {
	case errBy == nil && totalBy == nil:
		return nil
	case errBy == nil:
		d.warnf(errNode, "%s: not aggregated by labels, while %s is, by %s: the groups differ, so %s", errPath, sp.totalQuery, byText(totalBy), fix)
		return nil
	case totalBy == nil:
		d.warnf(totalNode, "%s: not aggregated by labels, while %s is, by %s: the groups differ, so %s", totalPath, sp.errorQuery, byText(errBy), fix)
		return nil
	case !sameLabels(errBy, totalBy):
		d.warnf(totalNode, "%s: aggregated by %s, but %s by %s: the groups differ, so %s", totalPath, byText(totalBy), sp.errorQuery, byText(errBy), fix)
		return nil
	}
	if msg := checkGroupBy(errBy); msg != "" {
		d.errorf(errNode, "%s: aggregated by %s, which makes one SLO per group, but %s; aggregate by other labels, or by none for the aggregate alone",
			errPath, byText(errBy), msg)
		return nil
	}
	return slices.Clone(errBy)
}
