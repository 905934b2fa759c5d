//go:build unix

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slogate/slogate/client"
	"github.com/slogate/slogate/internal/testenv"
)

// waitPID waits for a chaos command to write its process id to path.
func waitPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	testenv.Eventually(t, 10*time.Second, "the chaos command to write "+path, func() error {
		b, err := os.ReadFile(path)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return fmt.Errorf("%q (%v)", b, err)
		}
		if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return testenv.Permanent(err)
		}
		return nil
	})
	return pid
}

func assertGone(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		syscall.Kill(pid, syscall.SIGKILL) // do not leave it behind
		t.Errorf("the chaos command (pid %d) is still there: kill(pid, 0) = %v", pid, err)
	}
}

func TestRunVerdicts(t *testing.T) {
	tests := []struct {
		name       string
		recoverTo  client.State
		wantCode   int
		wantStderr []string
	}{
		{name: "passed", recoverTo: client.StatePassed, wantCode: 0, wantStderr: []string{
			"run run-1 of kill-checkout-pod started (running); running sh -c \"echo chaos; exit 0\"",
			"the chaos command succeeded; finishing run run-1",
			clock(t0.Add(30*time.Second)) + " checkout-steady/error-rate = 0.002 pass",
			"run run-1 recovering\n",
			"run run-1 passed: recovery passed (budget spent 1.23%)",
		}},
		{name: "failed", recoverTo: client.StateFailed, wantCode: 1, wantStderr: []string{
			"run run-1 failed: recovery failed (budget spent 1.23%)",
		}},
		{name: "aborted during recovery", recoverTo: client.StateAborted, wantCode: 3, wantStderr: []string{
			"run run-1 aborted: recovery aborted",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t)
			f.setGate(experiment, client.StatusOpen)
			f.mu.Lock()
			f.recoverTo = tt.recoverTo
			f.mu.Unlock()
			res := runCLI(t, "run", experiment, "--server", f.srv.URL, "--poll-timeout", "2s", "--", "sh", "-c", "echo chaos; exit 0")
			if res.code != tt.wantCode {
				t.Errorf("exit %d, want %d", res.code, tt.wantCode)
			}
			if res.stdout != "chaos\n" {
				t.Errorf("stdout %q: the command's output should pass through", res.stdout)
			}
			assertContains(t, "stderr", res.stderr, tt.wantStderr...)
			if f.count().finishes != 1 || len(f.abortReasons()) != 0 {
				t.Errorf("finishes %d, aborts %q; want one finish and no abort", f.count().finishes, f.abortReasons())
			}
		})
	}
}

func ptr(v float64) *float64 { return &v }

// clock is how the run command prints the time of a timeline entry.
func clock(at time.Time) string { return at.Local().Format("15:04:05") }

func TestRunRefused(t *testing.T) {
	tests := []struct {
		name       string
		status     client.GateStatus
		wantCode   int
		wantStderr []string
	}{
		{name: "closed", status: client.StatusClosed, wantCode: 2, wantStderr: []string{
			"slogate: run refused: gate kill-checkout-pod: closed\n",
			"slogate: run refused:   - slo checkout-availability: error budget remaining 12% < 25%\n",
		}},
		{name: "unknown", status: client.StatusUnknown, wantCode: 2, wantStderr: []string{"gate kill-checkout-pod: unknown"}},
		{name: "unknown experiment", wantCode: 4, wantStderr: []string{`404 Not Found: experiment "kill-checkout-pod" not found`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t)
			if tt.status != "" {
				f.setGate(experiment, tt.status, client.Reason{Kind: "slo", Name: "checkout-availability", Message: "error budget remaining 12% < 25%"})
			}
			marker := filepath.Join(t.TempDir(), "ran")
			res := runCLI(t, "run", experiment, "--server", f.srv.URL, "--", "touch", marker)
			if res.code != tt.wantCode {
				t.Errorf("exit %d, want %d", res.code, tt.wantCode)
			}
			assertContains(t, "stderr", res.stderr, tt.wantStderr...)
			if _, err := os.Stat(marker); err == nil {
				t.Error("the chaos command ran although the run was refused")
			}
		})
	}
}

