package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/slogate/slogate/internal/testenv"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

var t0 = time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t0.Add(d)
}

// fakeAM is a small stand-in for Alertmanager's POST /api/v2/alerts, for
// unit tests: it records the requests and answers with the statuses it is
// told, then 200.
type fakeAM struct {
	srv *httptest.Server

	mu       sync.Mutex
	statuses []int // answered first, one per request
	down     bool  // answer 503 to everything while set
	requests []fakeRequest
}

type fakeRequest struct {
	method, path, contentType string
	raw                       []byte
	alerts                    []postableAlert
}

func newFakeAM(t *testing.T, statuses ...int) *fakeAM {
	t.Helper()
	f := &fakeAM{statuses: statuses}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAM) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	status := http.StatusOK
	switch {
	case f.down:
		status = http.StatusServiceUnavailable
	case len(f.statuses) > 0:
		status, f.statuses = f.statuses[0], f.statuses[1:]
	}
	if status == http.StatusOK {
		req := fakeRequest{method: r.Method, path: r.URL.Path, contentType: r.Header.Get("Content-Type"), raw: raw}
		if err := json.Unmarshal(raw, &req.alerts); err != nil {
			status = http.StatusBadRequest
		} else {
			f.requests = append(f.requests, req)
		}
	}
	f.mu.Unlock()
	w.WriteHeader(status)
	_, _ = io.WriteString(w, http.StatusText(status))
}

func (f *fakeAM) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// received returns the accepted alerts in arrival order.
func (f *fakeAM) received() []postableAlert {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []postableAlert
	for _, r := range f.requests {
		out = append(out, r.alerts...)
	}
	return out
}

func (f *fakeAM) reqs() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

// newTestNotifier builds a notifier with short retries and its own
// registry.
func newTestNotifier(t *testing.T, opts Options) (*Notifier, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	n, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	n.backoffMin, n.backoffMax = 10*time.Millisecond, 50*time.Millisecond
	return n, reg
}

// run starts Run and returns a function that stops it and waits for it;
// the test's cleanup calls it too.
func run(t *testing.T, n *Notifier) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually fails the test unless cond holds within timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, timeout, what, func() error {
		if !cond() {
			return errors.New("not yet")
		}
		return nil
	})
}

// notificationLogged waits until Alertmanager's notification log has the
// notification of a: Alertmanager writes it after the webhook answered,
// and needs it to notify the resolve later (after a restart too).
func notificationLogged(t *testing.T, am *testenv.Alertmanager, a Alert) {
	t.Helper()
	testenv.Eventually(t, amWait, "the notification log entry of "+a.Labels["alertname"]+" "+fmt.Sprint(a.Labels), func() error {
		ok, err := am.NotificationLogged(a.Labels)
		if err == nil && !ok {
			err = errors.New("no entry for the alert's group")
		}
		return err
	})
}

func alert(name string, kv ...string) Alert {
	a := Alert{Labels: map[string]string{"alertname": name}, Annotations: map[string]string{"summary": name + " summary"}}
	for i := 0; i+1 < len(kv); i += 2 {
		a.Labels[kv[i]] = kv[i+1]
	}
	return a
}

func counter(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}
