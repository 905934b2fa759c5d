package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// TestRunLifecycle: a run that passes, a run aborted by its hypothesis with
// the chaos command really terminated, and then a gate closed by the spent
// error budget. Mutating calls need the API token.
func TestRunLifecycle(t *testing.T) {
	shop := startShop(t)
	am := testenv.StartAlertmanager(t, testenv.AMOptions{})
	srv := startServer(t, serverOptions{promURL: shop.prom.URL(), amURLs: []string{am.URL()}})
	srv.waitGate("the gate to open", 60*time.Second, http.StatusOK)

	// Without the token a mutating call is refused.
	var refused runAnswer
	if code := srv.do("POST", "/api/v1/experiments/break-shop/runs", false, nil, &refused); code != http.StatusUnauthorized || refused.Error == "" {
		t.Fatalf("POST without token: status %d error %q, want 401 with an error", code, refused.Error)
	}

	// A run that passes.
	var run runAnswer
	if code := srv.do("POST", "/api/v1/experiments/break-shop/runs", true, nil, &run); code != http.StatusCreated || run.ID == "" || run.State != "running" {
		t.Fatalf("start run: status %d %+v", code, run)
	}
	if g, code := srv.gate(); code != http.StatusConflict || !g.hasReason("run-active") {
		t.Errorf("gate during a run: %d %+v, want 409 with a run-active reason", code, g)
	}
	var again map[string]any
	if code := srv.do("POST", "/api/v1/experiments/break-shop/runs", true, nil, &again); code != http.StatusConflict {
		t.Errorf("second start during a run: status %d, want 409", code)
	}
	// A few supervised evaluations: the run's timeline holds their
	// measurements of the probe.
	srv.Eventually(30*time.Second, "three supervised measurements of the probe", func() error {
		var r runAnswer
		srv.do("GET", "/api/v1/runs/"+run.ID, false, nil, &r)
		if n := r.measurements("error-rate"); n < 3 {
			return fmt.Errorf("%d measurements in the timeline %+v", n, r.Timeline)
		}
		return nil
	})
	if code := srv.do("POST", "/api/v1/runs/"+run.ID+"/finish", true, nil, &run); code != http.StatusOK || run.State != "recovering" {
		t.Fatalf("finish: status %d state %s", code, run.State)
	}
	srv.Eventually(30*time.Second, "the run to end its recovery", func() error {
		srv.do("GET", "/api/v1/runs/"+run.ID+"/wait?timeout=5s", false, nil, &run)
		if run.State == "recovering" {
			return errors.New("the run is still recovering")
		}
		return nil
	})
	if run.State != "passed" {
		t.Fatalf("run ended %s (%s), want passed", run.State, run.Reason)
	}
	if probes := run.measurements("error-rate"); probes < 2 {
		t.Errorf("timeline has %d measurements of the probe, want several: %+v", probes, run.Timeline)
	}

	// A run aborted by its hypothesis, driven by `slogate run`: the chaos
	// command is terminated and the exit code is 3.
	srv.waitGate("the gate to reopen", 30*time.Second, http.StatusOK)
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command(slogateBinary(t), "run", "break-shop", "--server", srv.URL(), "--token", srv.Token(), "--grace", "2s",
		"--", "sh", "-c", "echo $$ > "+pidFile+"; exec sleep 120")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the chaos command to start", func() error {
		if b, err := os.ReadFile(pidFile); err != nil || len(bytes.TrimSpace(b)) == 0 {
			return fmt.Errorf("no pid in %s yet (%v)", pidFile, err)
		}
		return nil
	})
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	shop.setErrors(1) // the chaos
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 3 {
			t.Fatalf("slogate run: %v, want exit status 3 (aborted)\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("slogate run did not end after the hypothesis failed\nstderr:\n%s", stderr.String())
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("chaos command (pid %d) still exists after the abort: %v", pid, err)
	}
	var runs struct{ Runs []runAnswer }
	srv.do("GET", "/api/v1/experiments/break-shop/runs", false, nil, &runs)
	if len(runs.Runs) < 2 || runs.Runs[0].State != "aborted" || !strings.Contains(runs.Runs[0].Reason, "hypothesis") {
		t.Fatalf("newest run: %+v, want aborted by the hypothesis", runs.Runs)
	}

	// The abort, the violated hypothesis and the budget burn reach the real
	// Alertmanager.
	want := map[string]map[string]string{
		"ChaosExperimentAborted": {"experiment": "break-shop", "run": runs.Runs[0].ID},
		"SteadyStateViolated":    {"hypothesis": "shop-steady"},
		"SLOErrorBudgetBurn":     {"slo": "shop-availability", "service": "shop", "severity": "page", "team": "web"},
	}
	testenv.Eventually(t, 30*time.Second, "the alerts in Alertmanager", func() error {
		got := am.Alerts(t)
		for name, labels := range want {
			found := false
			for _, a := range got {
				if a.Labels["alertname"] != name {
					continue
				}
				ok := true
				for k, v := range labels {
					ok = ok && a.Labels[k] == v
				}
				found = found || ok
			}
			if !found {
				return fmt.Errorf("no %s alert with %v among %d alerts", name, labels, len(got))
			}
		}
		return nil
	})

	// The burst spent the 1d budget of a service with one minute of
	// traffic: once errors stop, the hypothesis passes again but the SLO
	// gate policy keeps the gate closed.
	shop.setErrors(0)
	var g gateAnswer
	srv.Eventually(30*time.Second, "the gate to be closed by the budget alone", func() error {
		g, _ = srv.gate()
		if g.Status != "closed" || !g.hasReason("slo") || g.hasReason("hypothesis") {
			return fmt.Errorf("gate %+v", g)
		}
		return nil
	})
	// The API token never shows up in the log (failed and successful
	// authentications included).
	if b, err := os.ReadFile(srv.LogPath()); err != nil || bytes.Contains(b, []byte(srv.Token())) {
		t.Errorf("slogate's log contains the API token (or cannot be read: %v)", err)
	}
	out, err := exec.Command(slogateBinary(t), "gate", "break-shop", "--server", srv.URL()).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "budget") {
		t.Errorf("slogate gate: %v, output %q, want exit status 2 naming the budget", err, out)
	}
}

