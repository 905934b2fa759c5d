package shared

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/pgstore"
	"github.com/slogate/slogate/slo"
)

const (
	interval = 30 * time.Second
	// staleAfter is the evaluator's default: two and a half intervals.
	staleAfter = interval*2 + interval/2
)

// t0 is the first evaluation; every time in these tests is derived from it.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// The SLOs of the tests, by the shard (of two) that evaluates them: busy,
// grouped and idle on shard 0, referenced by the experiment or a probe;
// unreferenced on shard 0, referenced by nobody; other on shard 1.
const (
	busy         = "A"
	grouped      = "payments"
	idle         = "catalog"
	unreferenced = "C"
	other        = "B"
)

// definitions are the SLOs of both shards. Every shard loads all of them
// and evaluates those of its shard.
func definitions() *slo.Set {
	ratio := func(name, job string) *slo.SLO {
		return &slo.SLO{
			Name: name, Service: job, Objective: 99.9, Window: 30 * 24 * time.Hour,
			Indicator: slo.Indicator{Ratio: &slo.RatioIndicator{
				Errors: fmt.Sprintf(`sum(rate(http_requests_total{job=%q,code=~"5.."}[{{.window}}]))`, job),
				Total:  fmt.Sprintf(`sum(rate(http_requests_total{job=%q}[{{.window}}]))`, job),
			}},
			Alerting: slo.Alerting{Enabled: true, Page: slo.AlertTier{Enabled: true}, Ticket: slo.AlertTier{Enabled: true}},
			Gate:     slo.GatePolicy{BurnRateWindow: time.Hour},
		}
	}
	byZone := ratio(grouped, "payments")
	byZone.GroupBy = []string{"zone"}
	return &slo.Set{
		SLOs: []*slo.SLO{ratio(busy, "a"), byZone, ratio(idle, "idle"), ratio(unreferenced, "c"), ratio(other, "b")},
		Hypotheses: []*slo.Hypothesis{{
			Name:      "catalog-steady",
			Probes:    []*slo.Probe{{Name: "budget", SLO: idle, BudgetRemaining: &slo.Tolerance{Op: slo.OpGE, Value: 0.25}}},
			FailAfter: 1, PassAfter: 1, OnNoData: slo.PolicyUnknown, OnError: slo.PolicyUnknown, Series: slo.SeriesAll,
		}},
		Experiments: []*slo.Experiment{{Name: "kill-pod", SLOs: []string{busy, grouped, other}}},
	}
}

// rateQuerier answers like a Prometheus with steady traffic: 100 requests
// a second per job, of which 1 to 7 fail depending on the time (so that
// every cycle's counts differ from the last), and none at all for the
// idle job. The discovery of a grouped SLO finds two zones. fail makes
// every query fail, like an unreachable Prometheus.
type rateQuerier struct{ fail atomic.Bool }

func (q *rateQuerier) value(query string, ts time.Time) model.SampleValue {
	switch {
	case strings.Contains(query, `job="idle"`):
		return 0
	case strings.Contains(query, `code=~"5.."`):
		return model.SampleValue(1 + ts.Unix()/30%7)
	}
	return 100
}

func (q *rateQuerier) series(query string) []model.Metric {
	if strings.HasPrefix(query, "group by (zone)") {
		return []model.Metric{{"zone": "z0"}, {"zone": "z1"}}
	}
	return []model.Metric{{}}
}

func (q *rateQuerier) Query(_ context.Context, query string, ts time.Time) (model.Value, error) {
	if q.fail.Load() {
		return nil, errors.New("prometheus is unreachable")
	}
	var v model.Vector
	for _, m := range q.series(query) {
		v = append(v, &model.Sample{Metric: m, Value: q.value(query, ts), Timestamp: model.TimeFromUnixNano(ts.UnixNano())})
	}
	return v, nil
}

