package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/chaos"
	"github.com/slogate/slogate/evaluator/store"
)

// TestMutatingToken checks where a mutating call may carry the API token:
// as a bearer token, or in TokenHeader when basic auth of the web config
// file takes the Authorization header.
func TestMutatingToken(t *testing.T) {
	const token = "t0ken-abc"
	fx := newFixture(t)
	srv, err := New(Options{Evaluator: fx.ev, Runs: fx.runs, Gatherer: prometheus.NewRegistry(), APIToken: token})
	if err != nil {
		t.Fatal(err)
	}
	basic := "Basic " + "c3JlOmh1bnRlcjI=" // sre:hunter2, what exporter-toolkit checked before
	tests := []struct {
		name    string
		headers map[string][]string
		want    int
	}{
		{name: "bearer", headers: map[string][]string{"Authorization": {"Bearer " + token}}, want: http.StatusNotImplemented},
		{name: "token header", headers: map[string][]string{TokenHeader: {token}}, want: http.StatusNotImplemented},
		{name: "token header beside basic auth", headers: map[string][]string{"Authorization": {basic}, TokenHeader: {token}}, want: http.StatusNotImplemented},
		{name: "wrong bearer, right token header", headers: map[string][]string{"Authorization": {"Bearer nope"}, TokenHeader: {token}}, want: http.StatusNotImplemented},
		{name: "nothing", want: http.StatusUnauthorized},
		{name: "basic auth only", headers: map[string][]string{"Authorization": {basic}}, want: http.StatusUnauthorized},
		{name: "wrong bearer", headers: map[string][]string{"Authorization": {"Bearer " + token + "x"}}, want: http.StatusUnauthorized},
		{name: "wrong token header", headers: map[string][]string{TokenHeader: {token[:len(token)-1]}}, want: http.StatusUnauthorized},
		{name: "token header with a scheme", headers: map[string][]string{TokenHeader: {"Bearer " + token}}, want: http.StatusUnauthorized},
		{name: "bearer in lower case", headers: map[string][]string{"Authorization": {"bearer " + token}}, want: http.StatusUnauthorized},
		{name: "several token headers", headers: map[string][]string{TokenHeader: {"guess", token}}, want: http.StatusUnauthorized},
		{name: "empty token header", headers: map[string][]string{TokenHeader: {""}}, want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// POST /-/reload without a Reload function answers 501 once
			// past the token check, and changes nothing.
			req := httptest.NewRequest(http.MethodPost, "/-/reload", nil)
			for k, vs := range tt.headers {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if tt.want != http.StatusUnauthorized {
				return
			}
			var body struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"web.api-token-file", "Authorization: Bearer <token>", "X-Slogate-Token: <token>"} {
				if !strings.Contains(body.Error, want) {
					t.Errorf("401 message %q lacks %q", body.Error, want)
				}
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != `Bearer realm="slogate"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			if strings.Contains(rec.Body.String(), token) {
				t.Errorf("the 401 answer contains the token: %s", rec.Body)
			}
		})
	}
	// Reads need no token.
	if code, _, _ := get(t, srv.Handler(), "/api/v1/experiments"); code != http.StatusOK {
		t.Errorf("GET /api/v1/experiments without a token: %d", code)
	}
}

// TestEmptyListsAreArrays: with no definitions and no runs, every list of
// the API is [] rather than null, which clients would have to special-case;
// and in every answer over definitions and runs, every list, empty or not,
// is an array.
func TestEmptyListsAreArrays(t *testing.T) {
	ev, err := evaluator.New(evaluator.Options{Querier: emptyQuerier{}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	runs, err := chaos.New(chaos.Options{Store: st, Snapshots: func() chaos.Statuses { return ev.Snapshot() }, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ev.Evaluate(context.Background(), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	srv, err := New(Options{Evaluator: ev, Runs: runs, Gatherer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	for path, key := range map[string]string{
		"/api/v1/slos": "slos", "/api/v1/hypotheses": "hypotheses", "/api/v1/experiments": "experiments", "/api/v1/runs": "runs",
	} {
		code, _, body := get(t, srv.Handler(), path)
		var got map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &got); err != nil || code != http.StatusOK || string(got[key]) != "[]" {
			t.Errorf("GET %s: %d %s, want 200 and %q: []", path, code, body, key)
		}
	}

	// Over definitions and runs: the lists of every answer, nested ones
	// included (an open gate's reasons, an experiment without runs).
	fx := newFixture(t)
	paths := []string{
		"/api/v1/slos", "/api/v1/slos/checkout-availability", "/api/v1/hypotheses", "/api/v1/hypotheses/search-steady",
		"/api/v1/experiments", "/api/v1/runs", "/api/v1/runs?active=true",
		"/api/v1/runs/" + fx.running, "/api/v1/runs/" + fx.passed, "/api/v1/runs/" + fx.aborted,
	}
	for _, exp := range fixtureDefinitions().Experiments {
		paths = append(paths, "/api/v1/experiments/"+exp.Name+"/gate", "/api/v1/experiments/"+exp.Name+"/runs")
	}
	emptySeen := map[string]bool{}
	for _, path := range paths {
		code, _, body := get(t, fx.server.Handler(), path)
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil || code == http.StatusNotFound || code >= 500 && code != http.StatusServiceUnavailable {
			t.Errorf("GET %s: %d %.300s", path, code, body)
			continue
		}
		// A listing of runs leaves their timelines out: null, documented
		// in api.Run.
		listing := !strings.HasPrefix(path, "/api/v1/runs/")
		for _, p := range nullLists(v, "", listing) {
			t.Errorf("GET %s: %s is null, want a list", path, p)
		}
		for _, p := range emptyLists(v) {
			emptySeen[p] = true
		}
	}
	// The fixture must have empty lists for the check to mean anything.
	for _, want := range []string{"runs", "reasons"} {
		if !emptySeen[want] {
			t.Errorf("no answer had an empty %q list; the fixture no longer covers it", want)
		}
	}
}

// listKeys are the keys whose values are lists in the API's answers.
var listKeys = map[string]bool{
	"slos": true, "hypotheses": true, "experiments": true, "runs": true, "reasons": true,
	"windows": true, "alerts": true, "probes": true, "timeline": true,
}

// nullLists returns the paths of list keys whose value is null in v, a
// decoded JSON answer; timelines are skipped in run listings.
func nullLists(v any, at string, listing bool) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if x == nil && listKeys[k] && !(k == "timeline" && listing) {
				out = append(out, at+k)
			}
			out = append(out, nullLists(x, at+k+".", listing)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, nullLists(x, at, listing)...)
		}
	}
	return out
}

// emptyLists returns the keys (without their paths) of lists that are [].
func emptyLists(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if l, ok := x.([]any); ok && len(l) == 0 && listKeys[k] {
				out = append(out, k)
			}
			out = append(out, emptyLists(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, emptyLists(x)...)
		}
	}
	return out
}

type emptyQuerier struct{}

func (emptyQuerier) Query(context.Context, string, time.Time) (model.Value, error) {
	return model.Vector{}, nil
}

func (emptyQuerier) QueryRange(context.Context, string, evaluator.Range) (model.Value, error) {
	return model.Matrix{}, nil
}

// TestReloadAnswers: POST /-/reload answers 200 when the definitions are
// taken, and 422 with the reason, JSON, when they are refused (the reload
// coordinator's error, e.g. a set that defines nothing).
func TestReloadAnswers(t *testing.T) {
	fx := newFixture(t)
	empty := "the new definitions define no SLO, hypothesis or experiment, as an emptied or truncated file would; " +
		"... set reload.allow-empty to true (flag --reload.allow-empty, variable SLOGATE_RELOAD_ALLOW_EMPTY)\n" +
		"defs.yaml:1:1: warning: the file holds no definitions"
	tests := []struct {
		name      string
		err       error
		wantCode  int
		wantError string
	}{
		{name: "taken", wantCode: http.StatusOK},
		{name: "errors in the definitions", err: errors.New("defs.yaml:3:14: error: spec.objective: expected a number, got \"x\""),
			wantCode: http.StatusUnprocessableEntity, wantError: "definitions rejected, the previous ones stay in force: defs.yaml:3:14: error: spec.objective: expected a number, got \"x\""},
		{name: "nothing defined", err: errors.New(empty),
			wantCode: http.StatusUnprocessableEntity, wantError: "definitions rejected, the previous ones stay in force: " + empty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := New(Options{Evaluator: fx.ev, Runs: fx.runs, Gatherer: prometheus.NewRegistry(),
				Reload: func(context.Context) error { return tt.err }})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/-/reload", nil))
			if rec.Code != tt.wantCode || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("POST /-/reload: %d %s %s, want %d and JSON", rec.Code, rec.Header().Get("Content-Type"), rec.Body, tt.wantCode)
			}
			var body struct{ Status, Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if tt.wantError == "" {
				if body.Status != "reloaded" || body.Error != "" {
					t.Errorf("POST /-/reload: %s, want {\"status\": \"reloaded\"}", rec.Body)
				}
				return
			}
			if body.Error != tt.wantError {
				t.Errorf("error %q\nwant  %q", body.Error, tt.wantError)
			}
		})
	}
}
