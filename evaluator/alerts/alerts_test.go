package alerts

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/notifier"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/slo"
)

type fakeSource struct {
	slos []evaluator.SLOStatus
	hyps []evaluator.HypothesisStatus
	defs *slo.Set
}

func (f fakeSource) SLOs() []evaluator.SLOStatus              { return f.slos }
func (f fakeSource) Hypotheses() []evaluator.HypothesisStatus { return f.hyps }
func (f fakeSource) Definitions() *slo.Set                    { return f.defs }

var (
	now   = time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	since = now.Add(-10 * time.Minute)
	opts  = Options{ExternalURL: "https://slogate.example/", DashboardURL: "https://grafana.example"}
)

func checkoutDef(alerting slo.Alerting) *slo.SLO {
	return &slo.SLO{
		Name: "checkout-availability", Service: "checkout", Labels: map[string]string{"team": "payments"},
		Objective: 99.9, Window: 30 * 24 * time.Hour, Alerting: alerting,
	}
}

func checkoutStatus(alerts ...evaluator.AlertStatus) evaluator.SLOStatus {
	return evaluator.SLOStatus{
		Name: "checkout-availability", Service: "checkout", Labels: map[string]string{"team": "payments"},
		Objective: 99.9, Window: "30d", BudgetRemaining: 0.425, Alerts: alerts,
		EvaluatedAt: now, LastSuccess: now, Fresh: true,
	}
}

func page(burn float64) evaluator.AlertStatus {
	return evaluator.AlertStatus{Severity: slo.SeverityPage, Firing: true, Since: &since, Enabled: true,
		Condition: "burn rate > 14.4 over 1h and 5m", BurnRate: evaluator.Num(burn)}
}

func ticket(burn float64) evaluator.AlertStatus {
	return evaluator.AlertStatus{Severity: slo.SeverityTicket, Firing: true, Since: &since, Enabled: true,
		Condition: "burn rate > 3 over 1d and 2h", BurnRate: evaluator.Num(burn)}
}

var enabled = slo.AlertTier{Enabled: true}

