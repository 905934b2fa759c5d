package testenv

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Target is a synthetic scrape target: its own registry, served at
// /metrics on a loopback port, holding only the metrics the test creates.
// The test sets the values Prometheus is going to scrape.
type Target struct {
	t       testing.TB
	reg     *prometheus.Registry
	srv     *httptest.Server
	failing atomic.Bool

	mu   sync.Mutex
	vecs map[string]registered
}

type registered struct {
	kind       string
	labelNames []string
	vec        prometheus.Collector
}

// NewTarget starts a target on 127.0.0.1; it is closed when the test ends.
func NewTarget(t testing.TB) *Target {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: target: %v", err)
	}
	tg := &Target{t: t, reg: prometheus.NewRegistry(), vecs: map[string]registered{}}
	metrics := promhttp.HandlerFor(tg.reg, promhttp.HandlerOpts{})
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		if tg.failing.Load() {
			http.Error(w, "target failing on purpose", http.StatusServiceUnavailable)
			return
		}
		metrics.ServeHTTP(w, r)
	})
	tg.srv = httptest.NewUnstartedServer(mux)
	tg.srv.Listener.Close()
	tg.srv.Listener = l
	tg.srv.Start()
	t.Cleanup(tg.srv.Close)
	return tg
}

// Addr is the target's host:port, for a scrape config.
func (tg *Target) Addr() string { return tg.srv.Listener.Addr().String() }

// URL is the target's metrics URL.
func (tg *Target) URL() string { return tg.srv.URL + "/metrics" }

// ScrapeTarget returns the target as one of PromOptions.Targets.
func (tg *Target) ScrapeTarget(job string) ScrapeTarget {
	return ScrapeTarget{Job: job, Addr: tg.Addr()}
}

// Registry is the target's registry, for collectors the helpers below do
// not cover.
func (tg *Target) Registry() *prometheus.Registry { return tg.reg }

// SetFailing makes scrapes answer 503 (up == 0) while failing is true.
func (tg *Target) SetFailing(failing bool) { tg.failing.Store(failing) }

// Counter returns the counter vector name with the given label names,
// creating and registering it the first time. Asking again for the same
// name returns the same vector; other label names fail the test.
func (tg *Target) Counter(name string, labelNames ...string) *prometheus.CounterVec {
	tg.t.Helper()
	return tg.vec("counter", name, labelNames, func() prometheus.Collector {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: "testenv counter " + name}, labelNames)
	}).(*prometheus.CounterVec)
}

// Gauge is Counter for a gauge vector.
func (tg *Target) Gauge(name string, labelNames ...string) *prometheus.GaugeVec {
	tg.t.Helper()
	return tg.vec("gauge", name, labelNames, func() prometheus.Collector {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: "testenv gauge " + name}, labelNames)
	}).(*prometheus.GaugeVec)
}

// Histogram is Counter for a classic histogram vector with the given bucket
// upper bounds (nil: prometheus.DefBuckets). The buckets of the first call
// win.
func (tg *Target) Histogram(name string, buckets []float64, labelNames ...string) *prometheus.HistogramVec {
	tg.t.Helper()
	return tg.vec("histogram", name, labelNames, func() prometheus.Collector {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: "testenv histogram " + name, Buckets: buckets}, labelNames)
	}).(*prometheus.HistogramVec)
}

func (tg *Target) vec(kind, name string, labelNames []string, create func() prometheus.Collector) prometheus.Collector {
	tg.t.Helper()
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if r, ok := tg.vecs[name]; ok {
		if r.kind != kind || !slices.Equal(r.labelNames, labelNames) {
			tg.t.Fatalf("testenv: target: %s %s%v asked for, but it is a %s with labels %v", kind, name, labelNames, r.kind, r.labelNames)
		}
		return r.vec
	}
	c := create()
	if err := tg.reg.Register(c); err != nil {
		tg.t.Fatalf("testenv: target: register %s %s: %v", kind, name, err)
	}
	tg.vecs[name] = registered{kind: kind, labelNames: slices.Clone(labelNames), vec: c}
	return c
}

// Traffic is a synthetic service's requests on a Target:
// http_requests_total{code="200"} and {code="500"}, both present from the
// start, growing by RPS requests a second in steps of 100 ms, a settable
// share of them failing.
type Traffic struct {
	errShare atomic.Uint64 // math.Float64bits of the share
}

// Traffic starts rps requests a second on the target's http_requests_total
// until the test ends.
func (tg *Target) Traffic(rps float64) *Traffic {
	tg.t.Helper()
	requests := tg.Counter("http_requests_total", "code")
	ok, bad := requests.WithLabelValues("200"), requests.WithLabelValues("500")
	tr := &Traffic{}
	const tick = 100 * time.Millisecond
	perTick := rps * tick.Seconds()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				e := tr.ErrorShare()
				bad.Add(perTick * e)
				ok.Add(perTick * (1 - e))
			}
		}
	}()
	tg.t.Cleanup(func() { cancel(); <-done })
	return tr
}

// SetErrorShare makes share (0 to 1) of the requests fail from now on.
func (tr *Traffic) SetErrorShare(share float64) { tr.errShare.Store(math.Float64bits(share)) }

// ErrorShare is the share of requests failing now.
func (tr *Traffic) ErrorShare() float64 { return math.Float64frombits(tr.errShare.Load()) }
