package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// TestDemo runs `slogate demo` as `make run` does and checks through the
// API that its scripted experiment really closes the gate and gets a run
// aborted by its hypothesis, and that the UI answers.
func TestDemo(t *testing.T) {
	port := testenv.FreePort(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "demo.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(slogateBinary(t), "demo", fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--storage.path="+filepath.Join(dir, "data"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("demo log:\n%s", b)
		}
	})
	srv := &server{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port), done: done, cmd: cmd}
	srv.waitReady()

	var slos struct{ SLOs []struct{ Name string } }
	srv.do("GET", "/api/v1/slos", false, nil, &slos)
	if len(slos.SLOs) < 4 {
		t.Fatalf("demo SLOs: %+v", slos.SLOs)
	}
	resp, err := httpClient.Get(srv.url + "/")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("UI: %v %v", resp, err)
	}
	resp.Body.Close()

	// The first scripted round breaks checkout: the run must be aborted by
	// its hypothesis, and while it runs and after, the gate is closed.
	sawClosed := false
	var runs struct{ Runs []runAnswer }
	waitFor(t, "the demo's first run to be aborted", 150*time.Second, func() bool {
		var g gateAnswer
		code := srv.do("GET", "/api/v1/experiments/checkout-pod-kill/gate", false, nil, &g)
		if code == http.StatusConflict && g.Status == "closed" {
			sawClosed = true
		}
		srv.do("GET", "/api/v1/experiments/checkout-pod-kill/runs", false, nil, &runs)
		return len(runs.Runs) > 0 && runs.Runs[len(runs.Runs)-1].State == "aborted"
	})
	first := runs.Runs[len(runs.Runs)-1]
	if !strings.Contains(first.Reason, "hypothesis") {
		t.Errorf("the demo's run was aborted for %q, want its hypothesis", first.Reason)
	}
	if !sawClosed {
		t.Errorf("the gate was never seen closed during the demo's breaking run")
	}
}