func TestBuildSLOAlerts(t *testing.T) {
	pageAnnotations := map[string]string{
		"summary":                "checkout-availability is burning its error budget 16.2× too fast (page)",
		"description":            "SLO checkout-availability of service checkout (objective 99.9% over 30d): burn rate > 14.4 over 1h and 5m. 42.5% of the error budget remains.",
		"burn_rate":              "16.2",
		"error_budget_remaining": "42.5%",
		"objective":              "99.9%",
		"window":                 "30d",
		"condition":              "burn rate > 14.4 over 1h and 5m",
		"dashboard":              "https://grafana.example/d/slogate-slo-detail?var-slo=checkout-availability",
	}
	cases := []struct {
		name   string
		def    *slo.SLO
		status evaluator.SLOStatus
		opts   Options
		want   []notifier.Alert
	}{
		{
			name:   "default name, page",
			def:    checkoutDef(slo.Alerting{Enabled: true, Name: slo.DefaultAlertName, Page: enabled, Ticket: enabled}),
			status: checkoutStatus(page(16.234), evaluator.AlertStatus{Severity: slo.SeverityTicket, Enabled: true}),
			opts:   opts,
			want: []notifier.Alert{{
				Labels: map[string]string{"alertname": "SLOErrorBudgetBurn", "slo": "checkout-availability",
					"service": "checkout", "severity": "page", "team": "payments"},
				Annotations:  pageAnnotations,
				StartsAt:     since,
				GeneratorURL: "https://slogate.example/api/v1/slos/checkout-availability",
			}},
		},
		{
			name:   "no name given: the default",
			def:    checkoutDef(slo.Alerting{Enabled: true, Page: enabled}),
			status: checkoutStatus(page(16.234)),
			opts:   Options{},
			want: []notifier.Alert{{
				Labels: map[string]string{"alertname": "SLOErrorBudgetBurn", "slo": "checkout-availability",
					"service": "checkout", "severity": "page", "team": "payments"},
				Annotations: without(pageAnnotations, "dashboard"),
				StartsAt:    since,
			}},
		},
		{
			name: "user labels and annotations, tier overrides",
			def: checkoutDef(slo.Alerting{
				Enabled: true, Name: "CheckoutBudgetBurn",
				Labels: map[string]string{"team": "checkout-oncall", "severity": "ignored", "env": "prod"},
				Annotations: map[string]string{"runbook_url": "https://runbooks.example/checkout",
					"summary": "Checkout budget burn"},
				Page: enabled,
				Ticket: slo.AlertTier{Enabled: true,
					Labels:      map[string]string{"severity": "low", "queue": "CHK"},
					Annotations: map[string]string{"summary": "Checkout budget burn (slow)"}},
			}),
			status: checkoutStatus(ticket(3.5)),
			opts:   Options{ExternalURL: "https://slogate.example"},
			want: []notifier.Alert{{
				Labels: map[string]string{"alertname": "CheckoutBudgetBurn", "slo": "checkout-availability",
					"service": "checkout", "severity": "low", "team": "checkout-oncall", "env": "prod", "queue": "CHK"},
				Annotations: map[string]string{
					"summary":                "Checkout budget burn (slow)",
					"description":            "SLO checkout-availability of service checkout (objective 99.9% over 30d): burn rate > 3 over 1d and 2h. 42.5% of the error budget remains.",
					"burn_rate":              "3.5",
					"error_budget_remaining": "42.5%",
					"objective":              "99.9%",
					"window":                 "30d",
					"condition":              "burn rate > 3 over 1d and 2h",
					"runbook_url":            "https://runbooks.example/checkout",
				},
				StartsAt:     since,
				GeneratorURL: "https://slogate.example/api/v1/slos/checkout-availability",
			}},
		},
		{
			name: "both tiers: two alerts, severity kept apart",
			def: checkoutDef(slo.Alerting{Enabled: true, Name: "Burn",
				Labels: map[string]string{"severity": "same"}, Page: enabled, Ticket: enabled}),
			status: checkoutStatus(page(20), ticket(20)),
			want: []notifier.Alert{
				{Labels: map[string]string{"alertname": "Burn", "slo": "checkout-availability", "service": "checkout", "severity": "page", "team": "payments"}},
				{Labels: map[string]string{"alertname": "Burn", "slo": "checkout-availability", "service": "checkout", "severity": "ticket", "team": "payments"}},
			},
		},
		{
			name:   "not firing: nothing",
			def:    checkoutDef(slo.Alerting{Enabled: true, Page: enabled, Ticket: enabled}),
			status: checkoutStatus(evaluator.AlertStatus{Severity: slo.SeverityPage, Enabled: true, BurnRate: 2}),
		},
		{
			name:   "definition gone: nothing",
			def:    &slo.SLO{Name: "other"},
			status: checkoutStatus(page(16)),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Build(fakeSource{slos: []evaluator.SLOStatus{tc.status}, defs: &slo.Set{SLOs: []*slo.SLO{tc.def}}}, tc.opts)
			if tc.want != nil && tc.want[0].Annotations == nil {
				got = labelsOnly(got) // the case is about labels
			}
			checkAlerts(t, got, tc.want)
		})
	}
}

