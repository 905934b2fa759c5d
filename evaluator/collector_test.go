package evaluator_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/embedded"
	"github.com/slogate/slogate/internal/synth"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// gathered returns "name{slo}" for every series of the per-definition
// metrics in reg.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == "slo" || lp.GetName() == "hypothesis" {
					out[mf.GetName()+"/"+lp.GetValue()]++
				}
			}
		}
	}
	return out
}

// TestCollectorFollowsDefinitions: every fixed metric name is exported per
// definition, and the series of a removed definition disappear on reload.
func TestCollectorFollowsDefinitions(t *testing.T) {
	q := &constQuerier{}
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: reg, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	set := benchSet(2)
	set.SLOs[0].Labels = map[string]string{"team": "web"}
	set.Hypotheses = []*slo.Hypothesis{hypothesis(slo.SeriesAll, slo.PolicyUnknown, slo.PolicyUnknown)}
	if err := ev.SetDefinitions(set); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), at)
	got := gathered(t, reg)
	a, b := set.SLOs[0].Name, set.SLOs[1].Name
	for _, name := range []string{"slogate_slo_info", "slogate_slo_objective_ratio", "slogate_slo_sli_ratio", "slogate_slo_burn_rate", "slogate_slo_error_budget_remaining_ratio", "slogate_slo_alert_firing", "slogate_slo_alert_low_traffic", "slogate_slo_data_fresh"} {
		if got[name+"/"+a] == 0 || got[name+"/"+b] == 0 {
			t.Errorf("%s: series %v, want some for both SLOs", name, got)
		}
	}
	if got["slogate_slo_sli_ratio/"+a] != len(slo.Windows(set.SLOs[0].Window)) {
		t.Errorf("slogate_slo_sli_ratio has %d windows, want %d", got["slogate_slo_sli_ratio/"+a], len(slo.Windows(set.SLOs[0].Window)))
	}
	if got["slogate_hypothesis_verdict/h"] != 3 {
		t.Errorf("slogate_hypothesis_verdict state set has %d series, want 3", got["slogate_hypothesis_verdict/h"])
	}

	if err := ev.SetDefinitions(&slo.Set{SLOs: set.SLOs[1:]}); err != nil {
		t.Fatal(err)
	}
	got = gathered(t, reg)
	var left []string
	for k := range got {
		if strings.HasSuffix(k, "/"+a) || strings.HasSuffix(k, "/h") {
			left = append(left, k)
		}
	}
	sort.Strings(left)
	if len(left) > 0 {
		t.Errorf("series of removed definitions still exported: %v", left)
	}
	if got["slogate_slo_info/"+b] == 0 {
		t.Errorf("the remaining SLO lost its series: %v", got)
	}
}

