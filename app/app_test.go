package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/config"
	"github.com/slogate/slogate/evaluator/promapi"
	"github.com/slogate/slogate/internal/testenv"
	"github.com/slogate/slogate/query"
	"github.com/slogate/slogate/slo"
)

const definitions = `apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: shop-availability}
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
      query: sum(rate(http_requests_total{code="500"}[1m])) / sum(rate(http_requests_total[1m]))
      tolerance: "< 0.1"
---
apiVersion: slogate.dev/v1
kind: Experiment
metadata: {name: break-shop}
spec:
  hypotheses: [shop-steady]
  slos: [shop-availability]
  recovery: 1m
`

const interval = 30 * time.Second

// start runs an App on q with a fake clock and the definitions above and
// returns its base URL.
func start(t *testing.T, q query.Querier, clock *clockwork.FakeClock) (*App, string) {
	t.Helper()
	return startWith(t, q, clock, func() (*slo.Set, slo.Diagnostics) { return slo.LoadBytes("defs.yaml", []byte(definitions)) })
}

func startWith(t *testing.T, q query.Querier, clock *clockwork.FakeClock, load func() (*slo.Set, slo.Diagnostics)) (*App, string) {
	t.Helper()
	return startWithConfig(t, q, clock, load, func(*config.Config) {})
}