func TestBuildSLOUnknownNumbers(t *testing.T) {
	st := checkoutStatus(page(math.NaN()))
	st.BudgetRemaining = evaluator.Num(math.NaN())
	st.Alerts[0].Condition = ""
	got := Build(fakeSource{slos: []evaluator.SLOStatus{st}, defs: &slo.Set{SLOs: []*slo.SLO{checkoutDef(slo.Alerting{Enabled: true, Page: enabled})}}}, Options{})
	if len(got) != 1 {
		t.Fatalf("got %d alerts, want 1", len(got))
	}
	want := map[string]string{
		"summary":                "checkout-availability is burning its error budget too fast (page)",
		"description":            "SLO checkout-availability of service checkout (objective 99.9% over 30d): burn rate unknown×. unknown of the error budget remains.",
		"burn_rate":              "unknown",
		"error_budget_remaining": "unknown",
		"objective":              "99.9%",
		"window":                 "30d",
	}
	if !maps.Equal(got[0].Annotations, want) {
		t.Errorf("annotations\n%v\nwant\n%v", got[0].Annotations, want)
	}
}

func TestBuildHypothesisAlerts(t *testing.T) {
	within, outside := true, false
	errorRate := evaluator.ProbeStatus{Name: "error-rate", Tolerance: "< 0.01", Value: 0.03421, Outcome: "value", Within: &outside, Verdict: slo.Fail}
	latency := evaluator.ProbeStatus{Name: "p99", Tolerance: "< 0.3", Value: 0.2, Outcome: "value", Within: &within, Verdict: slo.Pass}
	noData := evaluator.ProbeStatus{Name: "budget", Tolerance: "budgetRemaining >= 0.5", Value: evaluator.Num(math.NaN()), Outcome: "no data", Verdict: slo.Fail}
	hyp := func(v slo.Verdict, probes ...evaluator.ProbeStatus) evaluator.HypothesisStatus {
		return evaluator.HypothesisStatus{Name: "checkout-steady", Verdict: v, Since: since, Probes: probes,
			EvaluatedAt: now, LastSuccess: now, Fresh: true}
	}
	cases := []struct {
		name   string
		labels map[string]string
		status evaluator.HypothesisStatus
		want   []notifier.Alert
	}{
		{
			name:   "one probe failing",
			labels: map[string]string{"team": "payments"},
			status: hyp(slo.Fail, latency, errorRate),
			want: []notifier.Alert{{
				Labels: map[string]string{"alertname": "SteadyStateViolated", "hypothesis": "checkout-steady", "severity": "warning", "team": "payments"},
				Annotations: map[string]string{
					"summary":     "steady-state hypothesis checkout-steady is violated: error-rate = 0.0342 (tolerance < 0.01)",
					"description": "1 of 2 probes out of tolerance:\n- error-rate = 0.0342 (tolerance < 0.01)",
					"probe":       "error-rate",
					"value":       "0.0342",
				},
				StartsAt:     since,
				GeneratorURL: "https://slogate.example/api/v1/hypotheses/checkout-steady",
			}},
		},
		{
			name:   "severity and alertname from labels: only severity wins",
			labels: map[string]string{"severity": "page", "alertname": "Mine", "hypothesis": "mine"},
			status: hyp(slo.Fail, errorRate, noData),
			want: []notifier.Alert{{
				Labels: map[string]string{"alertname": "SteadyStateViolated", "hypothesis": "checkout-steady", "severity": "page"},
				Annotations: map[string]string{
					"summary":     "steady-state hypothesis checkout-steady is violated: error-rate = 0.0342 (tolerance < 0.01)",
					"description": "2 of 2 probes out of tolerance:\n- error-rate = 0.0342 (tolerance < 0.01)\n- budget: no data (tolerance budgetRemaining >= 0.5)",
					"probe":       "error-rate",
					"value":       "0.0342",
				},
				StartsAt:     since,
				GeneratorURL: "https://slogate.example/api/v1/hypotheses/checkout-steady",
			}},
		},
		{
			name:   "still fail, probes already back",
			status: hyp(slo.Fail, latency),
			want: []notifier.Alert{{
				Labels: map[string]string{"alertname": "SteadyStateViolated", "hypothesis": "checkout-steady", "severity": "warning"},
				Annotations: map[string]string{
					"summary":     "steady-state hypothesis checkout-steady is violated",
					"description": "Every probe held in the latest evaluation; the verdict stays fail until enough evaluations in a row pass.",
				},
				StartsAt:     since,
				GeneratorURL: "https://slogate.example/api/v1/hypotheses/checkout-steady",
			}},
		},
		{name: "pass: nothing", status: hyp(slo.Pass, latency)},
		{name: "unknown: nothing", status: hyp(slo.Unknown, noData)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defs := &slo.Set{Hypotheses: []*slo.Hypothesis{{Name: "checkout-steady", Labels: tc.labels}}}
			got := Build(fakeSource{hyps: []evaluator.HypothesisStatus{tc.status}, defs: defs}, opts)
			checkAlerts(t, got, tc.want)
		})
	}
}