// TestRunAbortedByServer checks that an aborted run stops the chaos
// command, the hard way when it ignores SIGTERM.
func TestRunAbortedByServer(t *testing.T) {
	tests := []struct {
		name      string
		script    string // writes its pid to $PIDFILE, then runs long
		grace     string
		wantKill  bool
		wantTook  time.Duration // at least
		wantUnder time.Duration
	}{
		{name: "stops on SIGTERM", script: `echo $$ > "$PIDFILE"; exec sleep 30`, grace: "10s", wantUnder: 5 * time.Second},
		{name: "ignores SIGTERM", script: `trap "" TERM; echo $$ > "$PIDFILE"; sleep 30`, grace: "1s", wantKill: true, wantTook: time.Second, wantUnder: 6 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t)
			f.setGate(experiment, client.StatusOpen)
			pidFile := filepath.Join(t.TempDir(), "pid")
			t.Setenv("PIDFILE", pidFile)

			var (
				pid     int
				stopped time.Time
				wg      sync.WaitGroup
			)
			wg.Add(1)
			go func() {
				defer wg.Done()
				pid = waitPID(t, pidFile)
				id := f.onlyRun(t)
				f.appendEntry(id, client.TimelineEntry{At: t0.Add(30 * time.Second), Hypothesis: "checkout-steady", Probe: "error-rate", Value: ptr(0.2), Verdict: "fail", Message: "0.2 not < 0.01"})
				stopped = time.Now()
				f.end(id, client.StateAborted, "hypothesis checkout-steady failed")
			}()
			res := runCLI(t, "run", experiment, "--server", f.srv.URL, "--grace", tt.grace, "--poll-timeout", "5s", "--", "sh", "-c", tt.script)
			wg.Wait()
			if res.code != 3 {
				t.Errorf("exit %d, want 3", res.code)
			}
			assertGone(t, pid)
			if took := time.Since(stopped); took < tt.wantTook || took > tt.wantUnder {
				t.Errorf("the command was stopped %s after the abort, want between %s and %s", took, tt.wantTook, tt.wantUnder)
			}
			assertContains(t, "stderr", res.stderr,
				"slogate: "+clock(t0.Add(30*time.Second))+" checkout-steady/error-rate = 0.2 fail: 0.2 not < 0.01",
				"run run-1 aborted: hypothesis checkout-steady failed",
				"stopping the chaos command: SIGTERM to its process group, SIGKILL after "+tt.grace)
			if got := strings.Contains(res.stderr, "still running after"); got != tt.wantKill {
				t.Errorf("SIGKILL used: %v, want %v", got, tt.wantKill)
			}
			if len(f.abortReasons()) != 0 || f.count().finishes != 0 {
				t.Errorf("the client aborted %q or finished %d times a run the server had aborted", f.abortReasons(), f.count().finishes)
			}
		})
	}
}

func TestRunCommandFails(t *testing.T) {
	tests := []struct {
		name       string
		argv       []string
		wantReason string
		wantStderr string
	}{
		{name: "exit status", argv: []string{"sh", "-c", "exit 2"}, wantReason: "command failed: exit status 2",
			wantStderr: "slogate: the chaos command failed (exit status 2); run run-1 aborted\n"},
		{name: "killed", argv: []string{"sh", "-c", "kill -9 $$"}, wantReason: "command failed: signal: killed",
			wantStderr: "slogate: the chaos command failed (signal: killed); run run-1 aborted\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t)
			f.setGate(experiment, client.StatusOpen)
			res := runCLI(t, append([]string{"run", experiment, "--server", f.srv.URL, "--"}, tt.argv...)...)
			if res.code != 4 {
				t.Errorf("exit %d, want 4", res.code)
			}
			assertContains(t, "stderr", res.stderr, tt.wantStderr)
			if got := f.abortReasons(); len(got) != 1 || got[0] != tt.wantReason {
				t.Errorf("abort reasons %q, want [%q]", got, tt.wantReason)
			}
			if state, _ := f.state("run-1"); state != client.StateAborted {
				t.Errorf("run is %s, want aborted", state)
			}
		})
	}
}

func TestRunCommandNotFound(t *testing.T) {
	f := newFakeAPI(t)
	f.setGate(experiment, client.StatusOpen)
	res := runCLI(t, "run", experiment, "--server", f.srv.URL, "--", "/nonexistent/chaos")
	if res.code != 4 {
		t.Errorf("exit %d, want 4", res.code)
	}
	assertContains(t, "stderr", res.stderr, "cannot run the chaos command")
	if f.count().runs != 0 {
		t.Error("a run was started for a command that cannot run")
	}
}

// TestRunInterrupted sends SIGTERM to the test process itself: the run
// command has taken SIGINT and SIGTERM over while it runs.
func TestRunInterrupted(t *testing.T) {
	f := newFakeAPI(t)
	f.setGate(experiment, client.StatusOpen)
	pidFile := filepath.Join(t.TempDir(), "pid")
	t.Setenv("PIDFILE", pidFile)
	var pid int
	done := make(chan struct{})
	go func() {
		defer close(done)
		pid = waitPID(t, pidFile)
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}()
	res := runCLI(t, "run", experiment, "--server", f.srv.URL, "--", "sh", "-c", `echo $$ > "$PIDFILE"; exec sleep 30`)
	<-done
	if res.code != 4 {
		t.Errorf("exit %d, want 4", res.code)
	}
	assertGone(t, pid)
	assertContains(t, "stderr", res.stderr, "received SIGTERM: stopping the chaos command and aborting run run-1", "slogate: interrupted; run run-1 aborted\n")
	if got := f.abortReasons(); len(got) != 1 || got[0] != "interrupted" {
		t.Errorf("abort reasons %q, want [interrupted]", got)
	}
}

