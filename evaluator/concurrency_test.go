package evaluator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/alerts"
	"github.com/slogate/slogate/slo"
)

// TestReadersDuringCyclesBackfillsAndReloads reads every status accessor,
// the metrics collector and the alert builder from other goroutines while
// cycles run, reloads add SLOs and hypotheses (whose first cycle is a
// backfill) and remove others. Run with -race (make test does): a reader
// that looks at a field a worker is writing is a reported race, and a
// snapshot that mixes two cycles is an assertion failure below.
func TestReadersDuringCyclesBackfillsAndReloads(t *testing.T) {
	var mu sync.Mutex
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return at
	}
	reg := prometheus.NewRegistry()
	// Runs start and end between cycles: baselines freeze and thaw.
	var runStart atomic.Int64
	runStarts := func() map[string]time.Time {
		if ns := runStart.Load(); ns != 0 {
			return map[string]time.Time{"steady-0": time.Unix(0, ns), "steady-1": time.Unix(0, ns)}
		}
		return nil
	}
	ev, err := evaluator.New(evaluator.Options{
		Querier: &constQuerier{}, Interval: 30 * time.Second, Registerer: reg, Now: now, MaxConcurrency: 4, RunStarts: runStarts,
	})
	if err != nil {
		t.Fatal(err)
	}
	setOf := func(round int) *slo.Set {
		// SLOs come and go: round r keeps svc-r .. svc-(r+9); the grouped
		// ones backfill together, the odd-shaped one on its own.
		set := benchSet(round + 10)
		set.SLOs = set.SLOs[round:]
		raw := &slo.SLO{
			Name: fmt.Sprintf("raw-%d", round%3), Service: "raw", Objective: 99, Window: 24 * time.Hour,
			Indicator: slo.Indicator{Raw: &slo.RawIndicator{ErrorRatio: `1 - avg_over_time(up{job="raw"}[{{.window}}])`}},
			Alerting:  slo.Alerting{Enabled: true, Page: slo.AlertTier{Enabled: true}},
		}
		set.SLOs = append(set.SLOs, raw)
		// A grouped SLO, one per zone: its groups are found, backfilled
		// and followed while readers read them.
		grouped := benchSet(1).SLOs[0]
		grouped.Name, grouped.GroupBy = "zones", []string{"zone"}
		set.SLOs = append(set.SLOs, grouped)
		one := 1.0
		set.Hypotheses = []*slo.Hypothesis{{
			Name: fmt.Sprintf("steady-%d", round%2), FailAfter: 1, PassAfter: 1, OnNoData: slo.PolicyUnknown, OnError: slo.PolicyUnknown, Series: slo.SeriesAll,
			Probes: []*slo.Probe{
				{Name: "errors", Query: `sum(rate(http_requests_total{code=~"5.."}[1m]))`, Tolerance: &slo.Tolerance{Op: slo.OpLT, Value: 5}},
				{Name: "budget", SLO: set.SLOs[0].Name, BudgetRemaining: &slo.Tolerance{Op: slo.OpGE, Value: 0}, BurnRate: &slo.BurnRateTolerance{Window: time.Hour, Below: one}},
				{Name: "vs-baseline", Query: `sum(rate(http_requests_total{code=~"5.."}[1m]))`, Events: `sum(increase(http_requests_total[1m]))`, MinEvents: 10,
					Relative: &slo.Relative{Baseline: &slo.BaselineSpec{Window: time.Hour, Step: time.Minute}, MaxIncrease: &one}},
				{Name: "canary", Query: `sum(rate(http_requests_total{code=~"5.."}[1m]))`, Relative: &slo.Relative{
					Compare: &slo.CompareSpec{Control: `{zone="b"}`, Experiment: `{zone="a"}`, ControlQuery: `sum(rate(http_requests_total{zone="b"}[1m]))`,
						ExperimentQuery: `sum(rate(http_requests_total{zone="a"}[1m]))`, Window: 5 * time.Minute, Step: 30 * time.Second},
					Test: &slo.StatTest{Method: slo.TestMannWhitney, Confidence: 0.95, MinEffect: 0.1, MinSamples: 3, Worse: slo.WorseIncrease}}},
			},
		}}
		return set
	}
	if err := ev.SetDefinitions(setOf(0)); err != nil {
		t.Fatal(err)
	}

	var stop atomic.Bool
	var readers sync.WaitGroup
	var reads atomic.Int64
	read := func(name string, fn func() error) {
		readers.Go(func() {
			for !stop.Load() {
				if err := fn(); err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				reads.Add(1)
			}
		})
	}
	read("snapshot", func() error {
		snap := ev.Snapshot()
		last, _ := snap.LastCycle()
		for _, s := range snap.SLOs() {
			if snap.SLODef(s.Name) == nil || s.Parent == "" && snap.Definitions().SLO(s.Name) == nil {
				return fmt.Errorf("SLO %s is not in the definitions of its own snapshot", s.Name)
			}
			if !s.EvaluatedAt.IsZero() && s.EvaluatedAt.After(last) {
				return fmt.Errorf("SLO %s evaluated at %s, after its snapshot's cycle %s", s.Name, s.EvaluatedAt, last)
			}
			if one, ok := snap.SLO(s.Name); !ok || one.EvaluatedAt != s.EvaluatedAt {
				return fmt.Errorf("SLO %s read twice from one snapshot differs", s.Name)
			}
			snap.History(s.Name)
			snap.SLOCounts(s.Name, last.Add(-time.Hour), last)
		}
		for _, h := range snap.Hypotheses() {
			if snap.Definitions().Hypothesis(h.Name) == nil {
				return fmt.Errorf("hypothesis %s is not in the definitions of its own snapshot", h.Name)
			}
			if _, ok := snap.Hypothesis(h.Name); !ok {
				return fmt.Errorf("hypothesis %s listed but not found", h.Name)
			}
			// The API serves probes' baselines and test states as JSON.
			if _, err := json.Marshal(h); err != nil {
				return fmt.Errorf("hypothesis %s: %v", h.Name, err)
			}
		}
		snap.Ready()
		return nil
	})
	read("evaluator accessors", func() error {
		for _, s := range ev.SLOs() {
			ev.SLO(s.Name)
			ev.History(s.Name)
		}
		for _, h := range ev.Hypotheses() {
			ev.Hypothesis(h.Name)
		}
		ev.Definitions()
		ev.Ready()
		ev.Snapshot().LastCycle()
		ev.Heartbeat()
		return nil
	})
	read("metrics", func() error {
		_, err := reg.Gather()
		return err
	})
	read("alerts", func() error {
		alerts.Build(ev.Snapshot(), alerts.Options{StaleAfter: time.Minute})
		return nil
	})

	ctx := context.Background()
	for round := range 12 {
		mu.Lock()
		at = at.Add(30 * time.Second)
		mu.Unlock()
		switch round % 4 {
		case 1:
			runStart.Store(at.UnixNano())
		case 3:
			runStart.Store(0)
		}
		if round%3 == 1 {
			if err := ev.SetDefinitions(setOf(round)); err != nil {
				t.Fatal(err)
			}
		}
		// A reload in the middle of a cycle waits for it; run one in
		// parallel with the cycle to exercise that path too.
		var reload sync.WaitGroup
		if round%4 == 2 {
			reload.Go(func() {
				if err := ev.SetDefinitions(setOf(round)); err != nil {
					t.Error(err)
				}
			})
		}
		ev.Evaluate(ctx, now())
		reload.Wait()
	}
	stop.Store(true)
	readers.Wait()
	if reads.Load() == 0 {
		t.Fatal("the readers never ran")
	}
	snap := ev.Snapshot()
	if !snap.Ready() {
		t.Fatal("not ready after 12 cycles")
	}
	for _, s := range snap.SLOs() {
		if !s.Fresh || !s.SLI.Valid() {
			t.Errorf("%s after the last cycle: fresh %v, SLI %v", s.Name, s.Fresh, s.SLI)
		}
	}
	if st, _ := snap.SLO("zones"); st.Groups == nil || st.Groups.Tracked != 3 {
		t.Errorf("zones: groups %+v, want 3 followed", st.Groups)
	}
	if _, ok := snap.SLO(`zones{zone="z1"}`); !ok {
		t.Error(`the group zones{zone="z1"} is not in the snapshot`)
	}
}
