// Package shared lets shards see each other's SLOs: after every cycle a
// shard publishes the statuses of its SLOs that gates, runs and slo:
// probes may ask about to the shared store, and reads the others'. Gates
// and runs then read one view that is this shard's snapshot with the other
// shards' statuses under it, judged fresh by the same rule as local ones:
// a status nobody published for longer than the staleness limit reads as
// stale (so unknown, never a stale pass), whether its shard stopped or the
// database did.
package shared

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/chaos"
	"github.com/slogate/slogate/evaluator/pgstore"
	"github.com/slogate/slogate/slo"
)

// Store is the part of the shared store this package uses.
type Store interface {
	PublishStatuses(ctx context.Context, rows []pgstore.StatusRow) error
	ReadStatuses(ctx context.Context, shardIndex, shardCount int) ([]pgstore.StatusRow, error)
}

// Options configure Statuses.
type Options struct {
	Store                  Store
	ShardIndex, ShardCount int
	Replica                string
	// StaleAfter is the evaluator's staleness limit, which judges the
	// statuses read for the evaluator's own slo: probes (Remote).
	StaleAfter time.Duration
	Logger     *zap.Logger
}

// Published is what a shard publishes of one SLO: its status, and the
// counts from the points of Offsets back to the evaluation time, so that
// another shard can answer SLOCounts for a gate's burn-rate window or a
// run's spend since its start.
type Published struct {
	Status evaluator.SLOStatus `json:"status"`
	Points []Point             `json:"points"`
	// Windows are the durations of Status.Windows, in order, which their
	// JSON leaves out: runs and burn-rate probes look windows up by them.
	Windows []time.Duration `json:"windows"`
}

// decode reads a published status, with its windows' durations.
func decode(b []byte) (Published, error) {
	var p Published
	if err := json.Unmarshal(b, &p); err != nil {
		return Published{}, err
	}
	if len(p.Windows) == len(p.Status.Windows) {
		for i := range p.Status.Windows {
			p.Status.Windows[i].Duration = p.Windows[i]
		}
	}
	return p, nil
}

// Point is the bad and total events in (EvaluatedAt − Back, EvaluatedAt].
type Point struct {
	Back     time.Duration `json:"back"`
	Bad      float64       `json:"bad"`
	Total    float64       `json:"total"`
	Complete bool          `json:"complete"`
}

// Offsets are the points published: every minute for the first hour, every
// five up to six hours, every half hour up to a day. A span that starts
// between two points is answered from the earlier one, which counts more
// events, never fewer: a run's spend read from another shard may be
// overstated by up to one step, never understated.
func Offsets() []time.Duration {
	var out []time.Duration
	for d := time.Minute; d <= time.Hour; d += time.Minute {
		out = append(out, d)
	}
	for d := time.Hour + 5*time.Minute; d <= 6*time.Hour; d += 5 * time.Minute {
		out = append(out, d)
	}
	for d := 6*time.Hour + 30*time.Minute; d <= 24*time.Hour; d += 30 * time.Minute {
		out = append(out, d)
	}
	return out
}

// Statuses publishes and reads; its view of the other shards is replaced
// whole after each read, so readers never see half of one.
type Statuses struct {
	o      Options
	logger *zap.Logger
	remote atomic.Pointer[map[string]Published]
	failed atomic.Bool
}

// New returns Statuses with an empty view of the other shards.
func New(o Options) *Statuses {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	s := &Statuses{o: o, logger: o.Logger.With(zap.String("component", "shared-statuses"))}
	s.remote.Store(&map[string]Published{})
	return s
}

// Referenced are the SLOs other shards may ask about: those experiments
// list and slo: probes watch.
func Referenced(defs *slo.Set) map[string]bool {
	out := map[string]bool{}
	for _, e := range defs.Experiments {
		for _, name := range e.SLOs {
			out[name] = true
		}
	}
	for _, h := range defs.Hypotheses {
		for _, p := range h.Probes {
			if p.SLO != "" {
				out[p.SLO] = true
			}
		}
	}
	return out
}

// OnCycle publishes the referenced SLOs of snap (and the groups of those
// that are grouped), then reads the other shards'. Errors are logged: the
// view stays as it was and ages into staleness.
func (s *Statuses) OnCycle(ctx context.Context, snap *evaluator.Snapshot) {
	rows := s.rows(snap)
	published := true
	if err := s.o.Store.PublishStatuses(ctx, rows); err != nil {
		s.fail("cannot publish SLO statuses; other shards will read them as stale", err)
		published = false
	}
	read, err := s.o.Store.ReadStatuses(ctx, s.o.ShardIndex, s.o.ShardCount)
	if err != nil {
		s.fail("cannot read the other shards' SLO statuses; they turn stale", err)
		return
	}
	view := make(map[string]Published, len(read))
	for _, r := range read {
		p, err := decode(r.Status)
		if err != nil {
			s.logger.Warn("unreadable published status", zap.String("slo", r.Name), zap.Error(err))
			continue
		}
		view[r.Name] = p
	}
	s.remote.Store(&view)
	// Shared again only when both ways work: a store that can be read but
	// not written would otherwise log a failure and a recovery every cycle.
	if published && s.failed.Swap(false) {
		s.logger.Info("SLO statuses are shared again")
	}
}