// TestReloadAndOutage: a bad reload keeps the old definitions; with
// Prometheus down /health stays 200 while the gate says unknown (503).
func TestReloadAndOutage(t *testing.T) {
	shop := startShop(t)
	srv := startServer(t, serverOptions{promURL: shop.prom.URL()})
	srv.waitGate("the gate to open", 60*time.Second, http.StatusOK)

	// A changed file is picked up without asking (fsnotify).
	second := strings.Replace(strings.SplitN(definitions, "---", 2)[0], "name: shop-availability", "name: shop-availability-strict", 1)
	second = strings.Replace(second, "objective: 99", "objective: 99.9", 1)
	if err := os.WriteFile(srv.DefinitionsPath(), []byte(definitions+"---\n"+second), 0o644); err != nil {
		t.Fatal(err)
	}
	var slos struct{ SLOs []struct{ Name string } }
	srv.Eventually(20*time.Second, "the changed definitions file to be reloaded", func() error {
		srv.do("GET", "/api/v1/slos", false, nil, &slos)
		if len(slos.SLOs) != 2 {
			return fmt.Errorf("SLOs %+v, want 2", slos.SLOs)
		}
		return nil
	})

	bad := strings.Replace(definitions, "objective: 99", "objectiv: 99", 1)
	if err := os.WriteFile(srv.DefinitionsPath(), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	var rejected struct{ Error string }
	if code := srv.do("POST", "/-/reload", true, nil, &rejected); code != http.StatusUnprocessableEntity || !strings.Contains(rejected.Error, "definitions.yaml:6:3") || !strings.Contains(rejected.Error, "objectiv") {
		t.Fatalf("bad reload: status %d error %q, want 422 naming definitions.yaml:6:3 and the field", code, rejected.Error)
	}
	if srv.do("GET", "/api/v1/slos", false, nil, &slos); len(slos.SLOs) != 2 || slos.SLOs[0].Name != "shop-availability" {
		t.Errorf("after a bad reload: SLOs %+v, want the previous two", slos.SLOs)
	}
	if _, code := srv.gate(); code != http.StatusOK {
		t.Errorf("after a bad reload the gate answers %d, want the old definitions still working (200)", code)
	}
	if v, n := srv.metric("slogate_config_last_reload_successful"); n != 1 || v != 0 {
		t.Errorf("slogate_config_last_reload_successful = %v (%d series) after a bad reload, want 0", v, n)
	}

	shop.prom.Stop()
	var g gateAnswer
	srv.Eventually(30*time.Second, "the gate to turn unknown", func() error {
		var code int
		if g, code = srv.gate(); code != http.StatusServiceUnavailable || g.Status != "unknown" {
			return fmt.Errorf("gate %d %+v", code, g)
		}
		return nil
	})
	if !g.hasReason("stale") {
		t.Errorf("unknown gate without a stale reason: %+v", g)
	}
	if code, _, err := srv.Try("GET", "/health", nil, false); err != nil || code != http.StatusOK {
		t.Fatalf("/health while Prometheus is down: %d %v, want 200", code, err)
	}
	shop.prom.Restart(t)
	srv.waitGate("the gate to open again", 60*time.Second, http.StatusOK)
}

// metric is the sum of the series of name on /metrics, and how many there
// are.
func (s *server) metric(name string) (float64, int) {
	s.t.Helper()
	v, n, err := s.MetricSum(name)
	if err != nil {
		s.t.Fatal(err)
	}
	return v, n
}

// TestKill9DuringRun: a run survives `kill -9` of the service and goes on
// after the restart.
// On PostgreSQL the restarted process is a new replica: it takes the
// supervision lease over once the killed one's has expired.
func TestKill9DuringRun(t *testing.T) {
	t.Run("bbolt", func(t *testing.T) { kill9DuringRun(t, "") })
	t.Run("postgres", func(t *testing.T) { kill9DuringRun(t, testenv.StartPostgres(t).NewDatabase(t)) })
}

func kill9DuringRun(t *testing.T, storageURL string) {
	shop := startShop(t)
	srv := startServer(t, serverOptions{promURL: shop.prom.URL(), storageURL: storageURL})
	srv.waitGate("the gate to open", 60*time.Second, http.StatusOK)
	var run runAnswer
	if code := srv.do("POST", "/api/v1/experiments/break-shop/runs", true, nil, &run); code != http.StatusCreated {
		t.Fatalf("start run: %d", code)
	}
	// Supervision has recorded measurements the kill could lose.
	var before runAnswer
	srv.Eventually(30*time.Second, "supervised measurements in the run's timeline", func() error {
		srv.do("GET", "/api/v1/runs/"+run.ID, false, nil, &before)
		if n := before.measurements("error-rate"); n < 2 {
			return fmt.Errorf("%d measurements in the timeline", n)
		}
		return nil
	})
	srv.Kill()
	srv.Start()
	var after runAnswer
	if code := srv.do("GET", "/api/v1/runs/"+run.ID, false, nil, &after); code != http.StatusOK || after.State != "running" {
		t.Fatalf("after kill -9: status %d state %q, want the run still running", code, after.State)
	}
	if len(after.Timeline) < len(before.Timeline) {
		t.Errorf("timeline shrank from %d to %d entries across kill -9", len(before.Timeline), len(after.Timeline))
	}
	srv.Eventually(20*time.Second, "supervision to go on after the restart", func() error {
		srv.do("GET", "/api/v1/runs/"+run.ID, false, nil, &after)
		if len(after.Timeline) <= len(before.Timeline)+1 {
			return fmt.Errorf("%d timeline entries, %d before the kill", len(after.Timeline), len(before.Timeline))
		}
		return nil
	})
	if code := srv.do("POST", "/api/v1/runs/"+run.ID+"/finish", true, nil, &after); code != http.StatusOK {
		t.Fatalf("finish after restart: %d", code)
	}
	srv.Eventually(30*time.Second, "the run to pass", func() error {
		srv.do("GET", "/api/v1/runs/"+run.ID, false, nil, &after)
		if after.State != "passed" {
			return fmt.Errorf("run %s (%s)", after.State, after.Reason)
		}
		return nil
	})
}
