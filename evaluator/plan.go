package evaluator

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/slo"
)

// A plan is what one cycle asks Prometheus, as data: built from what every
// SLO tracker and every query probe needs at the cycle's time, with each
// distinct query once, and the newest-slice queries of SLOs that differ
// only in label values grouped into one (batch.go). Fetching fills in the
// answers; applying routes each answer back to whoever asked. Planning
// changes nothing, so a plan can be printed and compared in tests.
type plan struct {
	at      time.Time
	queries []*plannedQuery // distinct, in planning order
	byKey   map[queryKey]*plannedQuery
	groups  []*queryGroup
	unions  []*queryUnion
	// slos are the requests of each SLO, in the order its tracker listed them.
	slos map[string][]plannedReq
	// probes are the queries of each hypothesis' probes by index (nil for
	// SLO probes without an events query).
	probes map[string][]*probeQueries
	// discovery is the query listing the groups of each grouped SLO.
	discovery map[string]*plannedQuery
}

// plannedQuery is one distinct PromQL request of a cycle.
type plannedQuery struct {
	expr    string
	instant bool
	at      time.Time // instant queries
	rng     Range     // range queries
	// spreadBy names the SLO whose offset into the cycle delays the query
	// when it is asked on its own; "" asks at once (backfills, probes).
	spreadBy string
	shape    *batchShape // set when the query may be grouped
	group    *queryGroup // set when a grouped query is planned to answer it
	union    *queryUnion // set when a union is planned to answer it

	// Filled by fetch.
	v    model.Value
	err  error
	done bool
}

// queryKey names a query with its time or range: identical keys are one
// query. A comparable struct, so that looking a query up allocates nothing.
type queryKey struct {
	instant    bool
	expr       string
	at         int64 // instant queries
	start, end int64 // range queries
	step       time.Duration
}

func (q *plannedQuery) key() queryKey {
	if q.instant {
		return queryKey{instant: true, expr: q.expr, at: q.at.UnixNano()}
	}
	return queryKey{expr: q.expr, start: q.rng.Start.UnixNano(), end: q.rng.End.UnixNano(), step: q.rng.Step}
}

func rangeKey(r Range) string {
	return strconv.FormatInt(r.Start.UnixNano(), 10) + "\x00" + strconv.FormatInt(r.End.UnixNano(), 10) + "\x00" + r.Step.String()
}

