package notifier

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// Integration tests against the real, pinned Alertmanager (internal/testenv).

// webhook receives Alertmanager's notifications, to see what it notified:
// a resolved alert is no longer listed by its API, so the notification is
// the proof that it arrived.
type webhook struct {
	srv *httptest.Server

	mu     sync.Mutex
	alerts []webhookAlert
}

type webhookAlert struct {
	Status string            `json:"status"` // firing | resolved
	Labels map[string]string `json:"labels"`
}

func newWebhook(t *testing.T) *webhook {
	t.Helper()
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var msg struct {
			Alerts []webhookAlert `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.alerts = append(w.alerts, msg.Alerts...)
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// notified reports whether an alert with exactly these labels was notified
// with this status.
func (w *webhook) notified(status string, labels map[string]string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.alerts {
		if a.Status == status && maps.Equal(a.Labels, labels) {
			return true
		}
	}
	return false
}

// listed returns the alert with exactly these labels that Alertmanager
// holds as active, or nil.
func listed(t *testing.T, am *testenv.Alertmanager, labels map[string]string) *testenv.AMAlert {
	t.Helper()
	for _, a := range am.Alerts(t) {
		if maps.Equal(a.Labels, labels) && a.Status.State == "active" {
			return &a
		}
	}
	return nil
}

const amWait = 30 * time.Second

func TestAlertmanagerFiringAndResolved(t *testing.T) {
	hook := newWebhook(t)
	am := testenv.StartAlertmanager(t, testenv.AMOptions{WebhookURL: hook.srv.URL})
	n, _ := newTestNotifier(t, Options{URLs: []string{am.URL()}})
	run(t, n)

	a := alert("SLOErrorBudgetBurn", "slo", "checkout-availability", "service", "checkout", "severity", "page", "team", "payments")
	a.Annotations["burn_rate"] = "16.2"
	a.Annotations["runbook_url"] = "https://runbooks.example/checkout"
	a.GeneratorURL = "http://slogate.example:8080/api/v1/slos/checkout-availability"
	start := time.Now().Truncate(time.Second)
	n.Update([]Alert{a})

	var got *testenv.AMAlert
	eventually(t, amWait, "the alert to be listed", func() bool { got = listed(t, am, a.Labels); return got != nil })
	if !maps.Equal(got.Annotations, a.Annotations) {
		t.Errorf("annotations %v, want %v", got.Annotations, a.Annotations)
	}
	if got.GeneratorURL != a.GeneratorURL {
		t.Errorf("generatorURL %q, want %q", got.GeneratorURL, a.GeneratorURL)
	}
	if got.StartsAt.Before(start) || got.StartsAt.After(time.Now()) {
		t.Errorf("startsAt %s, want about %s", got.StartsAt, start)
	}
	if d := time.Until(got.EndsAt); d < 3*time.Minute || d > 4*time.Minute {
		t.Errorf("endsAt in %s, want about 4 × ResendDelay (4m)", d)
	}
	eventually(t, amWait, "the firing notification", func() bool { return hook.notified("firing", a.Labels) })

	n.Update(nil)
	eventually(t, amWait, "the alert to leave the active ones", func() bool { return listed(t, am, a.Labels) == nil })
	eventually(t, amWait, "the resolved notification", func() bool { return hook.notified("resolved", a.Labels) })
}

func TestAlertmanagerHAPair(t *testing.T) {
	am0 := testenv.StartAlertmanager(t, testenv.AMOptions{})
	am1 := testenv.StartAlertmanager(t, testenv.AMOptions{})
	n, _ := newTestNotifier(t, Options{URLs: []string{am0.URL(), am1.URL()}})
	run(t, n)
	a := alert("SteadyStateViolated", "hypothesis", "checkout-steady", "severity", "warning")
	n.Update([]Alert{a})
	for i, am := range []*testenv.Alertmanager{am0, am1} {
		eventually(t, amWait, "the alert at Alertmanager "+string(rune('0'+i)), func() bool { return listed(t, am, a.Labels) != nil })
	}
}

// TestAlertmanagerOutage: while Alertmanager is down one alert resolves and
// another starts; once it is back (same port, its in-memory alerts lost)
// everything arrives: the new alert, the resolve, and the alert that kept
// firing throughout, without waiting for the next resend.
func TestAlertmanagerOutage(t *testing.T) {
	hook := newWebhook(t)
	am := testenv.StartAlertmanager(t, testenv.AMOptions{WebhookURL: hook.srv.URL})
	n, _ := newTestNotifier(t, Options{URLs: []string{am.URL()}, ResendDelay: time.Hour})
	run(t, n)

	steady := alert("SLOErrorBudgetBurn", "slo", "steady", "severity", "ticket")
	resolving := alert("SLOErrorBudgetBurn", "slo", "resolving", "severity", "page")
	starting := alert("SteadyStateViolated", "hypothesis", "starting", "severity", "warning")
	n.Update([]Alert{steady, resolving})
	for _, a := range []Alert{steady, resolving} {
		// Notified, so that Alertmanager's notification log (which
		// survives the restart) knows it fired and will notify its
		// resolve.
		eventually(t, amWait, a.Labels["slo"]+" notified", func() bool { return hook.notified("firing", a.Labels) })
	}
	// Alertmanager writes the log entry after the webhook has answered:
	// it must be there before Alertmanager stops.
	for _, a := range []Alert{steady, resolving} {
		notificationLogged(t, am, a)
	}

	am.Stop()
	n.Update([]Alert{steady, starting})
	m := n.targets[0].metrics
	eventually(t, amWait, "delivery to fail", func() bool { return counter(t, m.failed) >= 2 })
	am.Restart(t)

	eventually(t, amWait, "the new alert", func() bool { return listed(t, am, starting.Labels) != nil })
	eventually(t, amWait, "the alert that kept firing", func() bool { return listed(t, am, steady.Labels) != nil })
	eventually(t, amWait, "the resolve", func() bool { return hook.notified("resolved", resolving.Labels) })
	if listed(t, am, resolving.Labels) != nil {
		t.Error("the resolved alert is active")
	}
	if got := counter(t, m.queueFull) + counter(t, m.rejected); got != 0 {
		t.Errorf("%v alerts dropped", got)
	}
}
