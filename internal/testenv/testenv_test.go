package testenv_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

func TestPrometheusScrapesTarget(t *testing.T) {
	t.Parallel()
	target := testenv.NewTarget(t)
	requests := target.Counter("http_requests_total", "code")
	requests.WithLabelValues("200").Add(42)
	requests.WithLabelValues("500").Add(3)
	target.Gauge("queue_length").WithLabelValues().Set(-7.5)

	prom := testenv.StartPrometheus(t, testenv.PromOptions{
		ScrapeInterval: time.Second,
		Targets:        []testenv.ScrapeTarget{target.ScrapeTarget("checkout")},
	})

	const expr = `http_requests_total{job="checkout",code="200"}`
	prom.WaitForQuery(t, expr, func(v float64) bool { return v == 42 }, 30*time.Second)
	if got := prom.Query(t, `queue_length{job="checkout"}`); got != -7.5 {
		t.Errorf("queue_length = %v, want -7.5", got)
	}
	if got := prom.QueryVector(t, `http_requests_total{job="checkout"}`); len(got) != 2 ||
		got[0].Metric["code"] != "200" || got[1].Metric["code"] != "500" || got[1].Value != 3 {
		t.Errorf("QueryVector = %+v, want the 200 and 500 series in this order", got)
	}

	requests.WithLabelValues("200").Add(8)
	prom.WaitForQuery(t, expr, func(v float64) bool { return v == 50 }, 30*time.Second)
	if got := prom.Query(t, expr); got != 50 {
		t.Errorf("%s = %v, want 50", expr, got)
	}

	target.SetFailing(true)
	prom.WaitForQuery(t, `up{job="checkout"}`, func(v float64) bool { return v == 0 }, 30*time.Second)
}

func TestBackfilledHistoryIsQueryable(t *testing.T) {
	t.Parallel()
	now := time.Now().Truncate(time.Minute)
	from := now.Add(-30 * 24 * time.Hour)

	om := testenv.NewOMWriter(t)
	om.Family("http_requests_total", testenv.OMCounter)
	for _, code := range []string{"200", "500"} {
		n := 0.0
		for ts := from; !ts.After(now); ts = ts.Add(5 * time.Minute) {
			if code == "200" {
				n++
			}
			om.Sample(map[string]string{"job": "checkout", "code": code}, ts, n)
		}
	}
	om.Family("http_request_duration_seconds", testenv.OMHistogram)
	for i, ts := 0.0, from; !ts.After(now); i, ts = i+1, ts.Add(time.Hour) {
		om.HistogramSample(map[string]string{"job": "checkout"}, ts, testenv.HistogramPoint{
			Buckets: map[float64]float64{0.1: i, 1: 2 * i},
			Count:   3 * i,
			Sum:     i,
		})
	}
	dataDir := t.TempDir()
	testenv.BackfillFile(t, dataDir, om.Close())

	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir})

	// One sample every 5 minutes from `from`, counting from 1: a day later
	// the counter is at 24*12+1.
	at := now.Add(-29 * 24 * time.Hour)
	if got := prom.QueryAt(t, `http_requests_total{code="200"}`, at); got != 289 {
		t.Errorf("counter at now-29d = %v, want 289", got)
	}
	if got := prom.QueryAt(t, `http_requests_total{code="500"}`, at); got != 0 {
		t.Errorf("500 counter at now-29d = %v, want 0", got)
	}
	if got := prom.QueryAt(t, `increase(http_requests_total{code="200"}[1h])`, at); got != 12 {
		t.Errorf("increase over 1h at now-29d = %v, want 12", got)
	}
	// le values are normalized by Prometheus 3 (1 → "1.0").
	if got := prom.QueryAt(t, `http_request_duration_seconds_bucket{le="1.0"}`, at); got != 48 {
		t.Errorf("le=1.0 bucket at now-29d = %v, want 48", got)
	}
	if got := prom.QueryAt(t, `http_request_duration_seconds_bucket{le="+Inf"}`, at); got != 72 {
		t.Errorf("+Inf bucket at now-29d = %v, want 72", got)
	}
	if got := prom.QueryAt(t, `http_requests_total{code="200"}`, now); got != 30*24*12+1 {
		t.Errorf("counter now = %v, want %d", got, 30*24*12+1)
	}
}