// String prints the query as a log line or a test expectation would.
func (q *plannedQuery) String() string {
	if q.instant {
		return fmt.Sprintf("instant %s at %s", q.expr, q.at.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("range %s from %s to %s step %s", q.expr, q.rng.Start.UTC().Format(time.RFC3339), q.rng.End.UTC().Format(time.RFC3339), slo.FormatDuration(q.rng.Step))
}

// plannedReq is a tracker's sliceReq with the query of each of its
// templates (bad, good, total, raw; nil where the SLO has none).
type plannedReq struct {
	req     sliceReq
	queries [4]*plannedQuery
}

// queryGroup is one grouped query that answers several planned queries.
type queryGroup struct {
	expr    string
	by      []string
	instant bool
	at      time.Time
	rng     Range
	members []*plannedQuery
}

// planner builds a plan.
type planner struct {
	p *plan
	// spread reports whether the SLO's own queries wait for its offset
	// into the cycle (steady state) or go at once (backfill).
	spread func(name string) bool
}

func newPlan(at time.Time) *plan {
	return &plan{at: at, byKey: map[queryKey]*plannedQuery{}, slos: map[string][]plannedReq{}, probes: map[string][]*probeQueries{}, discovery: map[string]*plannedQuery{}}
}

// query returns the plan's query for q, adding q if it is new.
func (pl *planner) query(q *plannedQuery) *plannedQuery {
	key := q.key()
	if have, ok := pl.p.byKey[key]; ok {
		// Shared by several: it waits for no one's offset unless all wait.
		if have.spreadBy != "" && q.spreadBy == "" {
			have.spreadBy = ""
		}
		return have
	}
	pl.p.byKey[key] = q
	pl.p.queries = append(pl.p.queries, q)
	return q
}

// addSLO plans what tracker t needs at the plan's time.
func (pl *planner) addSLO(t *sloTracker) {
	name := t.def.Name
	spreadBy := ""
	if pl.spread != nil && pl.spread(name) {
		spreadBy = name
	}
	var reqs []plannedReq
	for _, req := range t.needs(pl.p.at) {
		pr := plannedReq{req: req}
		for i, expr := range t.queries(req.step) {
			if expr == "" {
				continue
			}
			q := &plannedQuery{expr: expr, instant: req.instant(), spreadBy: spreadBy}
			if q.instant {
				q.at = req.end(req.first)
			} else {
				q.rng = req.rng()
			}
			if s := t.shapes[i]; s != nil && s.query == q.expr {
				q.shape = s
			}
			pr.queries[i] = pl.query(q)
		}
		reqs = append(reqs, pr)
	}
	pl.p.slos[name] = reqs
}

// addHypothesis plans the queries of h's probes: instant queries, and the
// baselines and samples of relative tolerances. runStart is the start of
// the run that watches h (zero if none); cache holds the frozen baselines
// already measured.
func (pl *planner) addHypothesis(h *slo.Hypothesis, runStart time.Time, cache map[string]Result) {
	qs := make([]*probeQueries, len(h.Probes))
	for i, p := range h.Probes {
		switch {
		case p.SLO == "":
			qs[i] = pl.planProbe(h, p, runStart, cache)
		}
	}
	pl.p.probes[h.Name] = qs
}

// maxGroupPoints bounds the points of one grouped answer: a start of
// 10,000 SLOs would otherwise ask for 10h of 30 s slices of all of them in
// one answer of hundreds of MB.
const maxGroupPoints = 200_000

// group plans grouped queries for the queries that share a shape and a
// time, unless disabled. A query left out of every group is asked on its
// own.
func (pl *planner) group() {
	type bucket struct {
		sample  *plannedQuery
		members []*plannedQuery
	}
	buckets := map[string]*bucket{}
	for _, q := range pl.p.queries {
		if q.shape == nil {
			continue
		}
		key := q.shape.key + "\x02" + q.timeKey()
		b := buckets[key]
		if b == nil {
			b = &bucket{sample: q}
			buckets[key] = b
		}
		b.members = append(b.members, q)
	}
	keys := make([]string, 0, len(buckets))
	for k := range buckets {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b := buckets[k]
		members := b.members
		slices.SortFunc(members, func(x, y *plannedQuery) int { return strings.Compare(x.expr, y.expr) })
		points := 1
		if !b.sample.instant {
			points = int(b.sample.rng.End.Sub(b.sample.rng.Start)/b.sample.rng.Step) + 1
		}
		size := max(2, maxGroupPoints/points)
		for len(members) > 0 {
			n := min(size, len(members))
			pl.addGroup(b.sample, members[:n])
			members = members[n:]
		}
	}
}

func (pl *planner) addGroup(sample *plannedQuery, members []*plannedQuery) {
	shapes := make([]*batchShape, len(members))
	for i, m := range members {
		shapes[i] = m.shape
	}
	expr, by := groupQuery(shapes)
	if expr == "" {
		return
	}
	g := &queryGroup{expr: expr, by: by, instant: sample.instant, at: sample.at, rng: sample.rng, members: members}
	for _, m := range members {
		m.group = g
	}
	pl.p.groups = append(pl.p.groups, g)
}

// timeKey is the time part of key: queries of one group share it.
func (q *plannedQuery) timeKey() string {
	if q.instant {
		return strconv.FormatInt(q.at.UnixNano(), 10)
	}
	return rangeKey(q.rng)
}

// fetchedFor returns the answers of an SLO's requests, for its tracker.
func (p *plan) fetchedFor(name string) []fetched {
	reqs := p.slos[name]
	out := make([]fetched, len(reqs))
	for i, pr := range reqs {
		out[i].req = pr.req
		for j, q := range pr.queries {
			if q != nil {
				out[i].answers[j] = answer{query: q.expr, v: q.v, err: q.err}
			}
		}
	}
	return out
}

// String lists the plan: each grouped query with the queries it answers,
// then the queries asked on their own.
func (p *plan) String() string {
	var b strings.Builder
	for _, g := range p.groups {
		fmt.Fprintf(&b, "group %s answers %d\n", g.expr, len(g.members))
	}
	for _, u := range p.unions {
		fmt.Fprintf(&b, "union of %d at %s\n", len(u.members), u.at.UTC().Format(time.RFC3339))
	}
	for _, q := range p.queries {
		if q.group == nil && q.union == nil {
			b.WriteString(q.String() + "\n")
		}
	}
	return b.String()
}
