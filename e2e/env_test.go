// Package e2e tests the slogate binary as users run it: a real `slogate
// serve` process against a real Prometheus scraping a synthetic target,
// driven over HTTP and through `slogate gate` / `slogate run`.
package e2e

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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slogate/slogate/internal/testenv"
)

// slogateBinary is the binary under test, built once per test process.
func slogateBinary(t *testing.T) string { return testenv.SlogateBinary(t) }

// shop is a synthetic service: a target whose request counters the test
// drives, scraped every second by a real Prometheus.
type shop struct {
	prom     *testenv.Prometheus
	requests *prometheus.CounterVec
	mu       sync.Mutex
	errShare float64
}

func startShop(t *testing.T) *shop {
	t.Helper()
	target := testenv.NewTarget(t)
	s := &shop{requests: target.Counter("http_requests_total", "code")}
	s.requests.WithLabelValues("200").Add(0)
	s.requests.WithLabelValues("500").Add(0)
	s.prom = testenv.StartPrometheus(t, testenv.PromOptions{ScrapeInterval: time.Second, Targets: []testenv.ScrapeTarget{target.ScrapeTarget("shop")}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				s.mu.Lock()
				e := s.errShare
				s.mu.Unlock()
				s.requests.WithLabelValues("500").Add(20 * e)
				s.requests.WithLabelValues("200").Add(20 * (1 - e))
			}
		}
	}()
	return s
}

func (s *shop) setErrors(share float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errShare = share
}

const definitions = `apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: shop-availability, labels: {team: web}}
spec:
  service: shop
  objective: 99
  window: 1d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{code="500"}[{{.window}}]))
      total: sum(rate(http_requests_total[{{.window}}]))
  gate: {minBudgetRemaining: 50%}
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: shop-steady}
spec:
  probes:
    - name: error-rate
      query: sum(rate(http_requests_total{code="500"}[5s])) / sum(rate(http_requests_total[5s]))
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

// server is a running `slogate serve` process.
type server struct {
	t       *testing.T
	dir     string
	url     string
	token   string
	args    []string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

type serverOptions struct {
	promURL   string
	webConfig string // content of web.config-file, empty for none
	amURL     string // Alertmanager to send alerts to, empty for none
	scheme    string
}

func startServer(t *testing.T, o serverOptions) *server {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "definitions.yaml"), []byte(definitions), 0o644); err != nil {
		t.Fatal(err)
	}
	token := "s3cret-token"
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	scheme := o.scheme
	if scheme == "" {
		scheme = "http"
	}
	s := &server{
		t: t, dir: dir, token: token, logPath: filepath.Join(dir, "slogate.log"),
		url: fmt.Sprintf("%s://127.0.0.1:%d", scheme, port),
		args: []string{"serve",
			"--prometheus.url=" + o.promURL,
			"--prometheus.timeout=2s",
			"--definitions=" + filepath.Join(dir, "definitions.yaml"),
			"--evaluation.interval=1s",
			"--evaluation.min-range=5s",
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
			"--web.api-token-file=" + filepath.Join(dir, "token"),
			"--storage.path=" + filepath.Join(dir, "data"),
			"--log.format=json",
		},
	}
	if o.amURL != "" {
		s.args = append(s.args, "--alertmanager.urls="+o.amURL, "--alertmanager.resend-delay=2s")
	}
	if o.webConfig != "" {
		path := filepath.Join(dir, "web.yml")
		if err := os.WriteFile(path, []byte(o.webConfig), 0o600); err != nil {
			t.Fatal(err)
		}
		s.args = append(s.args, "--web.config-file="+path)
	}
	s.start()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			b, _ := os.ReadFile(s.logPath)
			lines := strings.Split(string(b), "\n")
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			t.Logf("last lines of slogate's log:\n%s", strings.Join(lines, "\n"))
		}
	})
	return s
}

func (s *server) start() {
	s.t.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd = exec.Command(slogateBinary(s.t), s.args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		logf.Close()
		close(s.done)
	}()
}

// stop sends SIGTERM and waits; the service must be gone within its
// shutdown bound.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.t.Errorf("slogate did not stop within 20s of SIGTERM")
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *server) kill9() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// do sends a request and decodes a JSON answer into out (if not nil).
func (s *server) do(method, path string, auth bool, body io.Reader, out any) int {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: status %d, body %q: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
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

func (s *server) waitReady() {
	s.t.Helper()
	waitFor(s.t, "slogate to be ready", 60*time.Second, func() bool {
		if s.exited() {
			s.t.Fatalf("slogate exited")
		}
		resp, err := httpClient.Get(s.url + "/ping")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

type gateAnswer struct {
	Experiment string `json:"experiment"`
	Status     string `json:"status"`
	Reasons    []struct {
		Kind, Name, Message string
	} `json:"reasons"`
}

func (g gateAnswer) hasReason(kind string) bool {
	for _, r := range g.Reasons {
		if r.Kind == kind {
			return true
		}
	}
	return false
}

func (s *server) gate() (gateAnswer, int) {
	var g gateAnswer
	code := s.do("GET", "/api/v1/experiments/break-shop/gate", false, nil, &g)
	return g, code
}

type runAnswer struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Reason   string `json:"reason"`
	Timeline []struct {
		Hypothesis, Probe, SLO, Verdict, Message string
		Value                                    *float64
	} `json:"timeline"`
	Error string `json:"error"`
}

// definitionsWide is definitions with one more SLO and experiment
// (break-shop-too); the load and kill -9 tests reload between the two.
const definitionsWide = definitions + `---
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: shop-availability-strict}
spec:
  service: shop
  objective: 99.9
  window: 1d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{code="500"}[{{.window}}]))
      total: sum(rate(http_requests_total[{{.window}}]))
---
apiVersion: slogate.dev/v1
kind: Experiment
metadata: {name: break-shop-too}
spec: {hypotheses: [shop-steady], recovery: 5s}
`
