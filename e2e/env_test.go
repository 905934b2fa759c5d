// Package e2e tests the slogate binary as users run it: a real `slogate
// serve` process against a real Prometheus scraping a synthetic target,
// driven over HTTP and through `slogate gate` / `slogate run`.
package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// slogateBinary is the binary under test, built once per test process.
func slogateBinary(t *testing.T) string { return testenv.SlogateBinary(t) }

// shop is a synthetic service: a target whose request counters grow by
// 200 requests a second, errShare of them failing, scraped every second by
// a real Prometheus.
type shop struct {
	prom    *testenv.Prometheus
	traffic *testenv.Traffic
}

func startShop(t *testing.T) *shop {
	t.Helper()
	target := testenv.NewTarget(t)
	s := &shop{traffic: target.Traffic(200)}
	s.prom = testenv.StartPrometheus(t, testenv.PromOptions{ScrapeInterval: time.Second, Targets: []testenv.ScrapeTarget{target.ScrapeTarget("shop")}})
	return s
}

func (s *shop) setErrors(share float64) { s.traffic.SetErrorShare(share) }

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

// server is a running `slogate serve` process with the definitions above
// and an API token.
type server struct {
	*testenv.Slogate
	t *testing.T
}

type serverOptions struct {
	promURL   string
	amURLs    []string // Alertmanagers to send alerts to, none for none
	webConfig string   // content of web.config-file, empty for none
	// tls and basicAuth ("user", "password") are the client side of
	// webConfig, for the readiness check and the helpers' requests.
	tls       *tls.Config
	basicAuth [2]string
	token     string // default apiToken
	config    string // content of a --config file, empty for none
	storage   string // storage.path, default in the server's directory
	// storageURL puts runs in PostgreSQL (storage.url) instead of bbolt.
	storageURL string
	interval   time.Duration // evaluation.interval, default 1s
	args       []string
	// definitions replace the definitions above when set.
	definitions string
}

// apiToken is the API token of the servers of these tests.
const apiToken = "s3cret-token"

func serverConfig(o serverOptions) testenv.SlogateOptions {
	if o.token == "" {
		o.token = apiToken
	}
	args := append([]string{"--prometheus.timeout=2s"}, o.args...)
	if o.storageURL != "" {
		args = append(args, "--storage.url="+o.storageURL)
	}
	if len(o.amURLs) > 0 {
		args = append(args, "--alertmanager.resend-delay=2s")
	}
	defs := definitions
	if o.definitions != "" {
		defs = o.definitions
	}
	return testenv.SlogateOptions{
		PrometheusURL: o.promURL, AlertmanagerURLs: o.amURLs, Definitions: defs,
		Token: o.token, WebConfig: o.webConfig, TLS: o.tls, BasicAuthUser: o.basicAuth[0], BasicAuthPassword: o.basicAuth[1],
		Config: o.config, StoragePath: o.storage, MinRange: 5 * time.Second, Interval: o.interval, Args: args,
	}
}

// startServer starts slogate and waits until it is ready (/ping).
func startServer(t *testing.T, o serverOptions) *server {
	t.Helper()
	return &server{Slogate: testenv.StartSlogate(t, serverConfig(o)), t: t}
}

// newServer prepares the server without starting it.
func newServer(t *testing.T, o serverOptions) *server {
	t.Helper()
	return &server{Slogate: testenv.NewSlogate(t, serverConfig(o)), t: t}
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// do sends a request, with the API token if auth, and decodes a JSON answer
// into out (if not nil).
func (s *server) do(method, path string, auth bool, body io.Reader, out any) int {
	s.t.Helper()
	return s.Do(method, path, body, auth, out)
}

// waitGate waits until the gate of break-shop answers status.
func (s *server) waitGate(what string, timeout time.Duration, status int) {
	s.t.Helper()
	s.Eventually(timeout, what, func() error {
		if g, code := s.gate(); code != status {
			return fmt.Errorf("the gate answers %d %+v, want %d", code, g, status)
		}
		return nil
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

// evaluations is how many evaluation cycles the server has finished.
func (s *server) evaluations() float64 {
	s.t.Helper()
	n, err := s.Evaluations()
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

type runAnswer struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Reason   string `json:"reason"`
	Timeline []struct {
		Hypothesis, Probe, SLO, Verdict, Message string
		Value, Baseline                          *float64
	} `json:"timeline"`
	Error string `json:"error"`
}

// measurements counts the values of probe in the run's timeline.
func (r runAnswer) measurements(probe string) int {
	n := 0
	for _, e := range r.Timeline {
		if e.Probe == probe && e.Value != nil {
			n++
		}
	}
	return n
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
