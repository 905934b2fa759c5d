package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// apiRoutes are the API's endpoints; %s is where the fuzzer's path segment
// goes, unescaped, so that it can also add segments, dots and escapes.
var apiRoutes = []string{
	"/api/v1/slos",
	"/api/v1/slos/%s",
	"/api/v1/hypotheses",
	"/api/v1/hypotheses/%s",
	"/api/v1/experiments",
	"/api/v1/experiments/%s/gate",
	"/api/v1/experiments/%s/runs",
	"/api/v1/runs",
	"/api/v1/runs/%s",
	"/api/v1/runs/%s/finish",
	"/api/v1/runs/%s/abort",
	"/api/v1/runs/%s/wait",
	"/-/reload",
	"/api/%s",
}

const fuzzToken = "fuzz-token"

// FuzzAPI sends arbitrary requests to the API of a real Server over the
// real evaluator and run manager (the UI tests' fixture: a small fake
// Prometheus and a bbolt store in a temporary directory). Whatever the
// request: no panic, no 5xx but the 503 of an unknown gate, and every error
// is JSON {"error": "..."} (a closed or unknown gate answers with its
// reasons instead, and a refused run with the error and the gate).
func FuzzAPI(f *testing.F) {
	fx := newFixture(f)
	var reloads atomic.Int64
	srv, err := New(Options{
		Evaluator: fx.ev, Runs: fx.runs, Gatherer: prometheus.NewRegistry(),
		APIToken: fuzzToken, MaxBodyBytes: 1 << 10,
		// Every other reload is rejected, as a file with errors would be.
		Reload: func(context.Context) error {
			if reloads.Add(1)%2 == 0 {
				return errors.New("defs.yaml:3:14: error: spec.objective: expected a number, got \"x\"")
			}
			return fx.ev.SetDefinitions(fixtureDefinitions())
		},
	})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()

	for _, s := range []struct {
		method  string
		route   uint8
		segment string
		query   string
		body    string
		auth    bool
	}{
		{"GET", 0, "", "", "", false},
		{"GET", 1, "checkout-availability", "", "", false},
		{"GET", 1, "no-such-slo", "", "", false},
		{"GET", 3, "search-steady", "", "", false},
		{"GET", 4, "", "", "", false},
		{"GET", 5, "kill-checkout-pod", "", "", false},
		{"GET", 5, "drain-inventory", "", "", false},
		{"GET", 5, "slow-search", "", "", false},
		{"GET", 5, "no-such-experiment", "", "", false},
		{"POST", 6, "kill-checkout-pod", "", "", true},
		{"POST", 6, "restart-catalog", "", "", true},
		{"POST", 6, "restart-catalog", "", "", false},
		{"GET", 6, "restart-catalog", "limit=2&active=true", "", false},
		{"GET", 7, "", "limit=-1", "", false},
		{"GET", 7, "", "limit=99999999999999999999", "", false},
		{"GET", 8, fx.running, "", "", false},
		{"GET", 8, "../../slos", "", "", false},
		{"GET", 8, "%2e%2e", "", "", false},
		{"POST", 9, fx.running, "", "", true},
		{"POST", 9, fx.passed, "", "", true},
		{"POST", 10, fx.running, "", `{"reason": "stop"}`, true},
		{"POST", 10, fx.aborted, "", `{"reason": 42}`, true},
		{"POST", 10, fx.running, "", `{"reason": "x", "extra": 1}`, true},
		{"POST", 10, fx.running, "", strings.Repeat("x", 2000), true},
		{"POST", 10, "no-such-run", "", "", true},
		{"GET", 11, fx.running, "timeout=1ms", "", false},
		{"GET", 11, fx.running, "timeout=-1s&seen=x", "", false},
		{"GET", 11, fx.passed, "state=passed&seen=0&timeout=10ms", "", false},
		{"GET", 11, "no-such-run", "timeout=1ms", "", false},
		{"POST", 12, "", "", "", true},
		{"POST", 12, "", "", "", true},
		{"PUT", 12, "", "", "", false},
		{"POST", 12, "", "", "", false},
		{"GET", 12, "", "", "", false},
		{"DELETE", 1, "checkout-availability", "", "", true},
		{"PATCH", 9, fx.running, "", "", true},
		{"OPTIONS", 0, "", "", "", false},
		{"HEAD", 5, "kill-checkout-pod", "", "", false},
		{"GET", 13, "v2/slos", "", "", false},
		{"GET", 13, "v1/runs/\x00", "", "", false},
	} {
		f.Add(s.method, s.route, s.segment, s.query, []byte(s.body), s.auth)
	}

	f.Fuzz(func(t *testing.T, method string, route uint8, segment, query string, body []byte, auth bool) {
		path := strings.Replace(apiRoutes[int(route)%len(apiRoutes)], "%s", segment, 1)
		target := "http://slogate.test" + path
		if query != "" {
			target += "?" + query
		}
		// Bound /wait (whose own timeout may be minutes) and anything else
		// that blocks: a request that outlives this is answered anyway.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		if !strings.HasPrefix(req.URL.Path, "/api/") && req.URL.Path != "/-/reload" {
			return // the UI and /metrics are not this target's business
		}
		if auth {
			req.Header.Set("Authorization", "Bearer "+fuzzToken)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAPIAnswer(t, req, rec)
	})
}

func checkAPIAnswer(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	code, body := rec.Code, rec.Body.Bytes()
	what := fmt.Sprintf("%s %s: %d %q", req.Method, req.URL, code, body)
	if code >= 300 && code < 400 {
		// The mux cleans paths (//, ..) by redirecting, before any handler.
		if rec.Header().Get("Location") == "" {
			t.Fatalf("%s: a redirect without Location", what)
		}
		return
	}
	gate := req.Method == http.MethodGet || req.Method == http.MethodHead
	gate = gate && strings.HasPrefix(req.URL.Path, "/api/v1/experiments/") && strings.HasSuffix(req.URL.Path, "/gate")
	if code >= 500 && !(code == http.StatusServiceUnavailable && gate) {
		t.Fatalf("%s: a server error", what)
	}
	if req.Method == http.MethodHead {
		return
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q, want application/json", what, ct)
	}
	var answer map[string]any
	if err := json.Unmarshal(body, &answer); err != nil {
		t.Fatalf("%s: not a JSON object: %v", what, err)
	}
	if code < 400 {
		return
	}
	if gate && (code == http.StatusConflict || code == http.StatusServiceUnavailable) {
		// A closed or unknown gate is an answer, with its reasons.
		if s, _ := answer["status"].(string); s != "closed" && s != "unknown" {
			t.Fatalf("%s: a %d gate answer without status closed or unknown", what, code)
		}
		return
	}
	if msg, _ := answer["error"].(string); strings.TrimSpace(msg) == "" {
		t.Fatalf("%s: an error without an \"error\" message", what)
	}
}
