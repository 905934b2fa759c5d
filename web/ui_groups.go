package web

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/slogate/slogate/evaluator"
)

// Per-group SLOs in the UI. A grouped SLO can have up to maxGroups groups,
// each an SLO of its own: the overview lists them under their parent, the
// worst few only, and the parent's page lists them all.

// overviewGroups is how many groups of one SLO the overview lists under
// it; the rest are a link to the SLO's page.
const overviewGroups = 5

// groupsView is what the page of a grouped SLO says of its groups.
type groupsView struct {
	By, Policy, PolicyText         string
	Found, Tracked, Limit, Limited int
	Discovered                     bool
	// LimitedText warns of the groups not followed; empty if none.
	LimitedText string
	// Rows are the groups followed, worst budget first.
	Rows []sloRow
}

// groupSummary is the parent row's line about its groups.
func groupSummary(g *evaluator.GroupsStatus) string {
	if !g.Discovered {
		return "groups not looked for yet"
	}
	s := strconv.Itoa(g.Tracked) + " groups"
	if g.Tracked == 1 {
		s = "1 group"
	}
	if g.Limited > 0 {
		s += " (" + strconv.Itoa(g.Limited) + " not followed: maxGroups)"
	}
	return s
}

// groupText is a group's label values as people read them, in the order
// of the parent's groupBy: cluster=eu, route=/pay.
func groupText(by []string, values map[string]string) string {
	if len(by) == 0 {
		by = slices.Sorted(maps.Keys(values))
	}
	parts := make([]string, 0, len(by))
	for _, l := range by {
		parts = append(parts, l+"="+values[l])
	}
	return strings.Join(parts, ", ")
}

// groupRows are the rows of the groups of parent found in statuses, worst
// budget first (unknown budgets last).
func groupRows(parent evaluator.SLOStatus, statuses map[string]evaluator.SLOStatus) []sloRow {
	var members []evaluator.SLOStatus
	for _, name := range parent.Groups.Members {
		if st, ok := statuses[name]; ok {
			members = append(members, st)
		}
	}
	slices.SortStableFunc(members, func(a, b evaluator.SLOStatus) int {
		x, y := float64(a.BudgetRemaining), float64(b.BudgetRemaining)
		switch xn, yn := math.IsNaN(x), math.IsNaN(y); {
		case xn && yn:
		case xn:
			return 1
		case yn:
			return -1
		case x != y:
			if x < y {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	rows := make([]sloRow, 0, len(members))
	for _, st := range members {
		r := sloRowOf(st)
		r.IsGroup, r.Label = true, groupText(parent.Groups.By, st.Group)
		rows = append(rows, r)
	}
	return rows
}

func groupsViewOf(st evaluator.SLOStatus, statuses map[string]evaluator.SLOStatus) *groupsView {
	g := st.Groups
	v := &groupsView{By: strings.Join(g.By, ", "), Policy: string(g.Policy),
		Found: g.Found, Tracked: g.Tracked, Limit: g.Limit, Limited: g.Limited, Discovered: g.Discovered,
		Rows: groupRows(st, statuses)}
	if g.Limited > 0 {
		verb := "are"
		if g.Limited == 1 {
			verb = "is"
		}
		v.LimitedText = fmt.Sprintf("%d of the %d groups found %s not followed because of maxGroups (%d): they count only in the aggregate. Raise spec.maxGroups or group by fewer labels.", g.Limited, g.Found, verb, g.Limit)
	}
	switch g.Policy {
	case "aggregate":
		v.PolicyText = "only the aggregate decides gates and run budgets"
	default:
		v.PolicyText = "the aggregate and every group must meet the gate"
	}
	return v
}

// statusesByName indexes the snapshot's SLO statuses.
func statusesByName(snap *evaluator.Snapshot) map[string]evaluator.SLOStatus {
	out := map[string]evaluator.SLOStatus{}
	for _, st := range snap.SLOs() {
		out[st.Name] = st
	}
	return out
}
