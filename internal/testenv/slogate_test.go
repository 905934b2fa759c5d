package testenv_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

const slogateDefinitions = `apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: app-availability}
spec:
  service: app
  objective: 99
  window: 1d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="app",code="500"}[{{.window}}]))
      total: sum(rate(http_requests_total{job="app"}[{{.window}}]))
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: app-steady}
spec:
  probes:
    - name: error-rate
      query: sum(rate(http_requests_total{job="app",code="500"}[5s])) / sum(rate(http_requests_total{job="app"}[5s]))
      tolerance: "< 0.1"
---
apiVersion: slogate.dev/v1
kind: Experiment
metadata: {name: break-app}
spec: {hypotheses: [app-steady], recovery: 5s}
`

// StartSlogate runs the real `slogate serve` against a real Prometheus:
// ready when it returns, the token required and sent, metrics read, and
// the same server stopped, killed and started again on its port and
// storage.
func TestStartSlogate(t *testing.T) {
	t.Parallel()
	target := testenv.NewTarget(t)
	traffic := target.Traffic(200)
	prom := testenv.StartPrometheus(t, testenv.PromOptions{Targets: []testenv.ScrapeTarget{target.ScrapeTarget("app")}})
	srv := testenv.StartSlogate(t, testenv.SlogateOptions{
		PrometheusURL: prom.URL(), Definitions: slogateDefinitions, Token: "t0ken", MinRange: 5 * time.Second,
	})
	if !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") || srv.Exited() {
		t.Fatalf("URL %s, exited %v", srv.URL(), srv.Exited())
	}
	if code := srv.Do(http.MethodGet, "/ping", nil, false, nil); code != http.StatusOK {
		t.Fatalf("/ping after StartSlogate: %d", code)
	}
	for _, arg := range []string{"serve", "--definitions=" + srv.DefinitionsPath(), "--web.api-token-file=" + srv.TokenPath(), "--evaluation.interval=1s"} {
		if !slices.Contains(srv.Args(), arg) {
			t.Errorf("command line %q lacks %q", srv.Args(), arg)
		}
	}

	gate := func() int { return srv.Do(http.MethodGet, "/api/v1/experiments/break-app/gate", nil, false, nil) }
	srv.Eventually(60*time.Second, "the gate to open", func() error {
		if code := gate(); code != http.StatusOK {
			return errors.New("gate answers " + http.StatusText(code))
		}
		return nil
	})
	var answer struct{ ID, Error string }
	if code := srv.Do(http.MethodPost, "/api/v1/experiments/break-app/runs", nil, false, &answer); code != http.StatusUnauthorized {
		t.Errorf("start without the token: %d %+v, want 401", code, answer)
	}
	if code := srv.Do(http.MethodPost, "/api/v1/experiments/break-app/runs", nil, true, &answer); code != http.StatusCreated || answer.ID == "" {
		t.Fatalf("start with the token: %d %+v, want 201", code, answer)
	}

	before, err := srv.Evaluations()
	if err != nil {
		t.Fatal(err)
	}
	srv.WaitEvaluations(2, 30*time.Second)
	if after, _ := srv.Evaluations(); after < before+2 {
		t.Errorf("evaluations %v after waiting for 2 more than %v", after, before)
	}
	if sum, n, err := srv.MetricSum("slogate_run_active"); err != nil || n != 1 || sum != 1 {
		t.Errorf("slogate_run_active: sum %v over %d series (%v), want the one run", sum, n, err)
	}

	// Kill and start again: same URL, the run still there.
	url, pid := srv.URL(), srv.Pid()
	srv.Kill()
	if !srv.Exited() {
		t.Fatal("Exited is false after Kill")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists after Kill: %v", pid, err)
	}
	srv.Start()
	if srv.URL() != url || srv.Pid() == pid {
		t.Errorf("after Kill and Start: URL %s pid %d, want %s and a new process", srv.URL(), srv.Pid(), url)
	}
	var run struct{ State string }
	if code := srv.Do(http.MethodGet, "/api/v1/runs/"+answer.ID, nil, false, &run); code != http.StatusOK || run.State != "running" {
		t.Errorf("the run after kill -9: %d %+v, want it running", code, run)
	}

	// SIGHUP reloads; the same command line run by hand refuses to start
	// on a port in use.
	if err := srv.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := srv.Command(ctx).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Errorf("a second serve on the same port and storage: %v, want it to fail\n%s", err, out)
	}

	traffic.SetErrorShare(1)
	srv.Eventually(60*time.Second, "the run to be aborted", func() error {
		srv.Do(http.MethodGet, "/api/v1/runs/"+answer.ID, nil, false, &run)
		if run.State != "aborted" {
			return errors.New("run " + run.State)
		}
		return nil
	})
	srv.Restart()
	srv.Stop()
	if !srv.Exited() {
		t.Fatal("Exited is false after Stop")
	}
	if b, err := os.ReadFile(srv.LogPath()); err != nil || strings.Count(string(b), "=== testenv: starting") != 3 {
		t.Errorf("log %s: want the three starts in it (%v)", srv.LogPath(), err)
	}
}
