package evaluator

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

// Unions: SLOs that share nothing (each its own metric, histogram or query
// shape) cannot be grouped by label values, and each newest-slice query
// would cost Prometheus its fixed per-request cost. Unrelated instant
// queries of one cycle's time are therefore asked together,
//
//	label_replace(<q1>, "__slogate_union", "0", "", "")
//	  or label_replace(<q2>, "__slogate_union", "1", "", "") or ...
//
// and the answer is split on that label, which is removed: each member
// gets the series its own query returns (the label makes every member's
// series distinct, so `or` keeps them all). A union that fails is not an
// answer: its members are asked on their own, so one bad query costs its
// companions a retry, never a wrong value.

// unionLabel marks which member of a union a series answers.
const unionLabel = "__slogate_union"

// Bounds of one union: the members and the bytes of PromQL sent.
const (
	maxUnionMembers = 250
	maxUnionBytes   = 256 << 10
)

// queryUnion is one request that answers several unrelated instant
// queries asked at the same time.
type queryUnion struct {
	expr    string
	at      time.Time
	members []*plannedQuery
}

// unionForms remembers, per query text, the form a union embeds (the
// query printed from its parsed tree) or "" for a query that cannot be
// in a union (not an instant vector); asked once per query, not per cycle.
type unionForms map[string]string

// form returns the embeddable form of q, parsing it the first time.
func (f unionForms) form(q string) string {
	if s, ok := f[q]; ok {
		return s
	}
	s := ""
	if expr, err := promqlParser.ParseExpr(q); err == nil && expr.Type() == parser.ValueTypeVector {
		s = expr.String()
	}
	f[q] = s
	return s
}

// union plans unions of the instant queries no group answers, by time,
// in planning order; forms caches what each query embeds as.
func (pl *planner) union(forms unionForms) {
	byTime := map[int64][]*plannedQuery{}
	var times []int64
	for _, q := range pl.p.queries {
		if !q.instant || q.group != nil || forms.form(q.expr) == "" {
			continue
		}
		t := q.at.UnixNano()
		if _, ok := byTime[t]; !ok {
			times = append(times, t)
		}
		byTime[t] = append(byTime[t], q)
	}
	slices.Sort(times)
	for _, t := range times {
		qs := byTime[t]
		for len(qs) > 0 {
			n, size := 0, 0
			for n < len(qs) && n < maxUnionMembers {
				size += len(forms[qs[n].expr]) + 52 // label_replace(…), " or ", parentheses
				if n > 0 && size > maxUnionBytes {
					break
				}
				n++
			}
			if n >= 2 {
				pl.addUnion(qs[:n], forms)
			}
			qs = qs[n:]
		}
	}
}

func (pl *planner) addUnion(members []*plannedQuery, forms unionForms) {
	terms := make([]string, len(members))
	for i, m := range members {
		terms[i] = forms[m.expr]
	}
	u := &queryUnion{expr: UnionQuery(terms), at: members[0].at, members: members}
	for _, m := range members {
		m.union = u
	}
	pl.p.unions = append(pl.p.unions, u)
}

// UnionQuery is the PromQL of the union of the instant vector queries
// terms, as the evaluator asks it: term i labelled __slogate_union="i",
// joined by `or` in a balanced tree. Prometheus's `or` hashes the label
// sets of its left side, so a chain (((q0 or q1) or q2) ...) costs the
// square of its length: a chain of 250 members cost 30 % more Prometheus
// CPU than 5 chains of 50; the tree costs n·log n.
func UnionQuery(terms []string) string {
	var b strings.Builder
	writeUnion(&b, terms, 0)
	return b.String()
}

// writeUnion writes the union of terms, whose first is term number first.
func writeUnion(b *strings.Builder, terms []string, first int) {
	if len(terms) == 1 {
		b.WriteString(`label_replace(`)
		b.WriteString(terms[0])
		b.WriteString(`, "` + unionLabel + `", "`)
		b.WriteString(strconv.Itoa(first))
		b.WriteString(`", "", "")`)
		return
	}
	half := len(terms) / 2
	b.WriteByte('(')
	writeUnion(b, terms[:half], first)
	b.WriteString(" or ")
	writeUnion(b, terms[half:], first+half)
	b.WriteByte(')')
}

// split gives each member of u its part of the union's answer v; false
// when v is not the vector a union returns (the members then ask alone).
func (u *queryUnion) split(v model.Value) bool {
	vec, ok := v.(model.Vector)
	if !ok {
		return false
	}
	parts := make([]model.Vector, len(u.members))
	for _, s := range vec {
		i, err := strconv.Atoi(string(s.Metric[unionLabel]))
		if err != nil || i < 0 || i >= len(parts) {
			return false
		}
		m := make(model.Metric, len(s.Metric)-1)
		for k, val := range s.Metric {
			if k != unionLabel {
				m[k] = val
			}
		}
		parts[i] = append(parts[i], &model.Sample{Metric: m, Value: s.Value, Timestamp: s.Timestamp, Histogram: s.Histogram})
	}
	for i, q := range u.members {
		if parts[i] == nil {
			parts[i] = model.Vector{}
		}
		q.v, q.done = parts[i], true
	}
	return true
}