func (s *Statuses) fail(msg string, err error) {
	if !s.failed.Swap(true) {
		s.logger.Warn(msg, zap.Error(err))
	}
}

func (s *Statuses) rows(snap *evaluator.Snapshot) []pgstore.StatusRow {
	var rows []pgstore.StatusRow
	add := func(name string) {
		st, ok := snap.SLO(name)
		if !ok || st.EvaluatedAt.IsZero() {
			return
		}
		p := Published{Status: st, Windows: make([]time.Duration, len(st.Windows))}
		for i, ws := range st.Windows {
			p.Windows[i] = ws.Duration
		}
		for _, back := range Offsets() {
			bad, total, complete, _ := snap.SLOCounts(name, st.EvaluatedAt.Add(-back), st.EvaluatedAt)
			p.Points = append(p.Points, Point{Back: back, Bad: finite(bad), Total: finite(total), Complete: complete})
		}
		b, err := json.Marshal(p)
		if err != nil {
			s.logger.Warn("cannot encode a status to publish", zap.String("slo", name), zap.Error(err))
			return
		}
		rows = append(rows, pgstore.StatusRow{Name: name, ShardIndex: s.o.ShardIndex, ShardCount: s.o.ShardCount,
			Replica: s.o.Replica, Status: b, EvaluatedAt: st.EvaluatedAt})
	}
	names := Referenced(snap.Definitions())
	sorted := make([]string, 0, len(names))
	for name := range names {
		sorted = append(sorted, name)
	}
	sort.Strings(sorted)
	for _, name := range sorted {
		add(name)
		if st, ok := snap.SLO(name); ok && st.Groups != nil {
			for _, m := range st.Groups.Members {
				add(m)
			}
		}
	}
	return rows
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// Remote returns the other shards' statuses, judged fresh as of at: for
// the evaluator's slo: probes (evaluator.Options.RemoteSLOs), which use
// them for the SLOs it does not evaluate.
func (s *Statuses) Remote(at time.Time) map[string]evaluator.SLOStatus {
	view := *s.remote.Load()
	out := make(map[string]evaluator.SLOStatus, len(view))
	for name, p := range view {
		out[name] = judge(func(last time.Time) bool { return !last.IsZero() && at.Sub(last) < s.o.StaleAfter }, p.Status)
	}
	return out
}

// View is snap with the other shards' statuses under it.
func (s *Statuses) View(snap *evaluator.Snapshot) chaos.Statuses {
	return &view{Snapshot: snap, remote: *s.remote.Load()}
}

func judge(fresh func(last time.Time) bool, st evaluator.SLOStatus) evaluator.SLOStatus {
	if st.Fresh && !fresh(st.LastSuccess) {
		st.Fresh = false
		st.Error = fmt.Sprintf("published by another shard, last successful evaluation at %s: that shard or the shared store is not keeping up", st.LastSuccess.UTC().Format(time.RFC3339))
	}
	return st
}

type view struct {
	*evaluator.Snapshot
	remote map[string]Published
}

func (v *view) SLO(name string) (evaluator.SLOStatus, bool) {
	if st, ok := v.Snapshot.SLO(name); ok {
		return st, true
	}
	p, ok := v.remote[name]
	if !ok {
		return evaluator.SLOStatus{}, false
	}
	return judge(v.Snapshot.Fresh, p.Status), true
}

// SLODef also finds the definitions of another shard's groups, from their
// grouped SLO's.
func (v *view) SLODef(name string) *slo.SLO {
	if def := v.Snapshot.SLODef(name); def != nil {
		return def
	}
	p, ok := v.remote[name]
	if !ok || p.Status.Parent == "" {
		return nil
	}
	parent := v.Snapshot.SLODef(p.Status.Parent)
	if parent == nil {
		return nil
	}
	def, err := parent.ForGroup(p.Status.Group)
	if err != nil {
		return nil
	}
	return def
}

// SLOCounts answers for another shard's SLO from its points: to must be
// that shard's evaluation time, or later by no more than the staleness
// limit (the run supervisor asks at its own cycle's time); from is
// answered from the point at or before it.
func (v *view) SLOCounts(name string, from, to time.Time) (bad, total float64, complete, ok bool) {
	if _, local := v.Snapshot.SLO(name); local {
		return v.Snapshot.SLOCounts(name, from, to)
	}
	p, found := v.remote[name]
	if !found {
		return 0, 0, false, false
	}
	at := p.Status.EvaluatedAt
	if !v.Snapshot.Fresh(at) {
		return 0, 0, false, true
	}
	back := at.Sub(from)
	if back <= 0 {
		return 0, 0, true, true
	}
	for _, pt := range p.Points {
		if pt.Back >= back {
			return pt.Bad, pt.Total, pt.Complete, true
		}
	}
	return 0, 0, false, true // older than the points reach
}