func TestBuildStale(t *testing.T) {
	sloDef := checkoutDef(slo.Alerting{Enabled: true, Page: enabled})
	hypDef := &slo.Hypothesis{Name: "checkout-steady", Labels: map[string]string{"team": "payments", "severity": "page"}}
	cases := []struct {
		name        string
		fresh       bool
		evaluatedAt time.Time
		lastSuccess time.Time
		staleAfter  time.Duration
		wantStale   bool
	}{
		{name: "fresh", fresh: true, evaluatedAt: now, lastSuccess: now},
		{name: "never evaluated: starting, not stale", evaluatedAt: time.Time{}},
		{name: "never succeeded", evaluatedAt: now, wantStale: true},
		{name: "one failed cycle, within StaleAfter", evaluatedAt: now, lastSuccess: now.Add(-30 * time.Second), staleAfter: time.Minute},
		{name: "past StaleAfter", evaluatedAt: now, lastSuccess: now.Add(-time.Minute), staleAfter: time.Minute, wantStale: true},
		{name: "StaleAfter zero: at once", evaluatedAt: now, lastSuccess: now.Add(-time.Second), wantStale: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := checkoutStatus()
			st.Fresh, st.EvaluatedAt, st.LastSuccess, st.Error = tc.fresh, tc.evaluatedAt, tc.lastSuccess, "connection refused"
			h := evaluator.HypothesisStatus{Name: "checkout-steady", Verdict: slo.Unknown,
				Fresh: tc.fresh, EvaluatedAt: tc.evaluatedAt, LastSuccess: tc.lastSuccess,
				Probes: []evaluator.ProbeStatus{{Name: "error-rate", Error: "connection refused"}}}
			src := fakeSource{slos: []evaluator.SLOStatus{st}, hyps: []evaluator.HypothesisStatus{h},
				defs: &slo.Set{SLOs: []*slo.SLO{sloDef}, Hypotheses: []*slo.Hypothesis{hypDef}}}
			got := Build(src, Options{StaleAfter: tc.staleAfter})
			if !tc.wantStale {
				checkAlerts(t, got, nil)
				return
			}
			last := "never"
			if !tc.lastSuccess.IsZero() {
				last = tc.lastSuccess.Format(time.RFC3339)
			}
			checkAlerts(t, got, []notifier.Alert{
				{
					Labels: map[string]string{"alertname": "SlogateEvaluationStale", "slo": "checkout-availability",
						"service": "checkout", "severity": "warning", "team": "payments"},
					Annotations: map[string]string{
						"summary":      "SLO checkout-availability: data is stale, verdicts are unknown",
						"description":  "slogate could not measure SLO checkout-availability from Prometheus; its burn-rate alerts, gate and verdicts are unknown until it can. Last error: connection refused",
						"last_success": last,
					},
				},
				{
					// A hypothesis' severity label is for its
					// violations; staleness is always a warning.
					Labels: map[string]string{"alertname": "SlogateEvaluationStale", "hypothesis": "checkout-steady",
						"severity": "warning", "team": "payments"},
					Annotations: map[string]string{
						"summary":      "hypothesis checkout-steady: data is stale, verdicts are unknown",
						"description":  "slogate could not evaluate hypothesis checkout-steady from Prometheus; its verdict and the gates of its experiments are unknown until it can. Errors: error-rate: connection refused",
						"last_success": last,
					},
				},
			})
		})
	}
}

