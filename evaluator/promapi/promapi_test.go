package promapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/slogate/slogate/query"
)

// TestBackendTextIsBounded: a 5 MB error message from the backend comes out
// of the client cut to about a KiB, still classified; warnings are cut and
// logged once, not on every query.
func TestBackendTextIsBounded(t *testing.T) {
	huge := strings.Repeat("é", 2_500_000) // 5 MB, two bytes a character
	var warn atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if warn.Load() {
			_ = json.NewEncoder(w).Encode(map[string]any{
				"status": "success", "warnings": []string{huge, "second", "3", "4", "5", "6", "7"},
				"data": map[string]any{"resultType": "vector", "result": []any{}},
			})
			return
		}
		w.WriteHeader(http.StatusUnprocessableEntity)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "error", "errorType": "execution", "error": huge})
	}))
	defer srv.Close()
	core, logs := observer.New(zap.WarnLevel)
	c, err := New(Options{URL: srv.URL, Timeout: 10 * time.Second, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}

	_, err = c.Query(context.Background(), "up", time.Now())
	var qe *query.Error
	if !errors.As(err, &qe) || qe.Reason != query.ReasonServer {
		t.Fatalf("err %v, want a server_error query.Error", err)
	}
	if n := len(err.Error()); n > 2*query.MaxMessage {
		t.Fatalf("error text is %d bytes, want about %d", n, query.MaxMessage)
	}
	if !strings.Contains(err.Error(), "more bytes cut]") {
		t.Errorf("error does not say it was cut: %.200s", err.Error())
	}

	warn.Store(true)
	for range 50 {
		if _, err := c.Query(context.Background(), "up", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d warning log lines for 50 answers with the same warnings, want 1", len(entries))
	}
	size := 0
	for _, f := range entries[0].Context {
		if f.Key == "warnings" {
			b, _ := json.Marshal(f.Interface)
			size = len(b)
		}
		if f.Key == "more" && f.Integer != 2 {
			t.Errorf("more = %d, want 2 (7 warnings, 5 logged)", f.Integer)
		}
	}
	if size == 0 || size > 4*query.MaxMessage {
		t.Errorf("logged warnings are %d bytes, want bounded", size)
	}
}

func TestBound(t *testing.T) {
	if got := query.Bound("short"); got != "short" {
		t.Errorf("Bound(short) = %q", got)
	}
	s := strings.Repeat("ü", 600) // 1200 bytes
	got := query.Bound(s)
	if !strings.HasSuffix(got, "… [176 more bytes cut]") || !strings.HasPrefix(got, strings.Repeat("ü", 512)) {
		t.Errorf("Bound cut %q badly", got)
	}
}
