package promapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
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
	for range 8 {
		if _, err := c.Query(context.Background(), "up", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d warning log lines for 8 answers with the same warnings, want 1", len(entries))
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

// hugeVector writes a successful vector answer of about size bytes, one
// sample after the other, without holding it in memory.
func hugeVector(w http.ResponseWriter, size int64, announce bool) {
	const head, tail = `{"status":"success","data":{"resultType":"vector","result":[`, `]}}`
	sample := []byte(`{"metric":{"__name__":"up","instance":"padding-padding-padding-padding"},"value":[1700000000,"1"]},`)
	n := (size - int64(len(head)+len(tail))) / int64(len(sample))
	w.Header().Set("Content-Type", "application/json")
	if announce {
		w.Header().Set("Content-Length", fmt.Sprint(int64(len(head)+len(tail))+n*int64(len(sample))-1))
	}
	_, _ = io.WriteString(w, head)
	for i := int64(0); i < n; i++ {
		s := sample
		if i == n-1 {
			s = s[:len(s)-1] // no comma after the last one
		}
		if _, err := w.Write(s); err != nil {
			return // the client gave up, as it should
		}
	}
	_, _ = io.WriteString(w, tail)
}

// TestLargeAnswerRefused: an answer above MaxResponseBytes is a bad_result
// that names the bound, whether its length is announced or not, and the
// client holds no more than about the bound of it; an answer below the
// bound is read as usual.
func TestLargeAnswerRefused(t *testing.T) {
	const limit = 1 << 20
	cases := []struct {
		name     string
		size     int64
		announce bool
		ok       bool
	}{
		{"100 MB, announced", 100 << 20, true, false},
		{"100 MB, chunked", 100 << 20, false, false},
		{"just above the bound, chunked", limit + 200, false, false},
		{"below the bound, announced", limit / 2, true, true},
		{"below the bound, chunked", limit - 200, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hugeVector(w, tc.size, tc.announce)
			}))
			defer srv.Close()
			c, err := New(Options{URL: srv.URL, Timeout: time.Minute, MaxResponseBytes: limit})
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			v, err := c.Query(context.Background(), "up", time.Now())
			runtime.ReadMemStats(&after)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if vec, _ := v.(model.Vector); len(vec) == 0 {
					t.Fatalf("answer %v, want a vector of samples", v)
				}
				return
			}
			var qe *query.Error
			if !errors.As(err, &qe) || qe.Reason != query.ReasonBadResult {
				t.Fatalf("err %v, want a bad_result query.Error", err)
			}
			if !strings.Contains(err.Error(), "prometheus.max-response-bytes") {
				t.Errorf("error does not name the bound: %v", err)
			}
			// Reading up to the bound may double a buffer a few times (and
			// the race detector and the test server allocate too);
			// reading the answer whole would allocate 100 MB and more.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 20*limit {
				t.Errorf("the client allocated %d bytes for a refused answer, want at most %d", alloc, 20*limit)
			}
		})
	}
}

func TestParseRetention(t *testing.T) {
	for _, tt := range []struct {
		in string
		d  time.Duration
		ok bool
	}{
		{"15d", 15 * 24 * time.Hour, true},
		{"15d or 512MiB", 15 * 24 * time.Hour, true},
		{"512MiB", 0, false},
		{"", 0, false},
		{"1y", 365 * 24 * time.Hour, true},
	} {
		d, ok, err := parseRetention(tt.in)
		if err != nil || d != tt.d || ok != tt.ok {
			t.Errorf("parseRetention(%q) = %s %v %v, want %s %v", tt.in, d, ok, err, tt.d, tt.ok)
		}
	}
}