// startWithConfig is startWith with settings changed by configure.
func startWithConfig(t *testing.T, q query.Querier, clock *clockwork.FakeClock, load func() (*slo.Set, slo.Diagnostics), configure func(*config.Config)) (*App, string) {
	t.Helper()
	cfg := config.Default()
	cfg.Storage.Path = t.TempDir()
	cfg.Evaluation.Interval = interval
	cfg.Prometheus.Timeout = 10 * time.Second
	configure(cfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{
		Config: cfg, Querier: q, Listener: l,
		Load: load, Now: clock.Now,
		After: clock.After,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	t.Cleanup(func() {
		a.Stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return a, a.BaseURL()
}

// get answers the status code and the "status" field of a JSON answer.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var v struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal(body, &v)
	return resp.StatusCode, v.Status
}

// stuckQuerier never answers, whatever its context says: a deadlocked
// evaluation loop, as a bug would make it. Release lets it go.
type stuckQuerier struct {
	entered     chan struct{}
	enteredOnce sync.Once
	release     chan struct{}
	releaseOnce sync.Once
}

func (q *stuckQuerier) unstick() { q.releaseOnce.Do(func() { close(q.release) }) }

func (q *stuckQuerier) Query(context.Context, string, time.Time) (model.Value, error) {
	q.enteredOnce.Do(func() { close(q.entered) })
	<-q.release
	return model.Vector{}, nil
}

func (q *stuckQuerier) QueryRange(context.Context, string, query.Range) (model.Value, error) {
	q.enteredOnce.Do(func() { close(q.entered) })
	<-q.release
	return model.Matrix{}, nil
}

func TestHealthFailsWhileTheLoopIsStuck(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Date(2026, 3, 1, 12, 0, 7, 0, time.UTC))
	q := &stuckQuerier{entered: make(chan struct{}), release: make(chan struct{})}
	_, base := start(t, q, clock)
	t.Cleanup(q.unstick) // runs before start's cleanup: else a failure would hang in Stop
	<-q.entered          // the first cycle hangs in its first query

	if code, status := get(t, base+"/health"); code != http.StatusOK {
		t.Fatalf("/health right after the loop beat: %d %q, want 200", code, status)
	}
	threshold := livenessThreshold(interval, 10*time.Second)
	clock.Advance(threshold)
	if code, status := get(t, base+"/health"); code != http.StatusOK {
		t.Fatalf("/health %s after the last beat (the threshold): %d %q, want 200", threshold, code, status)
	}
	clock.Advance(time.Second)
	code, status := get(t, base+"/health")
	if code != http.StatusServiceUnavailable || status != "evaluation loop stuck" {
		t.Fatalf("/health with the loop stuck for %s: %d %q, want 503 \"evaluation loop stuck\"", threshold+time.Second, code, status)
	}
	if code, _ := get(t, base+"/-/healthy"); code != http.StatusServiceUnavailable {
		t.Fatalf("/-/healthy with the loop stuck: %d, want 503 like /health", code)
	}

	// Once the loop moves again, it is alive again.
	q.unstick()
	testenv.Eventually(t, time.Minute, "/health after the loop got unstuck", func() error {
		if code, status := get(t, base+"/health"); code != http.StatusOK {
			return fmt.Errorf("%d %q", code, status)
		}
		return nil
	})
}

func TestHealthStaysAliveWhilePrometheusIsDown(t *testing.T) {
	// A real Prometheus client against a port where nothing listens.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + l.Addr().String()
	l.Close()
	q, err := promapi.New(promapi.Options{URL: deadURL, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Date(2026, 3, 1, 23, 59, 41, 0, time.UTC)
	clock := clockwork.NewFakeClockAt(begin)
	a, base := start(t, q, clock)

	// Step the clock one interval at a time, each time once the loop has
	// finished its cycle and waits for the next, over three times the
	// liveness threshold.
	threshold := livenessThreshold(interval, 10*time.Second)
	for elapsed := time.Duration(0); elapsed <= 3*threshold; elapsed += interval {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := clock.BlockUntilContext(ctx, 1)
		cancel()
		if err != nil {
			t.Fatalf("the evaluation loop did not come back to wait for its next cycle at %s: %v", clock.Now(), err)
		}
		if code, status := get(t, base+"/health"); code != http.StatusOK {
			t.Fatalf("/health %s into the outage: %d %q, want 200 (a dead Prometheus never fails liveness)", elapsed, code, status)
		}
		if code, status := get(t, base+"/api/v1/experiments/break-shop/gate"); code != http.StatusServiceUnavailable || status != "unknown" {
			t.Fatalf("gate %s into the outage: %d %q, want 503 unknown", elapsed, code, status)
		}
		clock.Advance(interval)
	}
	last, lastGood := a.Evaluator().Snapshot().LastCycle()
	// The last step's cycle may still be running: the one before it is done.
	if want := begin.Add(3*threshold - interval); last.Before(want) {
		t.Errorf("last cycle at %s, want the loop to have kept cycling past %s", last, want)
	}
	if !lastGood.IsZero() {
		t.Errorf("a cycle at %s counts as good although every query failed", lastGood)
	}
}

// emptyQuerier answers every query with no data, at once.
type emptyQuerier struct{}

func (emptyQuerier) Query(context.Context, string, time.Time) (model.Value, error) {
	return model.Vector{}, nil
}

func (emptyQuerier) QueryRange(context.Context, string, query.Range) (model.Value, error) {
	return model.Matrix{}, nil
}

func TestReloadCoordinatorOwnsTheReloadMetrics(t *testing.T) {
	var mu sync.Mutex
	current := definitions
	setDefinitions := func(s string) { mu.Lock(); current = s; mu.Unlock() }
	load := func() (*slo.Set, slo.Diagnostics) {
		mu.Lock()
		defer mu.Unlock()
		return slo.LoadBytes("defs.yaml", []byte(current))
	}
	began := time.Date(2026, 7, 31, 23, 0, 0, 0, time.UTC)
	clock := clockwork.NewFakeClockAt(began)
	a, _ := startWith(t, emptyQuerier{}, clock, load)
	reg := a.opts.Registry

	metric := func(name string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no metric %s", name)
		return 0
	}
	if ok, at := metric("slogate_config_last_reload_successful"), metric("slogate_config_last_reload_success_timestamp_seconds"); ok != 1 || at != float64(began.Unix()) {
		t.Fatalf("after the start: successful=%v timestamp=%v, want 1 and %d", ok, at, began.Unix())
	}

	clock.Advance(time.Hour)
	setDefinitions(definitions + "---\napiVersion: slogate.dev/v1\nkind: SLO\nmetadata: {name: broken}\nspec: {objective: 120}\n")
	if err := a.Reload(context.Background()); err == nil {
		t.Fatal("a reload with an invalid SLO succeeded")
	}
	if ok, at := metric("slogate_config_last_reload_successful"), metric("slogate_config_last_reload_success_timestamp_seconds"); ok != 0 || at != float64(began.Unix()) {
		t.Fatalf("after a rejected reload: successful=%v timestamp=%v, want 0 and still %d", ok, at, began.Unix())
	}
	if defs := a.Evaluator().Snapshot().Definitions(); len(defs.SLOs) != 1 || defs.SLOs[0].Name != "shop-availability" {
		t.Fatalf("a rejected reload changed the definitions in force: %d SLOs", len(defs.SLOs))
	}

	clock.Advance(time.Hour)
	setDefinitions(strings.Replace(definitions, "objective: 99", "objective: 99.5", 1))
	if err := a.Reload(context.Background()); err != nil {
		t.Fatalf("a valid reload was rejected: %v", err)
	}
	if ok, at := metric("slogate_config_last_reload_successful"), metric("slogate_config_last_reload_success_timestamp_seconds"); ok != 1 || at != float64(began.Add(2*time.Hour).Unix()) {
		t.Fatalf("after a good reload: successful=%v timestamp=%v, want 1 and %d", ok, at, began.Add(2*time.Hour).Unix())
	}
	if got := a.Evaluator().Snapshot().Definitions().SLOs[0].Objective; got != 99.5 {
		t.Fatalf("objective after the reload: %v, want 99.5", got)
	}
}

// TestStaleAfter: the gate's data may be one interval, the spread's delay
// and one query timeout old, never more than two and a half intervals.
func TestStaleAfter(t *testing.T) {
	for _, tc := range []struct {
		interval, timeout, want time.Duration
	}{
		{30 * time.Second, 10 * time.Second, 47500 * time.Millisecond}, // the defaults
		{5 * time.Second, 2 * time.Second, 8250 * time.Millisecond},
		{time.Second, 2 * time.Second, 2500 * time.Millisecond}, // a long timeout: 2.5 intervals
		{time.Minute, 5 * time.Second, 80 * time.Second},
	} {
		if got := staleAfter(tc.interval, tc.timeout); got != tc.want {
			t.Errorf("staleAfter(%s, %s) = %s, want %s", tc.interval, tc.timeout, got, tc.want)
		}
	}
}

// gauge reads the value of a gauge without labels from a's registry.
func gauge(t *testing.T, a *App, name string) float64 {
	t.Helper()
	mfs, err := a.opts.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// postReload asks for a reload over HTTP and answers the status code and
// the "error" field.
func postReload(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Post(base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("POST /-/reload: %d, not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, body.Error
}

// TestReloadRefusesAnEmptySet: a definitions file rewritten to nothing, or
// to comments only, is refused on reload (by App.Reload as by POST
// /-/reload): the definitions in force stay, the reload metric says 0, and
// the error says why and how to allow it. reload.allow-empty lets it
// through.
func TestReloadRefusesAnEmptySet(t *testing.T) {
	empties := []struct {
		name    string
		content string
		warning string // the loader's warning, passed on in the error
	}{
		{name: "empty file", content: ""},
		{name: "comments only", content: "# every definition moved to team-b/\n# (see README)\n", warning: "defs.yaml:1:1: warning: the file holds no definitions"},
		{name: "comments and document markers", content: "# truncated\n---\n---\n...\n", warning: "defs.yaml:1:1: warning: the file holds no definitions"},
	}
	write := func(t *testing.T, path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	startOn := func(t *testing.T, allowEmpty bool) (*App, string, string) {
		path := filepath.Join(t.TempDir(), "defs.yaml")
		write(t, path, definitions)
		clock := clockwork.NewFakeClockAt(time.Date(2026, 7, 31, 23, 0, 0, 0, time.UTC))
		load := func() (*slo.Set, slo.Diagnostics) { return slo.LoadWith(slo.LoadOptions{}, path) }
		a, base := startWithConfig(t, emptyQuerier{}, clock, load, func(c *config.Config) { c.Reload.AllowEmpty = allowEmpty })
		return a, base, path
	}
	inForce := func(a *App) string {
		d := a.Evaluator().Snapshot().Definitions()
		return fmt.Sprintf("%d SLOs, %d hypotheses, %d experiments", len(d.SLOs), len(d.Hypotheses), len(d.Experiments))
	}
	const all = "1 SLOs, 1 hypotheses, 1 experiments"
	checkRefusal := func(t *testing.T, a *App, msg, warning string) {
		t.Helper()
		for _, want := range []string{"define no SLO, hypothesis or experiment", "reload.allow-empty", "--reload.allow-empty", "SLOGATE_RELOAD_ALLOW_EMPTY", warning} {
			if !strings.Contains(msg, want) {
				t.Errorf("the refusal %q does not say %q", msg, want)
			}
		}
		if got := inForce(a); got != all {
			t.Errorf("after a refused reload: %s in force, want the previous %s", got, all)
		}
		if ok := gauge(t, a, "slogate_config_last_reload_successful"); ok != 0 {
			t.Errorf("slogate_config_last_reload_successful = %v after a refused reload, want 0", ok)
		}
	}

	a, base, path := startOn(t, false)
	for _, e := range empties {
		t.Run(e.name, func(t *testing.T) {
			write(t, path, e.content)
			err := a.Reload(context.Background())
			if !errors.Is(err, ErrNothingDefined) {
				t.Fatalf("Reload: %v, want ErrNothingDefined", err)
			}
			checkRefusal(t, a, err.Error(), e.warning)

			code, msg := postReload(t, base)
			if code != http.StatusUnprocessableEntity {
				t.Fatalf("POST /-/reload: %d %q, want 422", code, msg)
			}
			checkRefusal(t, a, msg, e.warning)

			// The definitions back: accepted, and the metric says so.
			write(t, path, definitions)
			if code, msg := postReload(t, base); code != http.StatusOK {
				t.Fatalf("POST /-/reload of the definitions again: %d %q", code, msg)
			}
			if ok := gauge(t, a, "slogate_config_last_reload_successful"); ok != 1 {
				t.Errorf("slogate_config_last_reload_successful = %v after a good reload, want 1", ok)
			}
		})
	}

	t.Run("allowed by reload.allow-empty", func(t *testing.T) {
		a, base, path := startOn(t, true)
		write(t, path, "# nothing any more\n")
		if code, msg := postReload(t, base); code != http.StatusOK {
			t.Fatalf("POST /-/reload with reload.allow-empty: %d %q, want 200", code, msg)
		}
		if got := inForce(a); got != "0 SLOs, 0 hypotheses, 0 experiments" {
			t.Errorf("after an allowed empty reload: %s in force, want nothing", got)
		}
		if ok := gauge(t, a, "slogate_config_last_reload_successful"); ok != 1 {
			t.Errorf("slogate_config_last_reload_successful = %v, want 1", ok)
		}
	})

	t.Run("started empty", func(t *testing.T) {
		// A fresh install starts with nothing defined; reloading nothing
		// again drops nothing, so it is not refused either.
		path := filepath.Join(t.TempDir(), "defs.yaml")
		write(t, path, "# to be written\n")
		load := func() (*slo.Set, slo.Diagnostics) { return slo.LoadWith(slo.LoadOptions{}, path) }
		clock := clockwork.NewFakeClockAt(time.Date(2026, 7, 31, 23, 0, 0, 0, time.UTC))
		a, base := startWith(t, emptyQuerier{}, clock, load)
		if code, msg := postReload(t, base); code != http.StatusOK {
			t.Fatalf("POST /-/reload, empty in force and on disk: %d %q, want 200", code, msg)
		}
		write(t, path, definitions)
		if code, msg := postReload(t, base); code != http.StatusOK {
			t.Fatalf("POST /-/reload of the first definitions: %d %q, want 200", code, msg)
		}
		if got := inForce(a); got != all {
			t.Errorf("after the first definitions: %s in force, want %s", got, all)
		}
	})
}
