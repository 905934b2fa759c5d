package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

func TestRunStateTransitions(t *testing.T) {
	all := []RunState{StateRunning, StateRecovering, StatePassed, StateFailed, StateAborted}
	allowed := map[[2]RunState]bool{
		{StateRunning, StateRunning}:       true,
		{StateRunning, StateRecovering}:    true,
		{StateRunning, StateAborted}:       true,
		{StateRecovering, StateRecovering}: true,
		{StateRecovering, StatePassed}:     true,
		{StateRecovering, StateFailed}:     true,
		{StateRecovering, StateAborted}:    true,
		{StatePassed, StatePassed}:         true,
		{StateFailed, StateFailed}:         true,
		{StateAborted, StateAborted}:       true,
	}
	for _, from := range all {
		for _, to := range all {
			if got := from.CanBecome(to); got != allowed[[2]RunState{from, to}] {
				t.Errorf("%s.CanBecome(%s) = %v", from, to, got)
			}
		}
		if want := from == StatePassed || from == StateFailed || from == StateAborted; from.Terminal() != want {
			t.Errorf("%s.Terminal() = %v", from, !want)
		}
		if !from.Valid() {
			t.Errorf("%s.Valid() = false", from)
		}
	}
	if RunState("done").Valid() {
		t.Error(`RunState("done").Valid()`)
	}
}

func TestGateStatusHTTPStatus(t *testing.T) {
	for status, want := range map[GateStatus]int{
		GateOpen:    http.StatusOK,
		GateClosed:  http.StatusConflict,
		GateUnknown: http.StatusServiceUnavailable,
		"":          0,
		"ajar":      0,
	} {
		if got := status.HTTPStatus(); got != want {
			t.Errorf("GateStatus(%q).HTTPStatus() = %d, want %d", status, got, want)
		}
	}
}

// TestWireFormat pins the JSON of DESIGN.md: names, omissions and nulls.
func TestWireFormat(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 5, 33, 0, 0, time.UTC)
	fin, end := t0.Add(5*time.Minute), t0.Add(7*time.Minute)
	v := 0.05
	gate := &GateAnswer{Experiment: "kill-checkout-pod", Status: GateClosed, EvaluatedAt: t0,
		Reasons: []Reason{{Kind: KindSLO, Name: "checkout-availability", Message: "error budget remaining 12.00% < 25.00%"}}}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"gate answer", gate,
			`{"experiment":"kill-checkout-pod","status":"closed","reasons":[{"kind":"slo","name":"checkout-availability","message":"error budget remaining 12.00% \u003c 25.00%"}],"evaluatedAt":"2026-11-28T05:33:00Z"}`},
		{"running run", &Run{ID: "r1", Experiment: "kill-checkout-pod", State: StateRunning, StartedAt: t0,
			Timeline: []TimelineEntry{{At: t0, Verdict: "running", Message: "run started: gate open"}}},
			`{"id":"r1","experiment":"kill-checkout-pod","state":"running","startedAt":"2026-11-28T05:33:00Z","budgetSpent":0,"timeline":[{"at":"2026-11-28T05:33:00Z","value":null,"verdict":"running","message":"run started: gate open"}]}`},
		{"ended run", &Run{ID: "r1", Experiment: "kill-checkout-pod", State: StateFailed, Reason: "hypotheses did not hold again within recovery 2m",
			StartedAt: t0, FinishedAt: &fin, EndedAt: &end, BudgetSpent: 0.0125,
			Timeline: []TimelineEntry{{At: fin, Hypothesis: "checkout-steady", Probe: "error-rate", Value: &v, Verdict: "fail"}}},
			`{"id":"r1","experiment":"kill-checkout-pod","state":"failed","reason":"hypotheses did not hold again within recovery 2m","startedAt":"2026-11-28T05:33:00Z","finishedAt":"2026-11-28T05:38:00Z","endedAt":"2026-11-28T05:40:00Z","budgetSpent":0.0125,"timeline":[{"at":"2026-11-28T05:38:00Z","hypothesis":"checkout-steady","probe":"error-rate","value":0.05,"verdict":"fail"}]}`},
		{"listed run", &Run{ID: "r1", Experiment: "kill-checkout-pod", State: StateRunning, StartedAt: t0},
			`{"id":"r1","experiment":"kill-checkout-pod","state":"running","startedAt":"2026-11-28T05:33:00Z","budgetSpent":0,"timeline":null}`},
		{"error", ErrorBody{Error: "no run \"x\""}, `{"error":"no run \"x\""}`},
		{"refused start", ErrorBody{Error: "gate closed", Gate: &GateAnswer{Experiment: "e", Status: GateUnknown, Reasons: []Reason{}, EvaluatedAt: t0}},
			`{"error":"gate closed","gate":{"experiment":"e","status":"unknown","reasons":[],"evaluatedAt":"2026-11-28T05:33:00Z"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
		})
	}
	if gate.Open() || !(&GateAnswer{Status: GateOpen}).Open() {
		t.Error("Open disagrees with the status")
	}
}
