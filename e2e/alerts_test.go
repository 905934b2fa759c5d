package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// TestAlertsReachAlertmanager: a fast burn pages through two real
// Alertmanagers (an HA pair), one of them down while it starts firing and
// started again later; the alert arrives at both, nothing is dropped, and
// it is resolved explicitly when its SLO goes away.
func TestAlertsReachAlertmanager(t *testing.T) {
	shop := startShop(t)
	am1 := testenv.StartAlertmanager(t, testenv.AMOptions{})
	am2 := testenv.StartAlertmanager(t, testenv.AMOptions{})
	srv := startServer(t, serverOptions{promURL: shop.prom.URL(), amURLs: []string{am1.URL(), am2.URL()}})
	srv.waitGate("the gate to open", 60*time.Second, http.StatusOK)

	am1.Stop()
	shop.setErrors(1)
	page := func(am *testenv.Alertmanager) *testenv.AMAlert {
		for _, a := range am.Alerts(t) {
			if a.Labels["alertname"] == "SLOErrorBudgetBurn" && a.Labels["slo"] == "shop-availability" && a.Labels["severity"] == "page" {
				return &a
			}
		}
		return nil
	}
	hasPage := func(am *testenv.Alertmanager) error {
		if page(am) == nil {
			return errors.New("no page alert of shop-availability")
		}
		return nil
	}
	testenv.Eventually(t, 30*time.Second, "the page alert at the running Alertmanager", func() error { return hasPage(am2) })
	a := page(am2)
	if a.Labels["service"] != "shop" || a.Labels["team"] != "web" || a.Annotations["summary"] == "" {
		t.Errorf("page alert labels %v annotations %v", a.Labels, a.Annotations)
	}
	shop.setErrors(0)

	am1.Restart(t)
	testenv.Eventually(t, 30*time.Second, "the page alert at the restarted Alertmanager", func() error { return hasPage(am1) })

	// Remove the SLO: its alert is resolved explicitly (endsAt now), not
	// left to expire.
	only := strings.SplitN(definitions, "---", 2)[1]
	only = strings.Replace(only, "  slos: [shop-availability]\n", "", 1)
	if err := os.WriteFile(srv.DefinitionsPath(), []byte(only), 0o644); err != nil {
		t.Fatal(err)
	}
	var reloaded map[string]string
	if code := srv.do("POST", "/-/reload", true, nil, &reloaded); code != http.StatusOK {
		t.Fatalf("reload without the SLO: %d %v", code, reloaded)
	}
	for _, am := range []*testenv.Alertmanager{am1, am2} {
		testenv.Eventually(t, 30*time.Second, "the page alert to be resolved", func() error {
			if a := page(am); a != nil && a.EndsAt.After(time.Now()) {
				return fmt.Errorf("the page alert ends at %s, in the future", a.EndsAt)
			}
			return nil
		})
	}
	if d, _ := srv.metric("slogate_alerts_dropped_total"); d != 0 {
		t.Errorf("slogate_alerts_dropped_total = %v, want 0", d)
	}
	if s, _ := srv.metric("slogate_alerts_sent_total"); s == 0 {
		t.Errorf("slogate_alerts_sent_total = 0")
	}
}