// TestRunLostContact checks that an unsupervised chaos command is stopped
// once the server has been unreachable for --server-timeout, and not
// before.
func TestRunLostContact(t *testing.T) {
	f := newFakeAPI(t)
	f.setGate(experiment, client.StatusOpen)
	pidFile := filepath.Join(t.TempDir(), "pid")
	t.Setenv("PIDFILE", pidFile)
	var (
		pid  int
		gone time.Time
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pid = waitPID(t, pidFile)
		gone = time.Now()
		f.setDown(true)
	}()
	res := runCLI(t, "run", experiment, "--server", f.srv.URL, "--server-timeout", "1500ms", "--grace", "1s", "--",
		"sh", "-c", `echo $$ > "$PIDFILE"; exec sleep 30`)
	<-done
	if res.code != 4 {
		t.Errorf("exit %d, want 4", res.code)
	}
	assertGone(t, pid)
	if took := time.Since(gone); took < 1500*time.Millisecond || took > 8*time.Second {
		t.Errorf("stopped %s after the server went away, want after 1.5s and soon after", took)
	}
	assertContains(t, "stderr", res.stderr,
		"cannot reach slogate at "+f.srv.URL,
		"stopping the chaos command: an unsupervised experiment is unsafe",
		"run run-1 has no verdict: cannot reach slogate at "+f.srv.URL)
}

// TestRunServerBlip checks that a short outage of the server is ridden
// out: the command goes on and the run passes.
func TestRunServerBlip(t *testing.T) {
	f := newFakeAPI(t)
	f.setGate(experiment, client.StatusOpen)
	pidFile := filepath.Join(t.TempDir(), "pid")
	t.Setenv("PIDFILE", pidFile)
	done := make(chan struct{})
	go func() {
		defer close(done)
		waitPID(t, pidFile)
		// Down until the client has found the server gone and retried at
		// least once: a short outage it rides out.
		f.setDown(true)
		testenv.Eventually(t, 10*time.Second, "the client to retry against the server that went away", func() error {
			if n := f.droppedRequests(); n < 1 {
				return fmt.Errorf("%d requests dropped", n)
			}
			return nil
		})
		f.setDown(false)
	}()
	res := runCLI(t, "run", experiment, "--server", f.srv.URL, "--server-timeout", "10s", "--poll-timeout", "300ms", "--",
		"sh", "-c", `echo $$ > "$PIDFILE"; sleep 2.5`)
	<-done
	if res.code != 0 {
		t.Errorf("exit %d, want 0", res.code)
	}
	assertContains(t, "stderr", res.stderr, "retrying for up to 10s", "reached slogate at "+f.srv.URL+" again", "run run-1 passed")
}

func TestRunToken(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		flags      []string
		env        map[string]string
		wantCode   int
		wantStderr string
	}{
		{name: "token file", flags: []string{"--token-file", tokenFile}},
		{name: "token flag", flags: []string{"--token", "s3cret"}},
		{name: "token from env", env: map[string]string{envToken: "s3cret"}},
		{name: "token file from env", env: map[string]string{envTokenFile: tokenFile}},
		{name: "flag wins over env", flags: []string{"--token", "s3cret"}, env: map[string]string{envTokenFile: "/nonexistent"}},
		{name: "no token", wantCode: 4, wantStderr: "401 Unauthorized: missing or wrong bearer token (set --token or --token-file;"},
		{name: "both", flags: []string{"--token", "a", "--token-file", tokenFile}, wantCode: 4, wantStderr: "--token and --token-file both set"},
		{name: "missing file", flags: []string{"--token-file", "/nonexistent"}, wantCode: 4, wantStderr: "--token-file: open /nonexistent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{envToken, envTokenFile, envServer} {
				t.Setenv(k, tt.env[k])
			}
			f := newFakeAPI(t)
			f.mu.Lock()
			f.token = "s3cret"
			f.mu.Unlock()
			f.setGate(experiment, client.StatusOpen)
			args := append([]string{"run", experiment, "--server", f.srv.URL}, tt.flags...)
			res := runCLI(t, append(args, "--", "true")...)
			if res.code != tt.wantCode {
				t.Errorf("exit %d, want %d", res.code, tt.wantCode)
			}
			assertContains(t, "stderr", res.stderr, tt.wantStderr)
		})
	}
}

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{name: "no dash", args: []string{"run", experiment, "sleep", "1"}, wantStderr: "put the chaos command after --"},
		{name: "no command", args: []string{"run", experiment, "--"}, wantStderr: "no command after --"},
		{name: "no experiment", args: []string{"run", "--", "true"}, wantStderr: "want one EXPERIMENT before --, got 0"},
		{name: "bad flag", args: []string{"run", experiment, "--grace", "soon", "--", "true"}, wantStderr: `invalid argument "soon"`},
		{name: "unknown flag", args: []string{"run", experiment, "--nope", "--", "true"}, wantStderr: "unknown flag: --nope"},
		{name: "zero poll timeout", args: []string{"run", experiment, "--poll-timeout", "0s", "--", "true"}, wantStderr: "--poll-timeout 0s: must be positive"},
		{name: "bad server", args: []string{"run", experiment, "--server", "localhost:8080", "--", "true"}, wantStderr: "want an http or https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, tt.args...)
			if res.code != 4 {
				t.Errorf("exit %d, want 4", res.code)
			}
			assertContains(t, "stderr", res.stderr, tt.wantStderr)
		})
	}
}

