package e2e

import (
	"bytes"
	"errors"
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
	srv := startServer(t, serverOptions{promURL: shop.prom.URL(), amURL: am.URL()})
	srv.waitReady()

	waitFor(t, "the gate to open", 60*time.Second, func() bool {
		_, code := srv.gate()
		return code == http.StatusOK
	})

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
	time.Sleep(3 * time.Second) // a few supervised evaluations
	if code := srv.do("POST", "/api/v1/runs/"+run.ID+"/finish", true, nil, &run); code != http.StatusOK || run.State != "recovering" {
		t.Fatalf("finish: status %d state %s", code, run.State)
	}
	waitFor(t, "the run to pass", 30*time.Second, func() bool {
		srv.do("GET", "/api/v1/runs/"+run.ID+"/wait?timeout=5s", false, nil, &run)
		return run.State != "recovering"
	})
	if run.State != "passed" {
		t.Fatalf("run ended %s (%s), want passed", run.State, run.Reason)
	}
	probes := 0
	for _, e := range run.Timeline {
		if e.Probe == "error-rate" && e.Value != nil {
			probes++
		}
	}
	if probes < 2 {
		t.Errorf("timeline has %d measurements of the probe, want several: %+v", probes, run.Timeline)
	}

	// A run aborted by its hypothesis, driven by `slogate run`: the chaos
	// command is terminated and the exit code is 3.
	waitFor(t, "the gate to reopen", 30*time.Second, func() bool { _, code := srv.gate(); return code == http.StatusOK })
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command(slogateBinary(t), "run", "break-shop", "--server", srv.url, "--token", srv.token, "--grace", "2s",
		"--", "sh", "-c", "echo $$ > "+pidFile+"; exec sleep 120")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the chaos command to start", 20*time.Second, func() bool {
		b, err := os.ReadFile(pidFile)
		return err == nil && len(bytes.TrimSpace(b)) > 0
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
	waitFor(t, "the alerts in Alertmanager", 30*time.Second, func() bool {
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
				return false
			}
		}
		return true
	})

	// The burst spent the 1d budget of a service with one minute of
	// traffic: once errors stop, the hypothesis passes again but the SLO
	// gate policy keeps the gate closed.
	shop.setErrors(0)
	var g gateAnswer
	waitFor(t, "the gate to be closed by the budget alone", 30*time.Second, func() bool {
		g, _ = srv.gate()
		return g.Status == "closed" && g.hasReason("slo") && !g.hasReason("hypothesis")
	})
	// The API token never shows up in the log (failed and successful
	// authentications included).
	if b, err := os.ReadFile(srv.logPath); err != nil || bytes.Contains(b, []byte(srv.token)) {
		t.Errorf("slogate's log contains the API token (or cannot be read: %v)", err)
	}
	out, err := exec.Command(slogateBinary(t), "gate", "break-shop", "--server", srv.url).CombinedOutput()
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
	srv.waitReady()
	waitFor(t, "the gate to open", 60*time.Second, func() bool { _, code := srv.gate(); return code == http.StatusOK })

	// A changed file is picked up without asking (fsnotify).
	second := strings.Replace(strings.SplitN(definitions, "---", 2)[0], "name: shop-availability", "name: shop-availability-strict", 1)
	second = strings.Replace(second, "objective: 99", "objective: 99.9", 1)
	if err := os.WriteFile(filepath.Join(srv.dir, "definitions.yaml"), []byte(definitions+"---\n"+second), 0o644); err != nil {
		t.Fatal(err)
	}
	var slos struct{ SLOs []struct{ Name string } }
	waitFor(t, "the changed definitions file to be reloaded", 20*time.Second, func() bool {
		srv.do("GET", "/api/v1/slos", false, nil, &slos)
		return len(slos.SLOs) == 2
	})

	bad := strings.Replace(definitions, "objective: 99", "objectiv: 99", 1)
	if err := os.WriteFile(filepath.Join(srv.dir, "definitions.yaml"), []byte(bad), 0o644); err != nil {
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
	if m := srv.metric(t, "slogate_config_last_reload_successful"); m != "0" {
		t.Errorf("slogate_config_last_reload_successful = %q after a bad reload, want 0", m)
	}

	shop.prom.Stop()
	var g gateAnswer
	waitFor(t, "the gate to turn unknown", 30*time.Second, func() bool {
		var code int
		g, code = srv.gate()
		return code == http.StatusServiceUnavailable && g.Status == "unknown"
	})
	if !g.hasReason("stale") {
		t.Errorf("unknown gate without a stale reason: %+v", g)
	}
	resp, err := httpClient.Get(srv.url + "/health")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/health while Prometheus is down: %v %v, want 200", resp, err)
	}
	resp.Body.Close()
	shop.prom.Restart(t)
	waitFor(t, "the gate to open again", 60*time.Second, func() bool { _, code := srv.gate(); return code == http.StatusOK })
}

func (s *server) metric(t *testing.T, name string) string {
	t.Helper()
	resp, err := httpClient.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			f := strings.Fields(line)
			return f[len(f)-1]
		}
	}
	return ""
}

// TestKill9DuringRun: a run survives `kill -9` of the service and goes on
// after the restart.
func TestKill9DuringRun(t *testing.T) {
	shop := startShop(t)
	srv := startServer(t, serverOptions{promURL: shop.prom.URL()})
	srv.waitReady()
	waitFor(t, "the gate to open", 60*time.Second, func() bool { _, code := srv.gate(); return code == http.StatusOK })
	var run runAnswer
	if code := srv.do("POST", "/api/v1/experiments/break-shop/runs", true, nil, &run); code != http.StatusCreated {
		t.Fatalf("start run: %d", code)
	}
	time.Sleep(2500 * time.Millisecond)
	var before runAnswer
	srv.do("GET", "/api/v1/runs/"+run.ID, false, nil, &before)
	srv.kill9()
	srv.start()
	srv.waitReady()
	var after runAnswer
	if code := srv.do("GET", "/api/v1/runs/"+run.ID, false, nil, &after); code != http.StatusOK || after.State != "running" {
		t.Fatalf("after kill -9: status %d state %q, want the run still running", code, after.State)
	}
	if len(after.Timeline) < len(before.Timeline) {
		t.Errorf("timeline shrank from %d to %d entries across kill -9", len(before.Timeline), len(after.Timeline))
	}
	waitFor(t, "supervision to go on after the restart", 20*time.Second, func() bool {
		srv.do("GET", "/api/v1/runs/"+run.ID, false, nil, &after)
		return len(after.Timeline) > len(before.Timeline)+1
	})
	if code := srv.do("POST", "/api/v1/runs/"+run.ID+"/finish", true, nil, &after); code != http.StatusOK {
		t.Fatalf("finish after restart: %d", code)
	}
	waitFor(t, "the run to pass", 30*time.Second, func() bool {
		srv.do("GET", "/api/v1/runs/"+run.ID, false, nil, &after)
		return after.State == "passed"
	})
}
