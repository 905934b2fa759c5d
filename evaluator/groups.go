package evaluator

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/slogate/slogate/slo"
)

// Per-group SLOs (slo.SLO.GroupBy). The grouped SLO's own tracker measures
// the aggregate over all groups. Each cycle also asks which groups have
// data (slo.SLO.DiscoveryQuery: over the whole window the first time, so
// that groups which appeared earlier in the window are found, then over
// discoveryRange), and every group found gets a tracker of its own for the
// SLO of that group (slo.SLO.ForGroup), up to maxGroups. From then on a
// group is an SLO like any other: its slices are backfilled and kept, its
// newest-slice queries are batched with its siblings' (which differ only in
// the group's label values, batch.go), its buffers are snapshotted, and it
// has its own status, metrics and alerts. A group without data for a whole
// SLO window is dropped.

// discoveryRange is how far back each cycle's discovery looks for series:
// Prometheus's staleness period, so that a group whose series are scraped
// less often than every cycle does not blink.
const discoveryRange = 5 * time.Minute

// groupSet is what the evaluator knows of the groups of one grouped SLO
// (guarded by cycleMu).
type groupSet struct {
	by      string // the GroupBy the members were found with
	members map[string]*groupMember
	// discovered is set once a discovery answered; found and limited are
	// the groups of the latest answer, and those of them not followed.
	discovered     bool
	found, limited int
	loggedLimited  int
}

type groupMember struct {
	values   map[string]string
	lastSeen time.Time
}

func groupByKey(def *slo.SLO) string { return strings.Join(def.GroupBy, "\x00") }

// groupsOf returns the group set of the grouped SLO def, new or reset when
// def groups by other labels than before (cycleMu held).
func (e *Evaluator) groupsOf(def *slo.SLO) *groupSet {
	gs := e.groups[def.Name]
	if gs == nil || gs.by != groupByKey(def) {
		gs = &groupSet{by: groupByKey(def), members: map[string]*groupMember{}}
		e.groups[def.Name] = gs
	}
	return gs
}

// groupTrackers returns trackers for the known groups of the grouped SLOs
// among trackers, for the definitions in trackers (cycleMu held). Groups
// beyond a lowered maxGroups are forgotten, those of SLOs no longer
// grouped or defined too.
func (e *Evaluator) groupTrackers(trackers map[string]*sloTracker) map[string]*sloTracker {
	out := map[string]*sloTracker{}
	for name := range e.groups {
		if t, ok := trackers[name]; !ok || !t.def.Grouped() {
			delete(e.groups, name)
		}
	}
	for _, t := range trackers {
		if !t.def.Grouped() {
			continue
		}
		gs := e.groupsOf(t.def)
		names := slices.Sorted(maps.Keys(gs.members))
		for i, name := range names {
			if i >= t.def.MaxGroupsOrDefault() {
				delete(gs.members, name)
				continue
			}
			ct, err := e.groupTracker(t.def, gs.members[name].values)
			if err != nil {
				delete(gs.members, name)
				continue
			}
			out[ct.def.Name] = ct
		}
	}
	return out
}

func (e *Evaluator) groupTracker(parent *slo.SLO, values map[string]string) (*sloTracker, error) {
	def, err := parent.ForGroup(values)
	if err != nil {
		return nil, err
	}
	return newSLOTracker(def, e.opts.Interval, e.opts.MinRange)
}

// planDiscovery adds the discovery query of every grouped SLO of cur.
func (e *Evaluator) planDiscovery(pl *planner, cur *Snapshot) {
	for _, name := range cur.sloNames {
		def := cur.slos[name].tracker.def
		if !def.Grouped() {
			continue
		}
		rng := discoveryRange
		if gs := e.groups[name]; gs == nil || !gs.discovered {
			rng = max(def.Window, rng)
		}
		expr, err := def.DiscoveryQuery(rng)
		if err != nil {
			e.logger.Warn("cannot find the groups of an SLO", zap.String("slo", name), zap.Error(err))
			continue
		}
		pl.p.discovery[name] = pl.query(&plannedQuery{expr: expr, instant: true, at: pl.p.at})
	}
}