func TestRunAborted(t *testing.T) {
	ended := now.Add(5 * time.Minute)
	run := &store.Run{ID: "20261128T060000.000Z-1a2b3c4d", Experiment: "kill-checkout-pod", State: api.StateAborted,
		Reason: "budget spend 6% over maxBudgetSpend 5%", StartedAt: now, EndedAt: &ended, BudgetSpent: 0.0612}
	cases := []struct {
		name       string
		exp        *slo.Experiment
		wantLabels map[string]string
	}{
		{
			name:       "experiment labels",
			exp:        &slo.Experiment{Name: "kill-checkout-pod", Labels: map[string]string{"team": "payments"}},
			wantLabels: map[string]string{"alertname": "ChaosExperimentAborted", "experiment": "kill-checkout-pod", "run": run.ID, "severity": "warning", "team": "payments"},
		},
		{
			name:       "severity overridden, identity kept",
			exp:        &slo.Experiment{Name: "kill-checkout-pod", Labels: map[string]string{"severity": "page", "run": "x", "experiment": "y"}},
			wantLabels: map[string]string{"alertname": "ChaosExperimentAborted", "experiment": "kill-checkout-pod", "run": run.ID, "severity": "page"},
		},
		{
			name:       "definition gone",
			wantLabels: map[string]string{"alertname": "ChaosExperimentAborted", "experiment": "kill-checkout-pod", "run": run.ID, "severity": "warning"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := RunAborted(run, tc.exp, opts)
			want := notifier.Alert{
				Labels: tc.wantLabels,
				Annotations: map[string]string{
					"summary":      "chaos experiment kill-checkout-pod: run 20261128T060000.000Z-1a2b3c4d aborted: budget spend 6% over maxBudgetSpend 5%",
					"description":  "Run 20261128T060000.000Z-1a2b3c4d of chaos experiment kill-checkout-pod, started 2026-11-28T06:00:00Z, was aborted: budget spend 6% over maxBudgetSpend 5%. It spent 6.12% of an SLO's error budget. Stop injecting faults.",
					"reason":       "budget spend 6% over maxBudgetSpend 5%",
					"budget_spent": "6.12%",
				},
				StartsAt:     ended,
				EndsAt:       ended.Add(time.Hour),
				GeneratorURL: "https://slogate.example/api/v1/runs/20261128T060000.000Z-1a2b3c4d",
			}
			checkAlerts(t, []notifier.Alert{got}, []notifier.Alert{want})
		})
	}

	t.Run("end unknown: now", func(t *testing.T) {
		r := *run
		r.EndedAt = nil
		before := time.Now()
		got := RunAborted(&r, nil, Options{})
		if got.StartsAt.Before(before) || got.StartsAt.After(time.Now()) || got.EndsAt.Sub(got.StartsAt) != time.Hour {
			t.Errorf("startsAt %s, endsAt %s; want now and an hour later", got.StartsAt, got.EndsAt)
		}
		if got.GeneratorURL != "" {
			t.Errorf("generatorURL %q without an external URL", got.GeneratorURL)
		}
	})
}