// TestSliceBufferBytes: the memory of the slice buffers, outside the Go
// heap, is exported, and it counts every SLO's rings.
func TestSliceBufferBytes(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	ev, err := evaluator.New(evaluator.Options{Querier: &constQuerier{}, Interval: 30 * time.Second, Registerer: reg, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.SetDefinitions(benchSet(10)); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), at)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "slogate_slice_buffer_bytes" {
			for _, m := range mf.Metric {
				got[m.Label[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	// Other tests' rings may be alive too: at least these 10 SLOs' (30d
	// windows, over 2,000 slots of 8 bytes each).
	if got["in_use"] < 10*2000*8 || got["mapped"] < got["in_use"] {
		t.Errorf("slogate_slice_buffer_bytes %v, want in_use ≥ %d and mapped ≥ in_use", got, 10*2000*8)
	}
	runtime.KeepAlive(ev)
}

// TestNativeHistogramLatency: a latency SLI over a native histogram uses
// histogram_fraction and matches the share of fast requests.
func TestNativeHistogramLatency(t *testing.T) {
	opts := tsdb.DefaultOptions()
	db, err := tsdb.Open(t.TempDir(), nil, nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	end := time.Date(2026, 11, 28, 10, 30, 0, 0, time.UTC)
	ls := labels.FromStrings("__name__", "rpc_duration_seconds", "job", "api")
	app := db.Appender(context.Background())
	var fast, slow float64
	for ts := end.Add(-26 * time.Hour); !ts.After(end); ts = ts.Add(time.Minute) {
		fast += 95
		slow += 5
		// Schema 0: bucket -3 is (0.0625, 0.125], bucket 1 is (1, 2].
		fh := &histogram.FloatHistogram{
			Schema: 0, Count: fast + slow, Sum: fast*0.1 + slow*1.5,
			PositiveSpans:   []histogram.Span{{Offset: -3, Length: 1}, {Offset: 3, Length: 1}},
			PositiveBuckets: []float64{fast, slow},
		}
		if _, err := app.AppendHistogram(0, ls, ts.UnixMilli(), nil, fh); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	q, err := embedded.New(embedded.Options{Storage: db})
	if err != nil {
		t.Fatal(err)
	}
	at := end.Add(-time.Minute)
	ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	set := &slo.Set{SLOs: []*slo.SLO{{
		Name: "api-latency", Service: "api", Objective: 90, Window: 24 * time.Hour,
		Indicator: slo.Indicator{Latency: &slo.LatencyIndicator{Histogram: `rpc_duration_seconds{job="api"}`, Threshold: 0.25, Native: true}},
	}}}
	if err := ev.SetDefinitions(set); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), at)
	st, _ := ev.SLO("api-latency")
	if !st.Fresh || st.Error != "" {
		t.Fatalf("status: %+v", st)
	}
	if math.Abs(float64(st.SLI)-0.95) > 0.95e-3 {
		t.Errorf("SLI %v, want 0.95 (95 of 100 requests under 0.25s)", st.SLI)
	}
	if math.Abs(float64(st.BudgetRemaining)-0.5) > 1e-2 {
		t.Errorf("budget remaining %v, want 0.5 (5%% slow of a 10%% budget)", st.BudgetRemaining)
	}
}

type memSnapshots map[string][]byte

func (m memSnapshots) PutSnapshot(k string, d []byte) error {
	m[k] = append([]byte(nil), d...)
	return nil
}
func (m memSnapshots) GetSnapshot(k string) ([]byte, error) {
	d, ok := m[k]
	if !ok {
		return nil, errors.New("not found")
	}
	return d, nil
}

// memBatchSnapshots is memSnapshots that reads and writes in batches, and
// counts the batches.
type memBatchSnapshots struct {
	memSnapshots
	puts, gets int
}

func (m *memBatchSnapshots) PutSnapshots(data map[string][]byte) error {
	m.puts++
	for k, d := range data {
		_ = m.PutSnapshot(k, d)
	}
	return nil
}

func (m *memBatchSnapshots) GetSnapshots(keys []string) (map[string][]byte, error) {
	m.gets++
	out := map[string][]byte{}
	for _, k := range keys {
		if d, ok := m.memSnapshots[k]; ok {
			out[k] = d
		}
	}
	return out, nil
}

// countingQuerier counts the points range queries asked for.
type countingQuerier struct {
	evaluator.Querier
	points, ranges atomic.Int64
}

func (c *countingQuerier) QueryRange(ctx context.Context, q string, r evaluator.Range) (model.Value, error) {
	c.points.Add(int64(r.End.Sub(r.Start)/r.Step) + 1)
	c.ranges.Add(1)
	return c.Querier.QueryRange(ctx, q, r)
}

// TestSnapshotRestart: a restart with a snapshot fetches only the slices
// since the snapshot, and gives the same numbers, with a store that reads
// and writes one snapshot at a time and with one that batches them.
func TestSnapshotRestart(t *testing.T) {
	for _, batched := range []bool{false, true} {
		t.Run(map[bool]string{false: "one by one", true: "batched"}[batched], func(t *testing.T) {
			testSnapshotRestart(t, batched)
		})
	}
}

func testSnapshotRestart(t *testing.T, batched bool) {
	tr := synth.History(time.Date(2026, 11, 28, 4, 30, 0, 0, time.UTC), time.Minute)
	db := testenv.OpenTSDB(t, tr)
	emb, err := embedded.New(embedded.Options{Storage: db})
	if err != nil {
		t.Fatal(err)
	}
	batches := &memBatchSnapshots{memSnapshots: memSnapshots{}}
	var snaps evaluator.SnapshotStore = batches.memSnapshots
	if batched {
		snaps = batches
	}
	at := tr.End.Add(-10 * time.Minute)
	start := func() (*evaluator.Evaluator, *countingQuerier) {
		q := &countingQuerier{Querier: emb}
		ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), Snapshots: snaps, Now: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.SetDefinitions(testSLOs()); err != nil {
			t.Fatal(err)
		}
		return ev, q
	}
	first, cold := start()
	first.Evaluate(context.Background(), at)
	if err := first.SaveSnapshots(); err != nil {
		t.Fatal(err)
	}
	at = at.Add(5 * time.Minute) // "restarted" five minutes later
	first.Evaluate(context.Background(), at)
	want, _ := first.SLO("availability")

	second, warm := start()
	second.Evaluate(context.Background(), at)
	got, _ := second.SLO("availability")
	if !got.Fresh || math.Abs(float64(got.SLI)-float64(want.SLI)) > 1e-9 {
		t.Errorf("after the restart: SLI %v fresh %v, want %v as without restart", got.SLI, got.Fresh, want.SLI)
	}
	if warm.points.Load()*20 > cold.points.Load() {
		t.Errorf("restart with a snapshot fetched %d range points, a cold start %d: want far fewer", warm.points.Load(), cold.points.Load())
	}
	if batched && (batches.puts != 1 || batches.gets < 2) {
		t.Errorf("%d batched writes and %d batched reads, want 1 write (one save) and a read per start", batches.puts, batches.gets)
	}
}

// TestBatchingGivesTheSameNumbers: SLOs that differ only in their job are
// asked as one grouped query per template once backfilled; every window
// must come out exactly as when each SLO asks on its own.
// threeJobs are three SLOs that differ only in their job, over synthetic
// history up to end in an embedded engine.
func threeJobs(t *testing.T, end time.Time) (*slo.Set, evaluator.Querier) {
	t.Helper()
	var trs []synth.Traffic
	set := &slo.Set{}
	for i, job := range []string{"cart", "shop", "search"} {
		tr := synth.History(end, time.Minute)
		tr.Job = job
		tr.BaseRPS = float64(10 + 5*i)
		tr.ErrorRatio = 0.001 * float64(i+1)
		trs = append(trs, tr)
		set.SLOs = append(set.SLOs, &slo.SLO{
			Name: job + "-availability", Service: job, Objective: 99.5, Window: 30 * 24 * time.Hour,
			Indicator: slo.Indicator{Ratio: &slo.RatioIndicator{
				Errors: `sum(rate(http_requests_total{job="` + job + `",code=~"5.."}[{{.window}}]))`,
				Total:  `sum(rate(http_requests_total{job="` + job + `"}[{{.window}}]))`,
			}},
		})
	}
	db := testenv.OpenTSDB(t, trs...)
	emb, err := embedded.New(embedded.Options{Storage: db})
	if err != nil {
		t.Fatal(err)
	}
	return set, emb
}

func TestBatchingGivesTheSameNumbers(t *testing.T) {
	end := time.Date(2026, 11, 28, 4, 30, 0, 0, time.UTC)
	set, emb := threeJobs(t, end)
	at := end.Add(-20 * time.Minute)
	start := func(disable bool) (*evaluator.Evaluator, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		ev, err := evaluator.New(evaluator.Options{Querier: emb, Interval: 30 * time.Second, Registerer: reg, DisableBatching: disable, Now: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.SetDefinitions(set); err != nil {
			t.Fatal(err)
		}
		return ev, reg
	}
	batched, reg := start(false)
	single, _ := start(true)
	for range 6 {
		batched.Evaluate(context.Background(), at)
		single.Evaluate(context.Background(), at)
		at = at.Add(30 * time.Second)
	}
	for _, o := range set.SLOs {
		b, _ := batched.SLO(o.Name)
		s, _ := single.SLO(o.Name)
		if !b.Fresh || len(b.Windows) != len(s.Windows) {
			t.Fatalf("%s: batched status %+v", o.Name, b)
		}
		for i := range b.Windows {
			bw, sw := b.Windows[i], s.Windows[i]
			if math.Abs(float64(bw.Total-sw.Total)) > 1e-6*float64(sw.Total) || math.Abs(float64(bw.Bad-sw.Bad)) > 1e-6*math.Max(1, float64(sw.Bad)) {
				t.Errorf("%s window %s: batched %v/%v, single %v/%v", o.Name, bw.Window, bw.Bad, bw.Total, sw.Bad, sw.Total)
			}
		}
	}
	saved := 0.0
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "slogate_queries_batched_total" {
			saved = mf.Metric[0].GetCounter().GetValue()
		}
	}
	// Each grouped query saves 2 (3 SLOs, 1 query), for 2 templates: the
	// fine slices and the 3 start-edge tails of the first cycle (8 grouped
	// queries), and the newest slice of the 5 cycles after (10).
	if saved != 36 {
		t.Errorf("slogate_queries_batched_total = %v, want 36", saved)
	}
}

// TestBatchingGroupsStartEdgeSlices: the start-edge slices of the long
// windows come due for every SLO in the same cycle, and SLOs that differ only
// in label values get them with one grouped range query per template and
// window instead of one each, with the same numbers.
func TestBatchingGroupsStartEdgeSlices(t *testing.T) {
	end := time.Date(2026, 11, 28, 7, 30, 0, 0, time.UTC)
	set, emb := threeJobs(t, end)
	at := time.Date(2026, 11, 28, 4, 10, 0, 0, time.UTC)
	type run struct {
		ev *evaluator.Evaluator
		q  *countingQuerier
	}
	start := func(disable bool) run {
		q := &countingQuerier{Querier: emb}
		ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: prometheus.NewRegistry(), DisableBatching: disable, Now: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.SetDefinitions(set); err != nil {
			t.Fatal(err)
		}
		return run{ev, q}
	}
	batched, single := start(false), start(true)
	for _, r := range []run{batched, single} {
		r.ev.Evaluate(context.Background(), at) // the backfill
		r.q.ranges.Store(0)
	}
	// Three hours of cycles: every tail comes due at least once.
	for range 360 {
		at = at.Add(30 * time.Second)
		batched.ev.Evaluate(context.Background(), at)
		single.ev.Evaluate(context.Background(), at)
	}
	b, s := batched.q.ranges.Load(), single.q.ranges.Load()
	if s == 0 || b*3 != s {
		t.Errorf("range queries in steady state: %d grouped, %d one per SLO; want a third", b, s)
	}
	for _, o := range set.SLOs {
		bs, _ := batched.ev.SLO(o.Name)
		ss, _ := single.ev.SLO(o.Name)
		if !bs.Fresh || len(bs.Windows) != len(ss.Windows) {
			t.Fatalf("%s: batched status %+v", o.Name, bs)
		}
		for i := range bs.Windows {
			bw, sw := bs.Windows[i], ss.Windows[i]
			if math.Abs(float64(bw.Total-sw.Total)) > 1e-6*float64(sw.Total) || math.Abs(float64(bw.Bad-sw.Bad)) > 1e-6*math.Max(1, float64(sw.Bad)) {
				t.Errorf("%s window %s: batched %v/%v, single %v/%v", o.Name, bw.Window, bw.Bad, bw.Total, sw.Bad, sw.Total)
			}
		}
	}
}

// probeQuerier answers a query by the first rule whose substrings it
// contains (NaN: no series), and the rest (an SLO's events) like
// constQuerier.
type probeQuerier struct {
	constQuerier
	rules []probeRule
}

type probeRule struct {
	contains []string
	value    float64
}

func (p *probeQuerier) rule(q string) (probeRule, bool) {
next:
	for _, r := range p.rules {
		for _, s := range r.contains {
			if !strings.Contains(q, s) {
				continue next
			}
		}
		return r, true
	}
	return probeRule{}, false
}

func (p *probeQuerier) Query(ctx context.Context, q string, ts time.Time) (model.Value, error) {
	r, ok := p.rule(q)
	switch {
	case !ok:
		return p.constQuerier.Query(ctx, q, ts)
	case math.IsNaN(r.value):
		return model.Vector{}, nil
	}
	return model.Vector{{Value: model.SampleValue(r.value), Timestamp: model.TimeFromUnixNano(ts.UnixNano())}}, nil
}

func (p *probeQuerier) QueryRange(ctx context.Context, q string, rng evaluator.Range) (model.Value, error) {
	r, ok := p.rule(q)
	switch {
	case !ok:
		return p.constQuerier.QueryRange(ctx, q, rng)
	case math.IsNaN(r.value):
		return model.Matrix{}, nil
	}
	ss := &model.SampleStream{Metric: model.Metric{}}
	for t := rng.Start; !t.After(rng.End); t = t.Add(rng.Step) {
		ss.Values = append(ss.Values, model.SamplePair{Timestamp: model.TimeFromUnixNano(t.UnixNano()), Value: model.SampleValue(r.value)})
	}
	return model.Matrix{ss}, nil
}

const relativeDefinitions = `
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: quiet-availability}
spec:
  service: quiet
  objective: 99.9
  window: 30d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="quiet",code=~"5.."}[{{.window}}]))
      total: sum(rate(http_requests_total{job="quiet"}[{{.window}}]))
  alerting:
    page: {minEvents: 1000000000000}
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: rel}
spec:
  probes:
    - name: vs-baseline
      query: errors_ratio{job="a"}
      tolerance: {relativeTo: baseline, maxIncrease: 50%}
    - name: no-baseline
      query: errors_ratio{job="b"}
      tolerance: {relativeTo: baseline, maxIncrease: 50%}
    - name: vs-control
      query: errors_ratio{job="c"}
      tolerance: {compare: {control: '{zone!="a"}', experiment: '{zone="a"}'}, maxIncrease: 20%}
    - name: mw
      query: latency{job="d"}
      tolerance: {compare: {control: '{zone!="a"}', experiment: '{zone="a"}'}, test: mann-whitney, confidence: 95%, minEffect: 10%}
    - name: mw-too-few
      query: latency{job="e"}
      tolerance: {compare: {control: '{zone!="a"}', experiment: '{zone="a"}'}, test: mann-whitney, confidence: 95%, minEffect: 10%}
    - name: quiet
      query: errors_ratio{job="f"}
      tolerance: "< 0.01"
      events: sum(increase(requests_total{job="f"}[5m]))
      minEvents: 100
    - name: busy
      query: errors_ratio{job="g"}
      tolerance: "< 0.01"
      events: sum(increase(requests_total{job="g"}[5m]))
      minEvents: 100
    - name: fixed
      query: errors_ratio{job="h"}
      tolerance: "< 0.01"
`

// TestCollectorRelativeProbesAndLowTraffic: slogate_probe_baseline is the
// reference a relative tolerance compared with (none for fixed tolerances
// or without a reference), slogate_probe_events the count of a low-traffic
// guard, slogate_slo_alert_low_traffic the tiers held off by minEvents;
// all go with their definitions.
func TestCollectorRelativeProbesAndLowTraffic(t *testing.T) {
	nan := math.NaN()
	q := &probeQuerier{rules: []probeRule{
		{[]string{"avg_over_time(", `job="a"`}, 0.008},
		{[]string{`job="a"`}, 0.016},
		{[]string{"avg_over_time(", `job="b"`}, nan},
		{[]string{`job="b"`}, 0.016},
		{[]string{`job="c"`, `zone!="a"`}, 0.01},
		{[]string{`job="c"`, `zone="a"`}, 0.011},
		{[]string{`job="d"`, `zone!="a"`}, 0.2},
		{[]string{`job="d"`, `zone="a"`}, 0.3},
		{[]string{`job="e"`}, nan},
		{[]string{"requests_total", `job="f"`}, 3},
		{[]string{"requests_total", `job="g"`}, 500},
		{[]string{"errors_ratio"}, 0.001},
	}}
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: reg, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	set, diags := slo.LoadBytes("relative.yaml", []byte(relativeDefinitions))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if err := ev.SetDefinitions(set); err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), at)
	h, _ := ev.Hypothesis("rel")
	for _, p := range h.Probes {
		t.Logf("%s: %s value %v baseline %+v events %v %s", p.Name, p.Outcome, p.Value, p.Baseline, p.Events, p.Error)
	}
	want := `
# HELP slogate_probe_baseline What a relative tolerance compares the probe's value with: its baseline, the control group's value, or the control samples' median; absent for fixed tolerances and without a value.
# TYPE slogate_probe_baseline gauge
slogate_probe_baseline{hypothesis="rel",probe="mw"} 0.2
slogate_probe_baseline{hypothesis="rel",probe="vs-baseline"} 0.008
slogate_probe_baseline{hypothesis="rel",probe="vs-control"} 0.01
# HELP slogate_probe_events Events the probe's low-traffic guard (minEvents) counted; absent without a guard or a count.
# TYPE slogate_probe_events gauge
slogate_probe_events{hypothesis="rel",probe="busy"} 500
slogate_probe_events{hypothesis="rel",probe="quiet"} 3
# HELP slogate_probe_value The value a probe measured; absent without a value.
# TYPE slogate_probe_value gauge
slogate_probe_value{hypothesis="rel",probe="busy"} 0.001
slogate_probe_value{hypothesis="rel",probe="fixed"} 0.001
slogate_probe_value{hypothesis="rel",probe="mw"} 0.3
slogate_probe_value{hypothesis="rel",probe="no-baseline"} 0.016
slogate_probe_value{hypothesis="rel",probe="vs-baseline"} 0.016
slogate_probe_value{hypothesis="rel",probe="vs-control"} 0.011
# HELP slogate_slo_alert_low_traffic 1 while a tier of the severity counts fewer events than its minEvents: it can neither fire nor resolve, and the alert keeps its state.
# TYPE slogate_slo_alert_low_traffic gauge
slogate_slo_alert_low_traffic{service="quiet",severity="page",slo="quiet-availability"} 1
slogate_slo_alert_low_traffic{service="quiet",severity="ticket",slo="quiet-availability"} 0
`
	names := []string{"slogate_probe_baseline", "slogate_probe_events", "slogate_probe_value", "slogate_slo_alert_low_traffic"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	if err := ev.SetDefinitions(&slo.Set{}); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, names...); err != nil || n != 0 {
		t.Errorf("%d series of removed definitions still exported (%v)", n, err)
	}
}
