package chaos

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/promapi"
	"github.com/slogate/slogate/internal/synth"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/slo"
)

// groupedSLO is the availability of every job, one SLO per job.
func groupedSLO(name string, maxGroups int, policy slo.GroupPolicy) *slo.SLO {
	minBudget := 0.25
	return &slo.SLO{
		Name: name, Service: "shop", Objective: 99.5, Window: 30 * 24 * time.Hour,
		GroupBy: []string{"job"}, MaxGroups: maxGroups,
		Indicator: slo.Indicator{Ratio: &slo.RatioIndicator{
			Errors: `sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))`,
			Total:  `sum(rate(http_requests_total[{{.window}}]))`,
		}},
		Alerting: slo.Alerting{Enabled: true, Name: slo.DefaultAlertName, Page: slo.AlertTier{Enabled: true}, Ticket: slo.AlertTier{Enabled: true}},
		Gate:     slo.GatePolicy{MinBudgetRemaining: &minBudget, BurnRateWindow: time.Hour, Groups: policy},
	}
}

// TestGroupsPrometheus is the ground truth of per-group SLOs on a real
// Prometheus: two jobs of a 30-day history, "eu" for all of it and "us"
// (a quarter of the traffic, five times the errors) only for its last 10
// days. Evaluated first 11 days before the end, the SLO grouped by job
// has one group; at the end the discovery finds "us", which appeared
// mid-window, and follows it. Each group's SLI, events and budget, and the
// aggregate's, are within 0.1 % of the generator's truth and of a direct
// query. The gate closes on "us" (whose budget is overspent) although the
// aggregate has enough, unless gate.groups is aggregate; a run's budget
// spend is that of the worst group. An SLO capped at one group follows
// one and says so. Fixed dates: Prometheus keeps data by its newest
// sample, not the wall clock.
func TestGroupsPrometheus(t *testing.T) {
	end := time.Date(2026, 11, 10, 5, 0, 0, 0, time.UTC)
	eu := synth.History(end, time.Minute)
	eu.Job = "eu"
	us := synth.History(end, time.Minute)
	us.Job, us.Start, us.BaseRPS, us.ErrorRatio = "us", end.Add(-10*24*time.Hour), 5, 0.01
	dataDir := t.TempDir()
	for _, tr := range []synth.Traffic{eu, us} {
		var om bytes.Buffer
		if err := tr.WriteOpenMetrics(&om, tr.End.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		testenv.Backfill(t, dataDir, &om) // overlapping blocks: Prometheus merges them
	}
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir})
	q, err := promapi.New(promapi.Options{URL: prom.URL(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	at := end.Add(-11 * 24 * time.Hour)
	reg := prometheus.NewRegistry()
	ev, err := evaluator.New(evaluator.Options{Querier: q, Interval: 30 * time.Second, Registerer: reg, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	each, aggregate, capped := groupedSLO("shop", 0, ""), groupedSLO("shop-aggregate", 0, slo.GroupsAggregate), groupedSLO("shop-capped", 1, "")
	budgetProbe := func(sloName string) *slo.Hypothesis {
		return &slo.Hypothesis{Name: "steady-" + sloName, FailAfter: 1, PassAfter: 1, OnNoData: slo.PolicyUnknown, OnError: slo.PolicyUnknown, Series: slo.SeriesAll,
			Probes: []*slo.Probe{{Name: "budget", SLO: sloName, BudgetRemaining: &slo.Tolerance{Op: slo.OpGE, Value: 0.25}}}}
	}
	set := &slo.Set{SLOs: []*slo.SLO{each, aggregate, capped}, Hypotheses: []*slo.Hypothesis{budgetProbe("shop"), budgetProbe("shop-aggregate")}}
	if err := ev.SetDefinitions(set); err != nil {
		t.Fatal(err)
	}
	euName, usName := `shop{job="eu"}`, `shop{job="us"}`

	// Before "us" exists: one group, found over the whole window.
	ev.Evaluate(context.Background(), at)
	ev.Evaluate(context.Background(), at)
	st, _ := ev.SLO("shop")
	if g := st.Groups; g == nil || !g.Discovered || g.Tracked != 1 || g.Members[0] != euName {
		t.Fatalf("11 days before the end: groups %+v, want %s only", st.Groups, euName)
	}

	// At the end, "us" has appeared: found by the next discovery, then
	// backfilled over its 10 days.
	at = end
	ev.Evaluate(context.Background(), at)
	ev.Evaluate(context.Background(), at)
	st, _ = ev.SLO("shop")
	if g := st.Groups; g == nil || g.Tracked != 2 || g.Found != 2 || g.Limited != 0 {
		t.Fatalf("at the end: groups %+v, want eu and us", st.Groups)
	}

	window := 30 * 24 * time.Hour
	check := func(name, jobMatcher string, truth synth.Truth) {
		t.Helper()
		s, ok := ev.SLO(name)
		if !ok || !s.Fresh || s.Error != "" {
			t.Fatalf("%s: not fresh: %+v", name, s)
		}
		ws, _ := s.WindowStatus(window)
		if rel := math.Abs(float64(ws.Total)-truth.Total) / truth.Total; rel > 1e-3 {
			t.Errorf("%s: %g events in 30d, truth %g: relative error %.5f > 0.1%%", name, float64(ws.Total), truth.Total, rel)
		}
		got, want := 1-float64(s.SLI), truth.Errors/truth.Total
		if rel := math.Abs(got-want) / want; rel > 1e-3 {
			t.Errorf("%s: error ratio %g, truth %g: relative error %.5f > 0.1%%", name, got, want, rel)
		}
		direct := prom.QueryAt(t, fmt.Sprintf(`sum(rate(http_requests_total{code=~"5..",%s}[30d])) / sum(rate(http_requests_total{%s}[30d]))`, jobMatcher, jobMatcher), at)
		if wantBudget := 1 - direct/0.005; math.Abs(float64(s.BudgetRemaining)-wantBudget) > 1e-3*math.Max(1, math.Abs(wantBudget)) {
			t.Errorf("%s: budget remaining %v, from a direct query %g", name, s.BudgetRemaining, wantBudget)
		}
	}
	euTruth, usTruth := eu.TruthBetween(at.Add(-window), at), us.TruthBetween(at.Add(-window), at)
	check(euName, `job="eu"`, euTruth)
	check(usName, `job="us"`, usTruth)
	check("shop", `job=~"eu|us"`, synth.Truth{Total: euTruth.Total + usTruth.Total, Errors: euTruth.Errors + usTruth.Errors})

	// The gate: "us" has overspent its budget, the aggregate has more than
	// the 25 % the policy asks.
	snap := ev.Snapshot()
	if br := snap.SLODef("shop"); br == nil {
		t.Fatal("no definition for shop")
	}
	agg, _ := snap.SLO("shop")
	usSt, _ := snap.SLO(usName)
	if !(float64(agg.BudgetRemaining) > 0.25 && float64(usSt.BudgetRemaining) < 0.25) {
		t.Fatalf("the data do not set the case up: aggregate budget %v, us %v", agg.BudgetRemaining, usSt.BudgetRemaining)
	}
	gate := func(sloName string) *api.GateAnswer {
		return evaluateGate(snap, &slo.Experiment{Name: "x", SLOs: []string{sloName}, OnUnknown: slo.GateClosed})
	}
	if ans := gate("shop"); ans.Status != api.GateClosed || !strings.Contains(fmt.Sprint(ans.Reasons), usName) {
		t.Errorf("gate on shop (groups: each): %s %v, want closed by %s", ans.Status, ans.Reasons, usName)
	}
	if ans := gate("shop-aggregate"); ans.Status != api.GateOpen {
		t.Errorf("gate on shop-aggregate (groups: aggregate): %s %v, want open", ans.Status, ans.Reasons)
	}

	// So do SLO probes: the group that fails names itself.
	if h, _ := snap.Hypothesis("steady-shop"); h.Verdict != slo.Fail || h.Probes[0].SLO != usName {
		t.Errorf("probe on shop (groups: each): %s %+v, want fail on %s", h.Verdict, h.Probes, usName)
	}
	if h, _ := snap.Hypothesis("steady-shop-aggregate"); h.Verdict != slo.Pass {
		t.Errorf("probe on shop-aggregate: %s %+v, want pass", h.Verdict, h.Probes)
	}

	// A run's spend is that of the group that spent most of its own budget.
	obs := Observe(snap, &slo.Experiment{SLOs: []string{"shop"}}, at.Add(-2*time.Hour), at)
	if len(obs.SLOs) != 2 || obs.SLOs[1].Name != usName || !obs.SLOs[1].Known || obs.SLOs[1].Spent <= obs.SLOs[0].Spent {
		t.Errorf("run observations %+v, want the aggregate then %s, which spent more", obs.SLOs, usName)
	}

	// The capped SLO follows one group and counts the other.
	capSt, _ := snap.SLO("shop-capped")
	if g := capSt.Groups; g == nil || g.Tracked != 1 || g.Limited != 1 || g.Found != 2 {
		t.Errorf("capped at one group: %+v, want 1 tracked, 1 limited", capSt.Groups)
	}

	// Metrics: a series per group with its labels, and the counts.
	want := `
# HELP slogate_slo_groups Groups of a grouped SLO (spec.groupBy) followed, each with its own series labelled with its values and group.
# TYPE slogate_slo_groups gauge
slogate_slo_groups{service="shop",slo="shop"} 2
slogate_slo_groups{service="shop",slo="shop-aggregate"} 2
slogate_slo_groups{service="shop",slo="shop-capped"} 1
# HELP slogate_slo_groups_limited Groups of a grouped SLO found in the data but not followed because of maxGroups: counted only in the aggregate.
# TYPE slogate_slo_groups_limited gauge
slogate_slo_groups_limited{service="shop",slo="shop"} 0
slogate_slo_groups_limited{service="shop",slo="shop-aggregate"} 0
slogate_slo_groups_limited{service="shop",slo="shop-capped"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "slogate_slo_groups", "slogate_slo_groups_limited"); err != nil {
		t.Error(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() != "slogate_slo_error_budget_remaining_ratio" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["slo"] == "shop" && labels["job"] == "us" && labels["group"] == `job="us"` {
				found = true
				if math.Abs(m.GetGauge().GetValue()-float64(usSt.BudgetRemaining)) > 1e-12 {
					t.Errorf("metric budget of us %g, status %v", m.GetGauge().GetValue(), usSt.BudgetRemaining)
				}
			}
		}
	}
	if !found {
		t.Error(`no slogate_slo_error_budget_remaining_ratio{slo="shop",job="us",group="job=\"us\""} series`)
	}
}