func TestRunHelpListsExitCodes(t *testing.T) {
	res := runCLI(t, "run", "--help")
	if res.code != 0 {
		t.Errorf("exit %d", res.code)
	}
	assertContains(t, "help", res.stdout, "0  passed", "1  failed", "2  gate closed", "3  aborted", "4  unknown or error", "--grace", "--server-timeout", "--recovery-timeout", "--poll-timeout", "--token-file")
}

// TestRunAbortedAsCommandEnds covers the race of the server aborting the
// run while the command exits 0: the refused finish is not an error, the
// run's end is.
func TestRunAbortedAsCommandEnds(t *testing.T) {
	f := newFakeAPI(t)
	f.setGate(experiment, client.StatusOpen)
	f.mu.Lock()
	f.mute = true // the client must not learn of the abort by its long poll
	f.mu.Unlock()
	goFile := filepath.Join(t.TempDir(), "go")
	t.Setenv("GOFILE", goFile)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.end(f.onlyRun(t), client.StateAborted, "maxDuration 15m reached")
		if err := os.WriteFile(goFile, nil, 0o600); err != nil {
			t.Error(err)
		}
	}()
	res := runCLI(t, "run", experiment, "--server", f.srv.URL, "--", "sh", "-c", `until [ -e "$GOFILE" ]; do sleep 0.05; done`)
	<-done
	if res.code != 3 {
		t.Errorf("exit %d, want 3", res.code)
	}
	assertContains(t, "stderr", res.stderr, "finishing run run-1", "run run-1 aborted: maxDuration 15m reached")
	if f.count().finishes != 1 || len(f.abortReasons()) != 0 {
		t.Errorf("finishes %d, aborts %q; want one refused finish and no abort", f.count().finishes, f.abortReasons())
	}
}

// TestRunNoVerdict covers the end of the wait for the recovery verdict:
// by --recovery-timeout, or by a signal. Neither aborts the run: the chaos
// is over, and the server still records the verdict.
func TestRunNoVerdict(t *testing.T) {
	tests := []struct {
		name       string
		flags      []string
		signal     bool
		wantStderr string
	}{
		{name: "recovery timeout", flags: []string{"--recovery-timeout", "300ms"},
			wantStderr: "slogate: no verdict for run run-1 within --recovery-timeout 300ms; it is still recovering on the server\n"},
		{name: "interrupted", signal: true,
			wantStderr: "slogate: received SIGTERM: stopped waiting; run run-1 is still recovering on the server, which will record its verdict\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t)
			f.setGate(experiment, client.StatusOpen)
			f.mu.Lock()
			f.recoverAfter = time.Hour
			f.mu.Unlock()
			done := make(chan struct{})
			go func() {
				defer close(done)
				if !tt.signal {
					return
				}
				// The signal comes while the client waits for the
				// verdict: its long poll of the recovering run is open.
				f.onlyRun(t)
				testenv.Eventually(t, 10*time.Second, "the client to wait for the recovery verdict", func() error {
					if n := f.waiting(client.StateRecovering); n == 0 {
						return errors.New("no long poll of a recovering run is open")
					}
					return nil
				})
				syscall.Kill(os.Getpid(), syscall.SIGTERM)
			}()
			args := append([]string{"run", experiment, "--server", f.srv.URL}, tt.flags...)
			res := runCLI(t, append(args, "--", "true")...)
			<-done
			if res.code != 4 {
				t.Errorf("exit %d, want 4", res.code)
			}
			assertContains(t, "stderr", res.stderr, tt.wantStderr)
			if state, _ := f.state("run-1"); state != client.StateRecovering || len(f.abortReasons()) != 0 {
				t.Errorf("run %s, aborts %q; want it left recovering", state, f.abortReasons())
			}
		})
	}
}
