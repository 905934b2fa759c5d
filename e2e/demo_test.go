package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// TestDemo runs `slogate demo` as `make run` does and checks through the
// API that its scripted experiment really closes the gate and gets a run
// aborted by its hypothesis, and that the UI answers.
func TestDemo(t *testing.T) {
	srv := &server{Slogate: testenv.StartSlogate(t, testenv.SlogateOptions{Demo: true}), t: t}

	var slos struct{ SLOs []struct{ Name string } }
	srv.do("GET", "/api/v1/slos", false, nil, &slos)
	if len(slos.SLOs) < 4 {
		t.Fatalf("demo SLOs: %+v", slos.SLOs)
	}
	if code, _, err := srv.Try("GET", "/", nil, false); err != nil || code != http.StatusOK {
		t.Fatalf("UI: %d %v", code, err)
	}

	// The first scripted round breaks checkout: the run must be aborted by
	// its hypothesis, and while it runs and after, the gate is closed.
	sawClosed := false
	var runs struct{ Runs []runAnswer }
	srv.Eventually(150*time.Second, "the demo's first run to be aborted", func() error {
		var g gateAnswer
		code := srv.do("GET", "/api/v1/experiments/checkout-pod-kill/gate", false, nil, &g)
		if code == http.StatusConflict && g.Status == "closed" {
			sawClosed = true
		}
		srv.do("GET", "/api/v1/experiments/checkout-pod-kill/runs", false, nil, &runs)
		if len(runs.Runs) == 0 || runs.Runs[len(runs.Runs)-1].State != "aborted" {
			return fmt.Errorf("runs %+v", runs.Runs)
		}
		return nil
	})
	first := runs.Runs[len(runs.Runs)-1]
	if !strings.Contains(first.Reason, "hypothesis") {
		t.Errorf("the demo's run was aborted for %q, want its hypothesis", first.Reason)
	}
	if !sawClosed {
		t.Errorf("the gate was never seen closed during the demo's breaking run")
	}

	// The baseline probe compared the broken checkout with its usual error
	// ratio, taken before the run started, and failed.
	var run runAnswer
	srv.do("GET", "/api/v1/runs/"+first.ID, false, nil, &run)
	failed := false
	for _, e := range run.Timeline {
		if e.Probe != "error-ratio-vs-baseline" {
			continue
		}
		if e.Baseline == nil {
			t.Errorf("timeline entry %+v: no baseline next to the value", e)
			continue
		}
		if e.Verdict == "fail" && e.Value != nil && *e.Value > 2**e.Baseline {
			failed = true
		}
	}
	if !failed {
		t.Errorf("the baseline probe never failed during the breaking run: %+v", run.Timeline)
	}
}
