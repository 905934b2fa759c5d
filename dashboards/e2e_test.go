package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/slogate/slogate/internal/testenv"
)

// eventOnly are the metrics whose series exist only after an event the
// end-to-end test cannot cause: a query reading one of them must parse and
// run, but may return nothing. Keep this list short; an event the test can
// cause (a run ending, an alert firing) it causes instead.
var eventOnly = map[string]string{
	// Exported by the Alertmanager notifier once it has sent an alert. The
	// test points slogate at a real Alertmanager and makes an alert fire,
	// but a build without the notifier has no such series.
	"slogate_alerts_sent_total": "needs slogate's Alertmanager notifier and a sent alert",
	// Only drops (queue full, Alertmanager rejecting) create a series; a
	// healthy setup never has one.
	"slogate_alerts_dropped_total": "needs a dropped alert",
	"slogate_alerts_queue_length":  "needs slogate's Alertmanager notifier",
}

// definitions give every dashboard variable the value testValues uses: an
// SLO with a team label, a hypothesis and an experiment. The SLO window is
// 30d so that all the alert windows (up to 3d) are evaluated.
const definitions = `apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: shop-availability, labels: {team: web}}
spec:
  service: shop
  objective: 99
  window: 30d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="shop",code="500"}[{{.window}}]))
      total: sum(rate(http_requests_total{job="shop"}[{{.window}}]))
  gate: {minBudgetRemaining: 50%}
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: shop-steady}
spec:
  probes:
    - name: error-rate
      query: sum(rate(http_requests_total{job="shop",code="500"}[5s])) / sum(rate(http_requests_total{job="shop"}[5s]))
      tolerance: "< 0.1"
  failAfter: 1
  passAfter: 1
---
apiVersion: slogate.dev/v1
kind: Experiment
metadata: {name: break-shop}
spec:
  hypotheses: [shop-steady]
  slos: [shop-availability]
  recovery: 10s
`

// TestQueriesReturnData runs every dashboard query against a real
// Prometheus that scrapes a real `slogate serve`, and fails for any query
// that returns nothing: a panel that stays empty against a working slogate
// is broken. It first causes the events that create series (a run that
// ends, a page alert) so that their panels are checked too.
func TestQueriesReturnData(t *testing.T) {
	qs := checkedQueries(t, loadDashboards(t))
	if t.Failed() {
		t.FailNow()
	}

	bin := testenv.SlogateBinary(t)
	shop := startShop(t)
	am := testenv.StartAlertmanager(t, testenv.AMOptions{})
	port := testenv.FreePort(t)
	slogateAddr := fmt.Sprintf("127.0.0.1:%d", port)
	// One Prometheus serves both sides: slogate queries the shop's
	// counters, and the dashboards query slogate's metrics.
	prom := testenv.StartPrometheus(t, testenv.PromOptions{
		ScrapeInterval: time.Second,
		Targets: []testenv.ScrapeTarget{
			shop.target.ScrapeTarget("shop"),
			{Job: "slogate", Addr: slogateAddr},
		},
	})
	srv := startSlogate(t, bin, "http://"+slogateAddr, []string{
		"--prometheus.url=" + prom.URL(),
		"--alertmanager.urls=" + am.URL(),
		"--evaluation.interval=1s",
		"--evaluation.min-range=5s",
		"--web.listen-address=" + slogateAddr,
	})

	waitFor(t, "slogate to be ready", 60*time.Second, func() bool {
		if srv.exited() {
			t.Fatal("slogate exited")
		}
		code, _ := srv.do("GET", "/ping", nil)
		return code == http.StatusOK
	})
	waitFor(t, "the gate of break-shop to open", 60*time.Second, func() bool {
		code, _ := srv.do("GET", "/api/v1/experiments/break-shop/gate", nil)
		return code == http.StatusOK
	})

	// A run that ends creates slogate_runs_total.
	var run struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if code, body := srv.do("POST", "/api/v1/experiments/break-shop/runs", &run); code != http.StatusCreated || run.ID == "" {
		t.Fatalf("start run: status %d: %s", code, body)
	}
	if code, body := srv.do("POST", "/api/v1/runs/"+run.ID+"/abort", &run); code != http.StatusOK || run.State != "aborted" {
		t.Fatalf("abort run: status %d: %s", code, body)
	}

	// Half the requests failing burns a 99 % SLO at 50x: the page alert
	// fires, which the alert panels and annotations need.
	shop.errShare.Store(0.5)
	prom.WaitForQuery(t, `max(slogate_slo_alert_firing{slo="shop-availability", severity="page"})`,
		func(v float64) bool { return v == 1 }, 90*time.Second)

	// The dashboards derive the SLI over the SLO window from the budget and
	// the objective, because PromQL cannot pick each SLO's longest window
	// label; the derivation must agree with slogate's own 30d SLI.
	prom.WaitForQuery(t, `abs(1 - (1 - slogate_slo_error_budget_remaining_ratio) * (1 - slogate_slo_objective_ratio)
		- on(slo, service) slogate_slo_sli_ratio{window="30d"})`,
		func(v float64) bool { return v < 1e-9 }, 30*time.Second)

	// Series appear at slightly different times (a window becomes complete,
	// rate needs two samples), so the queries share a grace period. Queries
	// that may stay empty come last and get one try, so that they do not
	// spend it.
	deadline := time.Now().Add(30 * time.Second)
	var optional []query
	for _, q := range qs {
		if _, ok, _ := eventOnlyReason(q.expr); ok {
			optional = append(optional, q)
			continue
		}
		checkReturnsData(t, prom, q, deadline)
	}
	for _, q := range optional {
		checkReturnsData(t, prom, q, time.Now())
	}
}

