package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/slo"
)

// TestGateMinEvents: an SLO whose checked window counted fewer events than
// gate.minEvents gives no evidence: the gate is unknown (closed unless the
// experiment tolerates unknowns), or what onLowTraffic says.
func TestGateMinEvents(t *testing.T) {
	budget, burn := 0.25, 6.0
	for _, tc := range []struct {
		name      string
		minEvents float64
		policy    slo.Policy
		burn      bool // check the burn rate (1e6 events) rather than the budget (1e6 events too)
		want      api.GateStatus
		lowReason bool
	}{
		{"no guard: open", 0, "", false, api.GateOpen, false},
		{"enough events: open", 1e5, "", false, api.GateOpen, false},
		{"too few for the budget: unknown", 2e6, "", false, api.GateUnknown, true},
		{"too few for the burn rate: unknown", 2e6, "", true, api.GateUnknown, true},
		{"onLowTraffic fail closes", 2e6, slo.PolicyFail, false, api.GateClosed, true},
		{"onLowTraffic pass skips the check", 2e6, slo.PolicyPass, false, api.GateOpen, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newFakeStatuses(t0)
			o := st.defs.SLOs[0]
			o.Gate = slo.GatePolicy{MinEvents: tc.minEvents, OnLowTraffic: tc.policy, BurnRateWindow: 30 * 24 * time.Hour}
			if tc.burn {
				o.Gate.MaxBurnRate = &burn
			} else {
				o.Gate.MinBudgetRemaining = &budget
			}
			st.probe = &probePass
			ans := evaluateGate(withBudget(st, 0.9), experiment())
			if ans.Status != tc.want {
				t.Errorf("gate %s, want %s: %+v", ans.Status, tc.want, ans.Reasons)
			}
			found := false
			for _, r := range ans.Reasons {
				if r.Kind == api.KindLowTraffic {
					found = true
					if !strings.Contains(r.Message, "fewer than gate.minEvents 2e+06") {
						t.Errorf("reason %q does not say the guard", r.Message)
					}
				}
			}
			if found != tc.lowReason {
				t.Errorf("low-traffic reason %v, want %v: %+v", found, tc.lowReason, ans.Reasons)
			}
		})
	}
}

// budgetStatuses reports a budget remaining on the fake's SLO.
type budgetStatuses struct {
	*fakeStatuses
	budget float64
}

func withBudget(f *fakeStatuses, budget float64) budgetStatuses {
	return budgetStatuses{fakeStatuses: f, budget: budget}
}

func (b budgetStatuses) SLO(name string) (evaluator.SLOStatus, bool) {
	s, ok := b.fakeStatuses.SLO(name)
	s.BudgetRemaining = evaluator.Num(b.budget)
	return s, ok
}

// TestDecideAwaitingEvidence: a probe unknown for want of evidence (too
// little traffic, too few samples, an undecided test) keeps a run going;
// one unknown for want of data aborts it after the unknown streak.
func TestDecideAwaitingEvidence(t *testing.T) {
	exp := experiment()
	for _, tc := range []struct {
		name    string
		outcome string
		aborted bool
	}{
		{"low traffic", evaluator.OutcomeLowTraffic, false},
		{"too few samples", evaluator.OutcomeTooFew, false},
		{"inconclusive", evaluator.OutcomeInconclusive, false},
		{"no data", "no data", true},
		{"error", "error", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := evaluator.ProbeStatus{Name: "error-rate", Outcome: tc.outcome, Verdict: slo.Unknown, Baseline: &evaluator.ProbeBaseline{Mode: "mann-whitney", Value: 0.01}}
			run := runIn(api.StateRunning, 0, 0)
			for i := range 3 {
				d := Decide(run, observed(&p, 0), exp, t0.Add(time.Duration(i+1)*time.Minute), Policy{UnknownAbortAfter: 2})
				run = d.Apply(run)
			}
			if got := run.State == api.StateAborted; got != tc.aborted {
				t.Errorf("aborted %v (state %s, reason %q), want %v", got, run.State, run.Reason, tc.aborted)
			}
			for _, e := range run.Timeline {
				if e.Probe == "error-rate" && (e.Baseline == nil || *e.Baseline != 0.01) {
					t.Errorf("timeline entry %+v: want the baseline 0.01 next to the value", e)
				}
			}
		})
	}
}