func TestFormat(t *testing.T) {
	cases := []struct {
		in   float64
		want string
	}{
		{16.234, "16.2"}, {3, "3"}, {0.03421, "0.0342"}, {1234.6, "1235"}, {14.4, "14.4"},
		{0, "0"}, {-0.125, "-0.125"}, {0.00000012, "0"}, {math.NaN(), "unknown"}, {math.Inf(1), "unknown"},
	}
	for _, tc := range cases {
		if got := formatNum(tc.in); got != tc.want {
			t.Errorf("formatNum(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for in, want := range map[float64]string{0.425: "42.5%", -0.12: "-12%", 1: "100%", 0.999: "99.9%"} {
		if got := formatPercent(in); got != want {
			t.Errorf("formatPercent(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestDashboardLink(t *testing.T) {
	if got, want := DashboardLink("https://grafana.example/", "a b&c"), "https://grafana.example/d/slogate-slo-detail?var-slo=a+b%26c"; got != want {
		t.Errorf("DashboardLink = %q, want %q", got, want)
	}
}

func without(m map[string]string, keys ...string) map[string]string {
	out := maps.Clone(m)
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

func labelsOnly(as []notifier.Alert) []notifier.Alert {
	out := make([]notifier.Alert, len(as))
	for i, a := range as {
		out[i] = notifier.Alert{Labels: a.Labels}
	}
	return out
}

func checkAlerts(t *testing.T, got, want []notifier.Alert) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d alerts, want %d:\n%s", len(got), len(want), show(got))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("alert %d:\n got %s\nwant %s", i, show(got[i:i+1]), show(want[i:i+1]))
		}
	}
}

func show(as []notifier.Alert) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "labels %v\n  annotations:\n", a.Labels)
		for _, k := range slices.Sorted(maps.Keys(a.Annotations)) {
			fmt.Fprintf(&b, "    %s: %q\n", k, a.Annotations[k])
		}
		fmt.Fprintf(&b, "  startsAt %s endsAt %s generatorURL %q\n", a.StartsAt, a.EndsAt, a.GeneratorURL)
	}
	return b.String()
}

// groupSource resolves the definitions of groups, as a snapshot does.
type groupSource struct {
	fakeSource
	groups map[string]*slo.SLO
}

func (g groupSource) SLODef(name string) *slo.SLO {
	if d, ok := g.groups[name]; ok {
		return d
	}
	return g.defs.SLO(name)
}

// TestBuildGroupAlerts: a group's burn-rate alert carries the grouped SLO's
// name in slo and the group's labels (which alerting labels do not
// override), so that Alertmanager routes and deduplicates it per group; a
// stale group sends no stale alert of its own.
func TestBuildGroupAlerts(t *testing.T) {
	parent := checkoutDef(slo.Alerting{Enabled: true, Labels: map[string]string{"cluster": "from-alerting"}, Page: slo.AlertTier{Enabled: true}})
	parent.GroupBy = []string{"cluster"}
	child, err := parent.ForGroup(map[string]string{"cluster": "eu"})
	if err != nil {
		t.Fatal(err)
	}
	st := checkoutStatus(page(20))
	st.Name, st.Parent, st.Group = child.Name, parent.Name, child.Group
	stale := st
	stale.Alerts, stale.Fresh, stale.LastSuccess = nil, false, now.Add(-time.Hour)
	src := groupSource{fakeSource: fakeSource{slos: []evaluator.SLOStatus{st}, defs: &slo.Set{SLOs: []*slo.SLO{parent}}}, groups: map[string]*slo.SLO{child.Name: child}}
	got := Build(src, opts)
	if len(got) != 1 {
		t.Fatalf("%d alerts, want the group's page: %+v", len(got), got)
	}
	l := got[0].Labels
	if l["slo"] != "checkout-availability" || l["cluster"] != "eu" || l["team"] != "payments" || l["severity"] != "page" {
		t.Errorf("labels %v, want slo=checkout-availability cluster=eu team=payments severity=page", l)
	}
	if !strings.Contains(got[0].Annotations["summary"], `checkout-availability{cluster="eu"}`) {
		t.Errorf("summary %q does not name the group", got[0].Annotations["summary"])
	}
	src.slos = []evaluator.SLOStatus{stale}
	if got := Build(src, Options{StaleAfter: time.Minute}); len(got) != 0 {
		t.Errorf("a stale group sent %d alerts, want none (its grouped SLO's stale alert speaks for it): %+v", len(got), got)
	}
}