// checkReturnsData evaluates q until it returns data or deadline passes.
func checkReturnsData(t *testing.T, prom *testenv.Prometheus, q query, deadline time.Time) {
	t.Helper()
	expr := q.expr
	if q.label != "" {
		// What label_values(selector, label) offers in the drop-down.
		expr = fmt.Sprintf("count by (%s) (%s)", q.label, q.expr)
	}
	reason, optional, err := eventOnlyReason(expr)
	if err != nil {
		t.Errorf("%s: %v", q.where, err)
		return
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		samples, err := prom.TryQuery(ctx, expr, time.Time{})
		cancel()
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			return
		}
		if ok, why := hasData(q, samples); ok {
			if optional {
				t.Logf("%s: event-only query (%s) returned data; its metrics may leave eventOnly", q.where, reason)
			}
			return
		} else if time.Now().After(deadline) {
			if optional {
				t.Logf("%s: no data, allowed: %s", q.where, reason)
				return
			}
			t.Errorf("%s: %s: %s", q.where, expr, why)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// hasData says whether samples is a useful answer to q: some samples, and
// for a variable the value the test expects among the label's values.
func hasData(q query, samples []testenv.Sample) (bool, string) {
	if len(samples) == 0 {
		return false, "no data"
	}
	if q.label == "" {
		return true, ""
	}
	want := testValues[q.label]
	var got []string
	for _, s := range samples {
		if s.Metric[q.label] == want {
			return true, ""
		}
		got = append(got, s.Metric[q.label])
	}
	return false, fmt.Sprintf("values %q, want %q among them", got, want)
}

// eventOnlyReason reports whether expr reads a metric of eventOnly.
func eventOnlyReason(expr string) (string, bool, error) {
	parsed, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return "", false, err
	}
	names, err := metricNames(parsed)
	if err != nil {
		return "", false, err
	}
	for _, n := range names {
		if r, ok := eventOnly[n]; ok {
			return r, true, nil
		}
	}
	return "", false, nil
}

// shop is the synthetic service the SLO measures: request counters that
// grow by 200 requests a second, errShare of them failing.
type shop struct {
	target   *testenv.Target
	errShare atomic.Value // float64
}

func startShop(t *testing.T) *shop {
	t.Helper()
	s := &shop{target: testenv.NewTarget(t)}
	s.errShare.Store(0.0)
	requests := s.target.Counter("http_requests_total", "code")
	requests.WithLabelValues("200").Add(0)
	requests.WithLabelValues("500").Add(0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				e := s.errShare.Load().(float64)
				requests.WithLabelValues("500").Add(20 * e)
				requests.WithLabelValues("200").Add(20 * (1 - e))
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// slogateProcess is a running `slogate serve`.
type slogateProcess struct {
	t    *testing.T
	url  string
	done chan struct{} // closed when the process has exited
}

func (s *slogateProcess) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// startSlogate runs `slogate serve` with the test's definitions and args;
// it is stopped with SIGTERM when the test ends, and its log is printed if
// the test failed.
func startSlogate(t *testing.T, bin, url string, args []string) *slogateProcess {
	t.Helper()
	dir := t.TempDir()
	defs := filepath.Join(dir, "definitions.yaml")
	if err := os.WriteFile(defs, []byte(definitions), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "slogate.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// No --web.api-token-file: the run API needs no token here.
	cmd := exec.Command(bin, append([]string{"serve",
		"--definitions=" + defs,
		"--storage.path=" + filepath.Join(dir, "data"),
		"--log.format=json",
	}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Killed with the test binary, so a panic or a timeout leaves no
	// orphan.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("slogate did not stop within 20s of SIGTERM")
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) > 40 {
				lines = lines[len(lines)-40:]
			}
			t.Logf("last lines of slogate's log:\n%s", strings.Join(lines, "\n"))
		}
	})
	return &slogateProcess{t: t, url: url, done: done}
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// do sends a request to slogate and decodes a JSON answer into out (if not
// nil). A connection error reads as status 0, for polling.
func (s *slogateProcess) do(method, path string, out any) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: status %d, body %q: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, string(b)
}

// waitFor polls cond every 200ms until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
