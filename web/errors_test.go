package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestErrorsQuoteRequestTextCut sends a 10,000-character name, id or
// parameter to every endpoint that quotes one in an error: the answer stays
// small, still says what was wrong, and shows where the text was cut.
func TestErrorsQuoteRequestTextCut(t *testing.T) {
	fx := newFixture(t)
	srv, err := New(Options{Evaluator: fx.ev, Runs: fx.runs, Gatherer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 10_000)
	// Characters of several bytes and characters JSON and %q escape: the
	// cut must not split them.
	wide := strings.Repeat("é<\"", 4_000)
	const maxAnswer = 2 << 10

	tests := []struct {
		name     string
		method   string
		target   string
		body     string
		wantCode int
		want     string // what the error says was wrong
	}{
		{name: "SLO", method: "GET", target: "/api/v1/slos/" + long, wantCode: 404, want: `no SLO named "xxx`},
		{name: "SLO, wide characters", method: "GET", target: "/api/v1/slos/" + url.PathEscape(wide), wantCode: 404, want: `no SLO named "é<\"é`},
		{name: "hypothesis", method: "GET", target: "/api/v1/hypotheses/" + long, wantCode: 404, want: `no hypothesis named "xxx`},
		{name: "gate", method: "GET", target: "/api/v1/experiments/" + long + "/gate", wantCode: 404, want: `unknown experiment "xxx`},
		{name: "run start", method: "POST", target: "/api/v1/experiments/" + long + "/runs", wantCode: 404, want: `unknown experiment "xxx`},
		{name: "run start, wide characters", method: "POST", target: "/api/v1/experiments/" + url.PathEscape(wide) + "/runs", wantCode: 404, want: `unknown experiment "é<\"é`},
		{name: "run", method: "GET", target: "/api/v1/runs/" + long, wantCode: 404, want: "run xxx"},
		{name: "run finish", method: "POST", target: "/api/v1/runs/" + long + "/finish", wantCode: 404, want: "not found"},
		{name: "run abort", method: "POST", target: "/api/v1/runs/" + long + "/abort", wantCode: 404, want: "not found"},
		{name: "run wait", method: "GET", target: "/api/v1/runs/" + long + "/wait", wantCode: 404, want: "not found"},
		{name: "abort body with an unknown field", method: "POST", target: "/api/v1/runs/" + fx.running + "/abort", body: `{"` + long + `": 1}`, wantCode: 400, want: `body: expected {"reason": "..."}: json: unknown field "xxx`},
		{name: "run list limit", method: "GET", target: "/api/v1/runs?limit=" + long, wantCode: 400, want: `limit: expected a positive integer, got "xxx`},
		{name: "experiment's run list limit", method: "GET", target: "/api/v1/experiments/" + long + "/runs?limit=" + long, wantCode: 400, want: `limit: expected a positive integer, got "xxx`},
		{name: "wait timeout", method: "GET", target: "/api/v1/runs/" + fx.running + "/wait?timeout=" + long, wantCode: 400, want: `timeout: expected a duration like 30s, got "xxx`},
		{name: "wait seen", method: "GET", target: "/api/v1/runs/" + fx.running + "/wait?seen=" + long, wantCode: 400, want: `seen: expected a non-negative integer, got "xxx`},
		{name: "unknown endpoint", method: "GET", target: "/api/v2/" + long, wantCode: 404, want: "no API endpoint GET /api/v2/xxx"},
		{name: "unknown method", method: "DELETE", target: "/api/v1/slos/" + long, wantCode: 404, want: "no API endpoint DELETE /api/v1/slos/xxx"},
		{name: "reload method", method: strings.ToUpper(long), target: "/-/reload", wantCode: 405, want: "XXX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			var answer struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
				t.Fatalf("%d, not JSON: %v: %.300s", rec.Code, err, rec.Body)
			}
			if rec.Code != tt.wantCode || rec.Body.Len() > maxAnswer {
				t.Errorf("%d with %d bytes, want %d with at most %d: %.300s", rec.Code, rec.Body.Len(), tt.wantCode, maxAnswer, rec.Body)
			}
			if !strings.Contains(answer.Error, tt.want) || !strings.Contains(answer.Error, "… [") || !strings.Contains(answer.Error, " more bytes cut]") {
				t.Errorf("error %.400q does not say %q and where it was cut", answer.Error, tt.want)
			}
		})
	}

	// The UI's error pages quote the same names, cut the same way.
	for _, path := range []string{"/slos/" + long, "/runs/" + long} {
		code, _, body := get(t, srv.Handler(), path)
		if code != http.StatusNotFound || !strings.Contains(body, "There is no") || !strings.Contains(body, " more bytes cut]") {
			t.Errorf("GET %.30s...: %d, want 404 with the name cut: %.500s", path, code, body)
		}
	}
}