func (q *rateQuerier) QueryRange(_ context.Context, query string, r evaluator.Range) (model.Value, error) {
	if q.fail.Load() {
		return nil, errors.New("prometheus is unreachable")
	}
	var out model.Matrix
	for _, m := range q.series(query) {
		ss := &model.SampleStream{Metric: m}
		for ts := r.Start; !ts.After(r.End); ts = ts.Add(r.Step) {
			ss.Values = append(ss.Values, model.SamplePair{Timestamp: model.TimeFromUnixNano(ts.UnixNano()), Value: q.value(query, ts)})
		}
		out = append(out, ss)
	}
	return out, nil
}

// fakeStore is the shared store in memory, with pgstore's semantics: one
// row per SLO name, replaced only by an evaluation at least as new; a
// shard reads the rows of every other shard. It also keeps every status
// ever published, by SLO and evaluation time, to check what readers see.
type fakeStore struct {
	mu                  sync.Mutex
	rows                map[string]pgstore.StatusRow
	history             map[string]map[time.Time][]byte
	publishErr, readErr error
}

func newFakeStore() *fakeStore {
	return &fakeStore{rows: map[string]pgstore.StatusRow{}, history: map[string]map[time.Time][]byte{}}
}

func (f *fakeStore) PublishStatuses(_ context.Context, rows []pgstore.StatusRow) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.publishErr != nil {
		return f.publishErr
	}
	for _, r := range rows {
		r.Status = bytes.Clone(r.Status)
		if old, ok := f.rows[r.Name]; !ok || !old.EvaluatedAt.After(r.EvaluatedAt) {
			f.rows[r.Name] = r
		}
		if f.history[r.Name] == nil {
			f.history[r.Name] = map[time.Time][]byte{}
		}
		f.history[r.Name][r.EvaluatedAt] = r.Status
	}
	return nil
}