// updateGroups reads the cycle's discoveries into the group sets, adds a
// tracker for every new group (up to maxGroups) and removes the groups
// without data for a window, in next (cycleMu held). It reports whether
// the SLOs of next changed, and sets the Groups of the grouped SLOs'
// statuses.
func (e *Evaluator) updateGroups(next *Snapshot, p *plan, at time.Time) bool {
	changed := false
	for _, name := range next.sloNames {
		entry := next.slos[name]
		def := entry.tracker.def
		if !def.Grouped() {
			continue
		}
		gs := e.groupsOf(def)
		if q := p.discovery[name]; q != nil && q.err == nil {
			changed = e.discover(next, def, gs, q.v, at) || changed
		} else if q != nil {
			e.logger.Warn("cannot find the groups of an SLO; the groups known are kept", zap.String("slo", name), zap.Error(q.err))
		}
		for member, m := range gs.members {
			if at.Sub(m.lastSeen) > def.Window {
				delete(gs.members, member)
				if old, ok := next.slos[member]; ok && !old.backfilled {
					e.metrics.backfillPending.Dec()
				}
				delete(next.slos, member)
				changed = true
				e.logger.Info("group without data for a whole window: no longer followed", zap.String("slo", name), zap.String("group", member))
			}
		}
	}
	if changed {
		next.sloNames = sortedNames(next.slos)
	}
	for _, name := range next.sloNames {
		entry := next.slos[name]
		def := entry.tracker.def
		if !def.Grouped() {
			continue
		}
		gs := e.groups[name]
		st := &GroupsStatus{By: def.GroupBy, Policy: def.GroupPolicyOrDefault(), Limit: def.MaxGroupsOrDefault(), Members: []string{}}
		if gs != nil {
			st.Found, st.Limited, st.Discovered = gs.found, gs.limited, gs.discovered
			st.Members = slices.Sorted(maps.Keys(gs.members))
		}
		st.Tracked = len(st.Members)
		entry.status.Groups = st
	}
	return changed
}

// discover applies one discovery answer v of grouped SLO def.
func (e *Evaluator) discover(next *Snapshot, def *slo.SLO, gs *groupSet, v model.Value, at time.Time) bool {
	vec, _ := v.(model.Vector)
	seen := map[string]map[string]string{}
	for _, s := range vec {
		values := make(map[string]string, len(def.GroupBy))
		for _, l := range def.GroupBy {
			values[l] = string(s.Metric[model.LabelName(l)])
		}
		seen[slo.GroupName(def.Name, def.GroupBy, values)] = values
	}
	gs.discovered = true
	gs.found, gs.limited = len(seen), 0
	changed := false
	fresh := map[string]*sloTracker{}
	for _, name := range slices.Sorted(maps.Keys(seen)) {
		if m, ok := gs.members[name]; ok {
			m.lastSeen = at
			continue
		}
		if len(gs.members) >= def.MaxGroupsOrDefault() {
			gs.limited++
			continue
		}
		t, err := e.groupTracker(def, seen[name])
		if err != nil {
			e.logger.Warn("cannot follow a group", zap.String("slo", def.Name), zap.String("group", name), zap.Error(err))
			continue
		}
		gs.members[name] = &groupMember{values: seen[name], lastSeen: at}
		fresh[name] = t
	}
	if len(fresh) > 0 {
		e.restoreSnapshots(fresh)
		for name, t := range fresh {
			next.slos[name] = &sloEntry{tracker: t, status: initialSLOStatus(t.def)}
		}
		e.metrics.backfillPending.Add(float64(len(fresh)))
		e.logger.Info("new groups of an SLO: following them", zap.String("slo", def.Name), zap.Int("new", len(fresh)), zap.Int("groups", len(gs.members)))
		changed = true
	}
	if gs.limited != gs.loggedLimited {
		if gs.limited > 0 {
			e.logger.Warn("an SLO has more groups than maxGroups: the others are not followed, only counted in its aggregate; raise spec.maxGroups or group by fewer labels",
				zap.String("slo", def.Name), zap.Int("found", gs.found), zap.Int("maxGroups", def.MaxGroupsOrDefault()), zap.Int("notFollowed", gs.limited))
		}
		gs.loggedLimited = gs.limited
	}
	return changed
}
