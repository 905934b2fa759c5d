// Package examples tests the example files: the Alertmanager routing tree
// with the real amtool and Alertmanager.
package examples

import (
	"errors"
	"maps"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// amConfig is relative to this package's directory, where tests run.
const amConfig = "alertmanager.yml"

func TestAlertmanagerConfigChecks(t *testing.T) {
	amtool := testenv.Binary(t, "amtool")
	out, err := exec.Command(amtool, "check-config", amConfig).CombinedOutput()
	if err != nil {
		t.Fatalf("amtool check-config %s: %v\n%s", amConfig, err, out)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Errorf("amtool check-config did not report SUCCESS:\n%s", out)
	}
}

// TestAlertmanagerRoutes sends the label sets slogate produces through the
// routing tree with `amtool config routes test`, which exits non-zero when
// the receivers differ from --verify.receivers.
func TestAlertmanagerRoutes(t *testing.T) {
	amtool := testenv.Binary(t, "amtool")
	cases := []struct {
		name   string
		labels []string
		want   string // receivers, comma-separated
	}{
		{"fast burn pages", []string{"alertname=SLOErrorBudgetBurn", "slo=checkout-availability", "service=checkout", "severity=page", "team=payments"}, "pager"},
		{"an SLO's own alert name pages too", []string{"alertname=CheckoutBudgetBurn", "slo=checkout-availability", "service=checkout", "severity=page"}, "pager"},
		{"slow burn makes a ticket", []string{"alertname=SLOErrorBudgetBurn", "slo=checkout-availability", "service=checkout", "severity=ticket"}, "tickets"},
		{"a tier's own severity falls through", []string{"alertname=SLOErrorBudgetBurn", "slo=checkout-availability", "service=checkout", "severity=critical"}, "default"},
		{"violated steady state makes a ticket", []string{"alertname=SteadyStateViolated", "hypothesis=checkout-steady", "severity=warning"}, "tickets"},
		{"violated steady state raised to page", []string{"alertname=SteadyStateViolated", "hypothesis=checkout-steady", "severity=page"}, "pager"},
		{"aborted run goes to the chaos controller", []string{"alertname=ChaosExperimentAborted", "experiment=kill-checkout-pod", "run=20261128T053300.123Z-1a2b3c4d", "severity=warning"}, "chaos-webhook"},
		{"aborted run goes there whatever its severity", []string{"alertname=ChaosExperimentAborted", "experiment=kill-checkout-pod", "run=r1", "severity=page"}, "chaos-webhook"},
		{"stale data", []string{"alertname=SlogateEvaluationStale", "slo=checkout-availability", "service=checkout", "severity=warning"}, "default"},
		{"anything else", []string{"alertname=SomethingElse", "severity=info"}, "default"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"config", "routes", "test", "--config.file=" + amConfig, "--verify.receivers=" + tc.want}, tc.labels...)
			out, err := exec.Command(amtool, args...).CombinedOutput()
			if err != nil {
				t.Errorf("amtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}

	t.Run("a wrong receiver fails", func(t *testing.T) {
		// Guards the test itself: amtool must fail on a mismatch.
		args := []string{"config", "routes", "test", "--config.file=" + amConfig, "--verify.receivers=tickets", "alertname=SLOErrorBudgetBurn", "slo=x", "severity=page"}
		if out, err := exec.Command(amtool, args...).CombinedOutput(); err == nil {
			t.Errorf("amtool %s succeeded, want a failure:\n%s", strings.Join(args, " "), out)
		}
	})
}

// TestAlertmanagerInhibition: with the example configuration, the real
// Alertmanager holds back an SLO's ticket while its page fires, and only
// that SLO's.
func TestAlertmanagerInhibition(t *testing.T) {
	cfg, err := os.ReadFile(amConfig)
	if err != nil {
		t.Fatal(err)
	}
	am := testenv.StartAlertmanager(t, testenv.AMOptions{Config: string(cfg)})
	now := time.Now()
	alert := func(slo, severity string) testenv.AMAlert {
		return testenv.AMAlert{
			Labels:   map[string]string{"alertname": "SLOErrorBudgetBurn", "slo": slo, "service": slo, "severity": severity},
			StartsAt: now, EndsAt: now.Add(10 * time.Minute),
		}
	}
	page, ticket, otherTicket := alert("checkout", "page"), alert("checkout", "ticket"), alert("search", "ticket")
	am.PostAlerts(t, page, ticket, otherTicket)

	want := map[string]string{"checkout/page": "active", "checkout/ticket": "suppressed", "search/ticket": "active"}
	var got map[string]string
	_ = testenv.Poll(30*time.Second, func() error {
		got = map[string]string{}
		for _, a := range am.Alerts(t) {
			state := a.Status.State
			if state == "suppressed" && len(a.Status.InhibitedBy) == 0 {
				state = "suppressed, not inhibited"
			}
			got[a.Labels["slo"]+"/"+a.Labels["severity"]] = state
		}
		if !maps.Equal(got, want) {
			return errors.New("not yet")
		}
		return nil
	})
	if !maps.Equal(got, want) {
		t.Errorf("alert states %v, want %v", got, want)
	}
}
