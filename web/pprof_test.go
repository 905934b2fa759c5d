package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPprof: Go's profiles are served only when web.enable-pprof is on.
func TestPprof(t *testing.T) {
	fx := newFixture(t)
	for _, on := range []bool{false, true} {
		srv, err := New(Options{Evaluator: fx.ev, Runs: fx.runs, Gatherer: prometheus.NewRegistry(), EnablePprof: on})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/heap?debug=1", nil))
		switch {
		case on && (rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "heap profile")):
			t.Errorf("enabled: /debug/pprof/heap answered %d %.80q, want the heap profile", rec.Code, rec.Body.String())
		case !on && rec.Code != http.StatusNotFound:
			t.Errorf("disabled: /debug/pprof/heap answered %d, want 404", rec.Code)
		}
	}
}