func TestAlertmanagerListsPostedAlert(t *testing.T) {
	t.Parallel()
	var (
		mu       sync.Mutex
		received []string
	)
	webhook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Status string `json:"status"`
			Alerts []struct {
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			t.Errorf("webhook: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, a := range msg.Alerts {
			received = append(received, msg.Status+":"+a.Labels["alertname"])
		}
	}))
	t.Cleanup(webhook.Close)

	am := testenv.StartAlertmanager(t, testenv.AMOptions{WebhookURL: webhook.URL})
	am.PostAlerts(t, testenv.AMAlert{
		Labels:      map[string]string{"alertname": "SLOErrorBudgetBurn", "slo": "checkout-availability", "severity": "page"},
		Annotations: map[string]string{"summary": "burning"},
		StartsAt:    time.Now().Add(-time.Minute),
	})

	alerts := am.Alerts(t)
	if len(alerts) != 1 {
		t.Fatalf("Alerts = %+v, want one", alerts)
	}
	a := alerts[0]
	if a.Labels["slo"] != "checkout-availability" || a.Labels["severity"] != "page" || a.Annotations["summary"] != "burning" {
		t.Errorf("alert = %+v, want the posted labels and annotations", a)
	}
	if a.StartsAt.IsZero() || !a.EndsAt.After(time.Now()) || a.Fingerprint == "" {
		t.Errorf("alert = %+v, want startsAt, a future endsAt and a fingerprint", a)
	}

	testenv.Eventually(t, 30*time.Second, "the notification at the webhook", func() error {
		mu.Lock()
		defer mu.Unlock()
		if got := strings.Join(received, ","); got != "firing:SLOErrorBudgetBurn" {
			return fmt.Errorf("webhook received %q, want firing:SLOErrorBudgetBurn", got)
		}
		return nil
	})
	if st := am.Alerts(t)[0].Status.State; st != "active" {
		t.Errorf("state after notification = %q, want active", st)
	}
	testenv.Eventually(t, 30*time.Second, "the notification in Alertmanager's notification log", func() error {
		ok, err := am.NotificationLogged(map[string]string{"alertname": "SLOErrorBudgetBurn", "slo": "checkout-availability"})
		if err == nil && !ok {
			err = errors.New("no entry for the alert's group")
		}
		return err
	})
	if ok, err := am.NotificationLogged(map[string]string{"slo": "checkout-availability", "severity": "ticket"}); err != nil || ok {
		t.Errorf("NotificationLogged of a group never notified = %v, %v; want false", ok, err)
	}
}

// After Stop nothing listens on the port any more: the server is gone, not
// orphaned. Stop is idempotent, and Restart comes back on the same port with
// the same data.
func TestStopAndRestart(t *testing.T) {
	t.Parallel()
	target := testenv.NewTarget(t)
	target.Counter("events_total").WithLabelValues().Add(5)
	prom := testenv.StartPrometheus(t, testenv.PromOptions{
		Targets: []testenv.ScrapeTarget{target.ScrapeTarget("app")},
	})
	am := testenv.StartAlertmanager(t, testenv.AMOptions{})
	prom.WaitForQuery(t, `events_total`, func(v float64) bool { return v == 5 }, 30*time.Second)
	promURL := prom.URL()

	prom.Stop()
	prom.Stop()
	am.Stop()
	assertRefused(t, prom.Addr())
	assertRefused(t, am.Addr())

	prom.Restart(t)
	if prom.URL() != promURL {
		t.Fatalf("URL after restart = %s, want %s", prom.URL(), promURL)
	}
	// The samples scraped before the stop are still there.
	prom.WaitForQuery(t, `max_over_time(events_total[10m])`, func(v float64) bool { return v == 5 }, 30*time.Second)

	prom.Kill()
	assertRefused(t, prom.Addr())
	am.Restart(t)
	if got := am.Alerts(t); len(got) != 0 {
		t.Errorf("alerts after restart = %+v, want none", got)
	}
}

func assertRefused(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections after Stop", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s after Stop: %v, want connection refused", addr, err)
	}
}

func TestReloadReadsNewRules(t *testing.T) {
	t.Parallel()
	rules := t.TempDir() + "/rules.yml"
	write := func(expr string) {
		t.Helper()
		body := "groups:\n- name: g\n  rules:\n  - record: answer\n    expr: " + expr + "\n"
		if err := os.WriteFile(rules, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("vector(41)")
	prom := testenv.StartPrometheus(t, testenv.PromOptions{RuleFiles: []string{rules}})
	prom.WaitForQuery(t, "answer", func(v float64) bool { return v == 41 }, 30*time.Second)
	write("vector(42)")
	prom.Reload(t)
	prom.WaitForQuery(t, "answer", func(v float64) bool { return v == 42 }, 30*time.Second)
}

func TestBackfillFromReader(t *testing.T) {
	t.Parallel()
	ts := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	text := "# TYPE temperature gauge\n" +
		"temperature{room=\"a\"} 21.5 " + strconv.FormatInt(ts.Unix(), 10) + "\n" +
		"# EOF\n"
	dataDir := t.TempDir()
	testenv.Backfill(t, dataDir, strings.NewReader(text))
	prom := testenv.StartPrometheus(t, testenv.PromOptions{DataDir: dataDir})
	if got := prom.QueryAt(t, `temperature{room="a"}`, ts); got != 21.5 {
		t.Errorf("temperature = %v, want 21.5", got)
	}
	if got, err := prom.TryQuery(t.Context(), `temperature{`, ts); err == nil {
		t.Errorf("TryQuery of a bad expression = %v, want an error", got)
	}
}

func TestTargetServesMetrics(t *testing.T) {
	t.Parallel()
	target := testenv.NewTarget(t)
	target.Histogram("latency_seconds", []float64{0.1, 0.5}, "route").WithLabelValues("/pay").Observe(0.3)
	if a, b := target.Counter("c_total", "x"), target.Counter("c_total", "x"); a != b {
		t.Error("Counter twice with the same name returned two vectors")
	}
	resp, err := http.Get(target.URL())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `latency_seconds_bucket{route="/pay",le="0.5"} 1`; !strings.Contains(string(body), want) {
		t.Errorf("metrics page lacks %q:\n%s", want, body)
	}
}