func (f *fakeStore) ReadStatuses(_ context.Context, shardIndex, shardCount int) ([]pgstore.StatusRow, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readErr != nil {
		return nil, f.readErr
	}
	var out []pgstore.StatusRow
	for _, r := range f.rows {
		if r.ShardIndex == shardIndex && r.ShardCount == shardCount {
			continue
		}
		r.Status = bytes.Clone(r.Status)
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeStore) fail(publish, read error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.publishErr, f.readErr = publish, read
}

func (f *fakeStore) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for name := range f.rows {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// published is what shard published of SLO name evaluated at at.
func (f *fakeStore) published(name string, at time.Time) (Published, bool) {
	f.mu.Lock()
	b, ok := f.history[name][at]
	f.mu.Unlock()
	if !ok {
		return Published{}, false
	}
	p, err := decode(b)
	return p, err == nil
}

// clock is the time snapshots are read at.
type clock struct{ ns atomic.Int64 }

func (c *clock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }

// shard is one replica: its evaluator, publishing and reading through
// Statuses after every cycle as app wires them.
type shard struct {
	ev   *evaluator.Evaluator
	st   *Statuses
	q    *rateQuerier
	logs *observer.ObservedLogs
}

func newShard(t *testing.T, index int, store Store, clk *clock, staleAfter time.Duration) *shard {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	s := &shard{q: &rateQuerier{}, logs: logs}
	s.st = New(Options{Store: store, ShardIndex: index, ShardCount: 2, Replica: fmt.Sprintf("replica-%d", index),
		StaleAfter: staleAfter, Logger: zap.New(core)})
	var err error
	s.ev, err = evaluator.New(evaluator.Options{
		Querier: s.q, Interval: interval, Registerer: prometheus.NewRegistry(), DisableBatching: true,
		ShardIndex: index, ShardCount: 2, StaleAfter: staleAfter, RemoteSLOs: s.st.Remote, Now: clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.ev.OnCycle(s.st.OnCycle)
	if err := s.ev.SetDefinitions(definitions()); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *shard) cycle(at time.Time) { s.ev.Evaluate(context.Background(), at) }

// twoShards starts both shards and evaluates them once at t0, shard 0
// first (twice: the first cycle finds the groups, the second backfills
// them), so that shard 1 reads shard 0's statuses at once.
func twoShards(t *testing.T, staleAfter time.Duration) (*fakeStore, *clock, *shard, *shard) {
	t.Helper()
	for name, want := range map[string]int{busy: 0, grouped: 0, idle: 0, unreferenced: 0, other: 1} {
		if got := evaluator.ShardOf(name, 2); got != want {
			t.Fatalf("SLO %s is evaluated by shard %d, the tests assume %d: rename it", name, got, want)
		}
	}
	store, clk := newFakeStore(), &clock{}
	clk.set(t0)
	s0, s1 := newShard(t, 0, store, clk, staleAfter), newShard(t, 1, store, clk, staleAfter)
	s0.cycle(t0)
	s0.cycle(t0)
	s1.cycle(t0)
	for _, name := range []string{busy, idle} {
		if st, _ := s0.ev.SLO(name); !st.Fresh {
			t.Fatalf("shard 0 did not evaluate %s: %+v", name, st)
		}
	}
	return store, clk, s0, s1
}

// statusOpts compare statuses as published: a number without a value
// (NaN or ±Inf: an SLI without traffic, an incomplete burn rate, a budget
// that lasts) equals any other, and the unexported bookkeeping of a window
// is not published.
var statusOpts = cmp.Options{
	cmp.Comparer(func(a, b evaluator.Num) bool { return a == b || !a.Valid() && !b.Valid() }),
	cmpopts.IgnoreUnexported(evaluator.WindowStatus{}),
}

// TestRoundTrip: what shard 0 publishes of its SLOs, shard 1 reads as
// shard 0 has it: the whole status (numbers without a value, like an idle
// SLO's SLI, included), the definition, the groups' statuses and
// definitions, and counts for any span from the published points.
func TestRoundTrip(t *testing.T) {
	_, _, s0, s1 := twoShards(t, staleAfter)
	snap0, snap1 := s0.ev.Snapshot(), s1.ev.Snapshot()
	v := s1.st.View(snap1)
	remote := s1.st.Remote(t0)

	st, _ := snap0.SLO(grouped)
	if st.Groups == nil || len(st.Groups.Members) != 2 {
		t.Fatalf("shard 0 did not find the two zones of %s: %+v", grouped, st.Groups)
	}
	members := st.Groups.Members
	for _, name := range append([]string{busy, idle, grouped}, members...) {
		want, _ := snap0.SLO(name)
		got, ok := v.SLO(name)
		if !ok {
			t.Errorf("View.SLO(%s): not found", name)
			continue
		}
		if diff := cmp.Diff(want, got, statusOpts); diff != "" {
			t.Errorf("View.SLO(%s) differs from shard 0's status (-shard 0 +shard 1):\n%s", name, diff)
		}
		if diff := cmp.Diff(want, remote[name], statusOpts); diff != "" {
			t.Errorf("Remote(t0)[%s] differs from shard 0's status (-shard 0 +shard 1):\n%s", name, diff)
		}
		// Runs and burn-rate probes look the SLO window up by duration.
		def := snap0.SLODef(name)
		if ws, ok := got.WindowStatus(def.Window); !ok || ws.Window != "30d" {
			t.Errorf("View.SLO(%s).WindowStatus(%s): %+v, %v; want the SLO window", name, def.Window, ws, ok)
		}
	}
	if got, _ := v.SLO(idle); !math.IsNaN(float64(got.SLI)) {
		t.Errorf("idle SLO %s: SLI %v from another shard, want NaN (no traffic is neither good nor bad)", idle, got.SLI)
	}
	// Shard 1's own SLO comes from its own snapshot.
	if got, _ := v.SLO(other); got.EvaluatedAt != t0 || !got.Fresh {
		t.Errorf("View.SLO(%s), shard 1's own: %+v", other, got)
	}
	if _, ok := v.SLO("nonexistent"); ok {
		t.Error("View.SLO(nonexistent): found")
	}

	if def := v.SLODef(busy); def == nil || def.Name != busy || def.Objective != 99.9 {
		t.Errorf("View.SLODef(%s) = %+v, want its definition", busy, def)
	}
	for _, m := range members {
		def := v.SLODef(m)
		if def == nil || def.Name != m || def.Parent != grouped || def.Group["zone"] == "" {
			t.Errorf("View.SLODef(%s) = %+v, want the definition of the group", m, def)
		}
	}
	if def := v.SLODef("nonexistent"); def != nil {
		t.Errorf("View.SLODef(nonexistent) = %+v, want nil", def)
	}

	type counts struct {
		bad, total   float64
		complete, ok bool
	}
	local := func(name string, from, to time.Time) counts {
		bad, total, complete, ok := snap0.SLOCounts(name, from, to)
		return counts{bad: bad, total: total, complete: complete, ok: ok}
	}
	for _, tc := range []struct {
		name     string
		slo      string
		from, to time.Time
		want     counts
	}{
		{name: "an hour, a point", slo: busy, from: t0.Add(-time.Hour), to: t0, want: local(busy, t0.Add(-time.Hour), t0)},
		{name: "six hours, a point", slo: busy, from: t0.Add(-6 * time.Hour), to: t0, want: local(busy, t0.Add(-6*time.Hour), t0)},
		{name: "a day, the last point", slo: busy, from: t0.Add(-24 * time.Hour), to: t0, want: local(busy, t0.Add(-24*time.Hour), t0)},
		// Between the points of 1m and 2m: the earlier one, 2m.
		{name: "90s, from the 2m point", slo: busy, from: t0.Add(-90 * time.Second), to: t0, want: local(busy, t0.Add(-2*time.Minute), t0)},
		// Between the points of 1h55m and 2h: 2h.
		{name: "1h57m, from the 2h point", slo: busy, from: t0.Add(-117 * time.Minute), to: t0, want: local(busy, t0.Add(-2*time.Hour), t0)},
		{name: "a group", slo: members[0], from: t0.Add(-time.Hour), to: t0, want: local(members[0], t0.Add(-time.Hour), t0)},
		{name: "empty span", slo: busy, from: t0, to: t0, want: counts{complete: true, ok: true}},
		{name: "beyond the points", slo: busy, from: t0.Add(-25 * time.Hour), to: t0, want: counts{ok: true}},
		{name: "unknown SLO", slo: "nonexistent", from: t0.Add(-time.Hour), to: t0, want: counts{}},
		{name: "own SLO from own snapshot", slo: other, from: t0.Add(-90 * time.Second), to: t0, want: func() counts {
			bad, total, complete, ok := snap1.SLOCounts(other, t0.Add(-90*time.Second), t0)
			return counts{bad: bad, total: total, complete: complete, ok: ok}
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad, total, complete, ok := v.SLOCounts(tc.slo, tc.from, tc.to)
			got := counts{bad: bad, total: total, complete: complete, ok: ok}
			if got != tc.want {
				t.Errorf("View.SLOCounts(%s, %s, %s) = %+v, want %+v", tc.slo, tc.from, tc.to, got, tc.want)
			}
		})
	}

	// Conservative: the span of 90s is answered with the events of 2m,
	// more than the 90s have (the failures change every 30s), never fewer.
	bad, _, _, _ := v.SLOCounts(busy, t0.Add(-90*time.Second), t0)
	exact := local(busy, t0.Add(-90*time.Second), t0)
	if exact.bad <= 0 || bad <= exact.bad {
		t.Errorf("90s of %s: %g bad events from the points, %g exactly; want more from the points", busy, bad, exact.bad)
	}
}

// TestReferencedOnly: a shard publishes the SLOs that experiments list
// and slo: probes watch, and the groups of those grouped, nothing else.
func TestReferencedOnly(t *testing.T) {
	t.Run("Referenced", func(t *testing.T) {
		defs := definitions()
		defs.Hypotheses = append(defs.Hypotheses, &slo.Hypothesis{Name: "up", Probes: []*slo.Probe{{Name: "up", Query: "min(up)"}}})
		want := map[string]bool{busy: true, grouped: true, other: true, idle: true}
		if diff := cmp.Diff(want, Referenced(defs)); diff != "" {
			t.Errorf("Referenced (-want +got):\n%s", diff)
		}
		if got := Referenced(&slo.Set{}); len(got) != 0 {
			t.Errorf("Referenced of no definitions: %v", got)
		}
	})

	store, _, s0, _ := twoShards(t, staleAfter)
	snap0 := s0.ev.Snapshot()
	st, _ := snap0.SLO(grouped)
	want := append([]string{busy, other, idle, grouped}, st.Groups.Members...)
	slices.Sort(want)
	if diff := cmp.Diff(want, store.names()); diff != "" {
		t.Errorf("published SLOs (-want +got):\n%s", diff)
	}
	if _, ok := snap0.SLO(unreferenced); !ok {
		t.Fatalf("shard 0 does not evaluate %s", unreferenced)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	for name, r := range store.rows {
		wantShard := 0
		if name == other {
			wantShard = 1
		}
		if r.ShardIndex != wantShard || r.ShardCount != 2 || r.Replica != fmt.Sprintf("replica-%d", wantShard) || !r.EvaluatedAt.Equal(t0) {
			t.Errorf("row of %s: shard %d of %d, replica %s, evaluated at %s; want shard %d of 2 at %s",
				name, r.ShardIndex, r.ShardCount, r.Replica, r.EvaluatedAt, wantShard, t0)
		}
		var p Published
		if err := json.Unmarshal(r.Status, &p); err != nil || p.Status.Name != name || len(p.Points) != len(Offsets()) {
			t.Errorf("row of %s: %d points, status of %q, error %v", name, len(p.Points), p.Status.Name, err)
		}
	}
}

// TestOffsets: the points step by 1m to 1h, 5m to 6h, 30m to a day, in
// order, so that the first point at or beyond a span is the nearest one.
func TestOffsets(t *testing.T) {
	off := Offsets()
	if n := len(off); n != 60+60+36 {
		t.Errorf("%d offsets, want 156", n)
	}
	if !slices.IsSorted(off) || off[0] != time.Minute || off[len(off)-1] != 24*time.Hour {
		t.Errorf("offsets from %s to %s, sorted %v; want 1m to 24h, sorted", off[0], off[len(off)-1], slices.IsSorted(off))
	}
	for _, d := range []time.Duration{59 * time.Minute, time.Hour, 65 * time.Minute, 6 * time.Hour, 390 * time.Minute, 23*time.Hour + 30*time.Minute} {
		if !slices.Contains(off, d) {
			t.Errorf("no point %s back", d)
		}
	}
}

// TestFreshness: another shard's status is judged by the staleness rule,
// as of the time asked: fresh until StaleAfter past its last success,
// then stale, saying that another shard or the store is behind; its
// counts are then unknown. A status its own shard published as stale is
// never read as fresh.
func TestFreshness(t *testing.T) {
	_, clk, s0, s1 := twoShards(t, staleAfter)
	for _, tc := range []struct {
		name  string
		after time.Duration
		fresh bool
	}{
		{"at once", 0, true},
		{"just before the limit", staleAfter - time.Second, true},
		{"at the limit", staleAfter, false},
		{"an hour later", time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := t0.Add(tc.after)
			clk.set(at)
			v := s1.st.View(s1.ev.Snapshot())
			viewed, _ := v.SLO(busy)
			remote, ok := s1.st.Remote(at)[busy]
			if !ok {
				t.Fatalf("Remote(%s) has no %s", at, busy)
			}
			for from, st := range map[string]evaluator.SLOStatus{"View": viewed, "Remote": remote} {
				if st.Fresh != tc.fresh {
					t.Errorf("%s: fresh %v %s after the evaluation, want %v", from, st.Fresh, tc.after, tc.fresh)
				}
				if !tc.fresh && !strings.Contains(st.Error, "another shard") {
					t.Errorf("%s: stale, error %q; want it to say another shard published it", from, st.Error)
				}
				if tc.fresh && st.Error != "" {
					t.Errorf("%s: fresh with error %q", from, st.Error)
				}
			}
			_, _, complete, ok := v.SLOCounts(busy, t0.Add(-time.Hour), at)
			if !ok || complete != tc.fresh {
				t.Errorf("View.SLOCounts: complete %v, ok %v; want complete %v", complete, ok, tc.fresh)
			}
		})
	}

	// Shard 0 cannot reach Prometheus: it publishes its SLOs as stale,
	// with their last success a cycle ago, well within the limit.
	t1 := t0.Add(interval)
	clk.set(t1)
	s0.q.fail.Store(true)
	s0.cycle(t1)
	s1.cycle(t1)
	if st, _ := s0.ev.SLO(busy); st.Fresh || !st.LastSuccess.Equal(t0) {
		t.Fatalf("shard 0 after a failed cycle: fresh %v, last success %s; want stale since %s", st.Fresh, st.LastSuccess, t0)
	}
	viewed, _ := s1.st.View(s1.ev.Snapshot()).SLO(busy)
	remote := s1.st.Remote(t1)[busy]
	for from, st := range map[string]evaluator.SLOStatus{"View": viewed, "Remote": remote} {
		if st.Fresh || !st.EvaluatedAt.Equal(t1) || st.Error == "" {
			t.Errorf("%s: published stale at %s, read fresh %v, evaluated at %s, error %q; want stale, with shard 0's error",
				from, t1, st.Fresh, st.EvaluatedAt, st.Error)
		}
	}
}

// TestStoreFailure: while the store cannot be read, the view stays the
// last one read and ages into staleness; while it cannot be written, the
// others' statuses are still read. Each failure is logged once, and the
// recovery once, when statuses are both published and read again.
func TestStoreFailure(t *testing.T) {
	store, clk, s0, s1 := twoShards(t, staleAfter)
	at := func(cycles int) time.Time { return t0.Add(time.Duration(cycles) * interval) }
	step := func(cycles int) {
		clk.set(at(cycles))
		s0.cycle(at(cycles))
		s1.cycle(at(cycles))
	}
	seen := func(wantAt time.Time, wantFresh bool) {
		t.Helper()
		now := clk.now()
		viewed, ok := s1.st.View(s1.ev.Snapshot()).SLO(busy)
		if !ok || !viewed.EvaluatedAt.Equal(wantAt) || viewed.Fresh != wantFresh {
			t.Errorf("View.SLO(%s) at %s: found %v, evaluated at %s, fresh %v; want evaluated at %s, fresh %v",
				busy, now, ok, viewed.EvaluatedAt, viewed.Fresh, wantAt, wantFresh)
		}
		remote, ok := s1.st.Remote(now)[busy]
		if !ok || !remote.EvaluatedAt.Equal(wantAt) || remote.Fresh != wantFresh {
			t.Errorf("Remote(%s)[%s]: found %v, evaluated at %s, fresh %v; want evaluated at %s, fresh %v",
				now, busy, ok, remote.EvaluatedAt, remote.Fresh, wantAt, wantFresh)
		}
	}
	logged := func(msg string) int {
		return s1.logs.FilterMessageSnippet(msg).Len()
	}

	// The store cannot be read: shard 1 keeps what it read at t0, fresh
	// for a while, then stale.
	store.fail(nil, errors.New("connection refused"))
	step(1)
	seen(t0, true)
	step(2)
	seen(t0, true)
	step(3)
	seen(t0, false)
	if n := logged("cannot read"); n != 1 {
		t.Errorf("3 failed reads logged %d times, want once", n)
	}

	// It can be read again but not written: shard 1 reads what shard 0
	// published last (at 3 cycles), and does not say all is well.
	store.fail(errors.New("read-only transaction"), nil)
	step(4)
	seen(at(3), true)
	step(5)
	if n := logged("cannot publish"); n != 0 {
		t.Errorf("a failed publication after a failed read logged %d times, want nothing more", n)
	}
	if n := logged("shared again"); n != 0 {
		t.Errorf(`"shared again" logged %d times while publishing fails`, n)
	}

	// All is well again.
	store.fail(nil, nil)
	step(6)
	seen(at(6), true)
	step(7)
	if n := logged("shared again"); n != 1 {
		t.Errorf(`recovery logged %d times, want once`, n)
	}

	// Publishing alone fails, for several cycles: one warning, and no
	// recovery until it works again.
	store.fail(errors.New("disk full"), nil)
	for c := 8; c < 11; c++ {
		step(c)
	}
	if n := logged("cannot publish"); n != 1 {
		t.Errorf("3 failed publications logged %d times, want once", n)
	}
	if n := logged("shared again"); n != 1 {
		t.Errorf(`"shared again" logged %d times in all, want once (publishing still fails)`, n)
	}
	store.fail(nil, nil)
	step(11)
	if n := logged("shared again"); n != 2 {
		t.Errorf(`"shared again" logged %d times in all, want twice`, n)
	}

	// A row nobody can read is left out; the others are kept.
	store.mu.Lock()
	store.rows["garbage"] = pgstore.StatusRow{Name: "garbage", ShardIndex: 0, ShardCount: 2, Status: []byte("{"), EvaluatedAt: at(12)}
	store.mu.Unlock()
	step(12)
	if _, ok := s1.st.Remote(at(12))["garbage"]; ok {
		t.Error("an unreadable row is in the view")
	}
	seen(at(12), true)
}

// TestConcurrentReaders runs cycles, each publishing and reading and so
// replacing the view, while readers ask the view and Remote: every status
// read is one that was published, whole, and the counts a view gives are
// from the same publication as its status. Run with -race.
func TestConcurrentReaders(t *testing.T) {
	const (
		cycles  = 40
		readers = 4
		// maxReads bounds a reader's loop should the cycles hang.
		maxReads = 100000
	)
	// A day's staleness: every status read is fresh, so it must be the
	// very status published.
	store, _, s0, s1 := twoShards(t, 24*time.Hour)

	done := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	check := func(from string, st evaluator.SLOStatus, ok bool) (Published, bool) {
		if !ok || st.Name != busy || st.EvaluatedAt.IsZero() {
			t.Errorf("%s: %s found %v, name %q, evaluated at %s", from, busy, ok, st.Name, st.EvaluatedAt)
			return Published{}, false
		}
		p, found := store.published(busy, st.EvaluatedAt)
		if !found {
			t.Errorf("%s: a status of %s evaluated at %s, which was never published", from, busy, st.EvaluatedAt)
			return Published{}, false
		}
		if diff := cmp.Diff(p.Status, st, statusOpts); diff != "" {
			t.Errorf("%s: status of %s evaluated at %s differs from the one published (-published +read):\n%s", from, busy, st.EvaluatedAt, diff)
			return Published{}, false
		}
		return p, true
	}
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range maxReads {
				select {
				case <-done:
					return
				default:
				}
				snap := s1.ev.Snapshot()
				v := s1.st.View(snap)
				st, ok := v.SLO(busy)
				p, good := check("View", st, ok)
				if !good {
					return
				}
				bad, total, complete, ok := v.SLOCounts(busy, st.EvaluatedAt.Add(-time.Hour), st.EvaluatedAt)
				want := p.Points[slices.IndexFunc(p.Points, func(pt Point) bool { return pt.Back == time.Hour })]
				if !ok || bad != want.Bad || total != want.Total || complete != want.Complete {
					t.Errorf("View.SLOCounts(%s, 1h) = %g, %g, %v, %v; the status read was published with %+v",
						busy, bad, total, complete, ok, want)
					return
				}
				remote, ok := s1.st.Remote(snap.ReadAt())[busy]
				if _, good := check("Remote", remote, ok); !good {
					return
				}
				reads.Add(1)
			}
		}()
	}

	// The cycles, in the test's goroutine; shard 0's failures change
	// every 30s, so each cycle's counts differ from the last.
	for c := 1; c <= cycles; c++ {
		at := t0.Add(time.Duration(c) * interval)
		s0.cycle(at)
		s1.cycle(at)
	}
	close(done)
	wg.Wait()

	if reads.Load() == 0 {
		t.Error("no reads")
	}
	last := t0.Add(cycles * interval)
	if st, _ := s1.st.View(s1.ev.Snapshot()).SLO(busy); !st.EvaluatedAt.Equal(last) {
		t.Errorf("after the cycles, %s evaluated at %s, want %s", busy, st.EvaluatedAt, last)
	}
	first, _ := store.published(busy, t0.Add(interval))
	second, _ := store.published(busy, t0.Add(2*interval))
	if cmp.Equal(first.Points, second.Points) {
		t.Error("two cycles published the same counts: a status mixing them would go unnoticed")
	}
}
