package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
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
	srv := startServer(t, serverOptions{promURL: shop.prom.URL(), amURL: am1.URL() + "," + am2.URL()})
	srv.waitReady()
	waitFor(t, "the gate to open", 60*time.Second, func() bool { _, code := srv.gate(); return code == http.StatusOK })

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
	waitFor(t, "the page alert at the running Alertmanager", 30*time.Second, func() bool { return page(am2) != nil })
	a := page(am2)
	if a.Labels["service"] != "shop" || a.Labels["team"] != "web" || a.Annotations["summary"] == "" {
		t.Errorf("page alert labels %v annotations %v", a.Labels, a.Annotations)
	}
	shop.setErrors(0)

	am1.Restart(t)
	waitFor(t, "the page alert at the restarted Alertmanager", 30*time.Second, func() bool { return page(am1) != nil })

	// Remove the SLO: its alert is resolved explicitly (endsAt now), not
	// left to expire.
	only := strings.SplitN(definitions, "---", 2)[1]
	only = strings.Replace(only, "  slos: [shop-availability]\n", "", 1)
	if err := os.WriteFile(filepath.Join(srv.dir, "definitions.yaml"), []byte(only), 0o644); err != nil {
		t.Fatal(err)
	}
	var reloaded map[string]string
	if code := srv.do("POST", "/-/reload", true, nil, &reloaded); code != http.StatusOK {
		t.Fatalf("reload without the SLO: %d %v", code, reloaded)
	}
	for _, am := range []*testenv.Alertmanager{am1, am2} {
		waitFor(t, "the page alert to be resolved", 30*time.Second, func() bool {
			a := page(am)
			return a == nil || !a.EndsAt.After(time.Now())
		})
	}
	if d := srv.metricSum(t, "slogate_alerts_dropped_total"); d != 0 {
		t.Errorf("slogate_alerts_dropped_total = %v, want 0", d)
	}
	if s := srv.metricSum(t, "slogate_alerts_sent_total"); s == 0 {
		t.Errorf("slogate_alerts_sent_total = 0")
	}
}

// metricSum adds every series of a metric on /metrics.
func (s *server) metricSum(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := httpClient.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	sum := 0.0
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err == nil {
				sum += v
			}
		}
	}
	return sum
}
