package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const backtestDefs = `
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: shop}
spec:
  service: shop
  objective: 99
  window: 7d
  indicator:
    ratio:
      errors: sum(rate(requests_total{code="500"}[{{.window}}]))
      total: sum(rate(requests_total[{{.window}}]))
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: steady}
spec:
  probes:
    - {name: error-rate, query: 'sum(rate(requests_total{code="500"}[5m]))', tolerance: "< 1"}
  failAfter: 1
  passAfter: 1
`

// fakePrometheus answers every range query with value at every step.
func fakePrometheus(t *testing.T, value string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query_range" {
			http.NotFound(w, r)
			return
		}
		_ = r.ParseForm()
		// The client sends Unix seconds.
		unix := func(s string) (time.Time, error) {
			f, err := strconv.ParseFloat(s, 64)
			return time.UnixMilli(int64(f * 1000)), err
		}
		start, err1 := unix(r.Form.Get("start"))
		end, err2 := unix(r.Form.Get("end"))
		step, err3 := strconv.ParseFloat(r.Form.Get("step"), 64)
		if err := errors.Join(err1, err2, err3); err != nil || step <= 0 {
			http.Error(w, fmt.Sprintf(`{"status":"error","errorType":"bad_data","error":%q}`, fmt.Sprint(err)), http.StatusBadRequest)
			return
		}
		var values []string
		for ts := start; !ts.After(end); ts = ts.Add(time.Duration(step * float64(time.Second))) {
			values = append(values, fmt.Sprintf(`[%s,%q]`, strconv.FormatFloat(float64(ts.UnixMilli())/1000, 'f', 3, 64), value))
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[%s]}]}}`, strings.Join(values, ","))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestBacktestCommand(t *testing.T) {
	defs := filepath.Join(t.TempDir(), "defs.yaml")
	if err := os.WriteFile(defs, []byte(backtestDefs), 0o644); err != nil {
		t.Fatal(err)
	}
	guardedDefs := filepath.Join(t.TempDir(), "guarded.yaml")
	if err := os.WriteFile(guardedDefs, []byte(strings.Replace(backtestDefs, "  indicator:", "  alerting: {minEvents: 100}\n  indicator:", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := fakePrometheus(t, "0.5") // burns a 1 % budget 50×
	window := []string{"--from", "2026-11-20T00:00:00Z", "--to", "2026-11-20T06:00:00Z", "--prometheus.url", srv.URL}
	tests := []struct {
		name        string
		args        []string
		code        int
		stdoutHas   []string
		stdoutLacks string
		stderrHas   string
	}{
		{name: "text", args: append([]string{"backtest", defs}, window...),
			stdoutHas: []string{"SLO shop (shop): budget remaining at the end -4900.0%", "page   fired 2026-11-20T00:00:00Z  still firing at the end",
				"2026-11-20T00:00:00Z  steady  unknown → pass (error-rate = 0.5 < 1)"},
			stderrHas: "backtest: 9/9 range queries done (hypothesis steady, probe error-rate)"},
		{name: "json", args: append([]string{"backtest", defs, "-o", "json"}, window...),
			stdoutHas: []string{`"budgetRemainingAtEnd": -48.99`, `"severity": "page"`, `"resolvedAt": null`, `"to": "pass"`}},
		{name: "low traffic", args: append([]string{"backtest", guardedDefs}, window...),
			// 0.5 requests a step: 6 in an hour, 144 in a day. The
			// page's hour is too quiet for minEvents 100, the ticket's day
			// is not.
			stdoutHas: []string{"ticket fired 2026-11-20T00:00:00Z  still firing at the end", "minEvents 100 removed 1 alert (1 page) on low traffic",
				"    page   would have fired 2026-11-20T00:00:00Z on 6 events over 1h: burn rate 50 over 1h and 50 over 5m > 3.36"},
			stdoutLacks: "page   fired",
			stderrHas:   "backtest: 10/10 range queries done"},
		{name: "env URL", args: []string{"backtest", defs, "--from", "2026-11-20T00:00:00Z", "--to", "2026-11-20T01:00:00Z"},
			stdoutHas: []string{"budget remaining at the end"}},
		{name: "from is required", args: []string{"backtest", defs}, code: 1, stderrHas: `"from" not set`},
		{name: "bad time", args: []string{"backtest", defs, "--from", "last week", "--prometheus.url", srv.URL}, code: 1, stderrHas: "--from: time"},
		{name: "bad output", args: append([]string{"backtest", defs, "-o", "yaml"}, window...), code: 1, stderrHas: "unknown format"},
		{name: "end before start", args: []string{"backtest", defs, "--from", "-1d", "--to", "-2d", "--prometheus.url", srv.URL}, code: 1, stderrHas: "is not after the start"},
		{name: "bad definitions", args: append([]string{"backtest", "../../testdata/definitions/bad/bad-promql.yaml"}, window...), code: 1, stderrHas: "bad-promql.yaml:"},
		{name: "unreachable", args: []string{"backtest", defs, "--from", "-1h", "--prometheus.url", "http://127.0.0.1:1"}, code: 1, stderrHas: "unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "env URL" {
				t.Setenv(envPrometheusURL, srv.URL)
			}
			var stdout, stderr bytes.Buffer
			code := execute(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			for _, want := range tt.stdoutHas {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			if tt.stdoutLacks != "" && strings.Contains(stdout.String(), tt.stdoutLacks) {
				t.Errorf("stdout has %q:\n%s", tt.stdoutLacks, stdout.String())
			}
			if tt.stderrHas != "" && !strings.Contains(stderr.String(), tt.stderrHas) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderrHas, stderr.String())
			}
			if tt.name == "json" {
				var v map[string]any
				if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
					t.Errorf("not JSON: %v", err)
				}
			}
		})
	}
}
