//go:build unix

package supervise

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slogate/slogate/client"
)

func TestCheck(t *testing.T) {
	valid := Supervisor{Grace: 10 * time.Second, PollTimeout: 30 * time.Second, ServerTimeout: 2 * time.Minute, RecoveryTimeout: 15 * time.Minute}
	tests := []struct {
		name   string
		change func(*Supervisor)
		want   string
	}{
		{name: "valid", change: func(*Supervisor) {}},
		{name: "no grace", change: func(s *Supervisor) { s.Grace = 0 }},
		{name: "negative grace", change: func(s *Supervisor) { s.Grace = -time.Second }, want: "--grace -1s: must not be negative"},
		{name: "all at once", change: func(s *Supervisor) { s.PollTimeout, s.ServerTimeout, s.RecoveryTimeout = 0, -time.Second, 0 },
			want: "--poll-timeout 0s: must be positive\n--server-timeout -1s: must be positive\n--recovery-timeout 0s: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid
			tt.change(&s)
			err := s.Check()
			if got := errString(err); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// fakeServer is the part of slogate serve's API one short run uses: the
// run starts (or the gate refuses it), is followed, and passes when
// finished or is aborted.
type fakeServer struct {
	srv    *httptest.Server
	refuse bool // the gate is closed

	mu    sync.Mutex
	run   *client.Run
	calls []string
}

func newFakeServer(t *testing.T, refuse bool) *fakeServer {
	t.Helper()
	f := &fakeServer{refuse: refuse}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/experiments/{name}/runs", func(w http.ResponseWriter, r *http.Request) {
		if f.refuse {
			writeJSON(w, http.StatusConflict, map[string]any{"error": "gate closed", "gate": client.GateAnswer{
				Experiment: r.PathValue("name"), Status: client.StatusClosed,
				Reasons: []client.Reason{{Kind: "slo", Name: "checkout-availability", Message: "error budget remaining 12% < 25%"}},
			}})
			return
		}
		f.run = &client.Run{ID: "run-1", Experiment: r.PathValue("name"), State: client.StateRunning}
		writeJSON(w, http.StatusCreated, f.run)
	})
	mux.HandleFunc("GET /api/v1/runs/{id}/wait", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, f.run)
	})
	mux.HandleFunc("POST /api/v1/runs/{id}/finish", func(w http.ResponseWriter, r *http.Request) {
		f.run.State, f.run.Reason, f.run.BudgetSpent = client.StatePassed, "recovery passed", 0.0123
		writeJSON(w, http.StatusOK, f.run)
	})
	mux.HandleFunc("POST /api/v1/runs/{id}/abort", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Reason string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.run.State, f.run.Reason = client.StateAborted, body.Reason
		writeJSON(w, http.StatusOK, f.run)
	})
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls = append(f.calls, r.Method+" "+r.URL.Path)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// posts are the calls that changed something, in order.
func (f *fakeServer) posts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var posts []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, "POST ") {
			posts = append(posts, c)
		}
	}
	return posts
}

// TestRun drives whole runs through the Supervisor alone, with no command
// line around it.
func TestRun(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	tests := []struct {
		name       string
		refuse     bool
		argv       []string
		wantErr    *Error // nil: passed
		wantStdout string
		wantStderr string
		wantPosts  []string
	}{
		{name: "passed", argv: []string{"sh", "-c", "echo chaos"},
			wantStdout: "chaos\n",
			wantStderr: "slogate: run run-1 of kill-pod started (running); running sh -c \"echo chaos\"\n" +
				"slogate: the chaos command succeeded; finishing run run-1\n" +
				"slogate: run run-1 passed: recovery passed (budget spent 1.23%)\n",
			wantPosts: []string{"POST /api/v1/experiments/kill-pod/runs", "POST /api/v1/runs/run-1/finish"}},
		{name: "gate closed", refuse: true, argv: []string{"touch", marker},
			wantErr: &Error{Outcome: GateClosed},
			wantStderr: "slogate: run refused: gate kill-pod: closed\n" +
				"slogate: run refused:   - slo checkout-availability: error budget remaining 12% < 25%\n",
			wantPosts: []string{"POST /api/v1/experiments/kill-pod/runs"}},
		{name: "command fails", argv: []string{"sh", "-c", "exit 3"},
			wantErr: &Error{Outcome: Unknown, Err: errors.New("the chaos command failed (exit status 3); run run-1 aborted")},
			wantStderr: "slogate: run run-1 of kill-pod started (running); running sh -c \"exit 3\"\n" +
				"slogate: the chaos command failed (exit status 3); aborting run run-1\n" +
				"slogate: run run-1 aborted: command failed: exit status 3 (budget spent 0.00%)\n",
			wantPosts: []string{"POST /api/v1/experiments/kill-pod/runs", "POST /api/v1/runs/run-1/abort"}},
		{name: "command not found", argv: []string{"/nonexistent/chaos"},
			wantErr: &Error{Outcome: Unknown, Err: errors.New(`cannot run the chaos command: exec: "/nonexistent/chaos": stat /nonexistent/chaos: no such file or directory`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t, tt.refuse)
			c, err := client.New(client.Options{Server: f.srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			s := Supervisor{
				Client: c, Grace: time.Second, PollTimeout: time.Second, ServerTimeout: 5 * time.Second, RecoveryTimeout: 5 * time.Second,
				Stdout: &stdout, Stderr: &stderr,
			}
			err = s.Run(context.Background(), "kill-pod", tt.argv)

			var got *Error
			switch {
			case tt.wantErr == nil && err != nil:
				t.Errorf("Run: %v, want nil", err)
			case tt.wantErr != nil && !errors.As(err, &got):
				t.Errorf("Run: %v, want an *Error", err)
			case tt.wantErr != nil && (got.Outcome != tt.wantErr.Outcome || errString(got.Err) != errString(tt.wantErr.Err)):
				t.Errorf("Run: outcome %s, Err %q; want %s, %q", got.Outcome, errString(got.Err), tt.wantErr.Outcome, errString(tt.wantErr.Err))
			}
			if stdout.String() != tt.wantStdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantStdout)
			}
			if stderr.String() != tt.wantStderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), tt.wantStderr)
			}
			if got := f.posts(); strings.Join(got, "\n") != strings.Join(tt.wantPosts, "\n") {
				t.Errorf("calls %q, want %q", got, tt.wantPosts)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("the chaos command ran")
			}
		})
	}
}

func TestRunRejects(t *testing.T) {
	c, err := client.New(client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		s    Supervisor
		argv []string
		want string
	}{
		{name: "bad options", s: Supervisor{Client: c, PollTimeout: time.Second, ServerTimeout: time.Second}, argv: []string{"true"},
			want: "--recovery-timeout 0s: must be positive"},
		{name: "no client", s: Supervisor{PollTimeout: time.Second, ServerTimeout: time.Second, RecoveryTimeout: time.Second}, argv: []string{"true"},
			want: "supervise: no Client"},
		{name: "no command", s: Supervisor{Client: c, PollTimeout: time.Second, ServerTimeout: time.Second, RecoveryTimeout: time.Second},
			want: "no command to run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Run(context.Background(), "kill-pod", tt.argv)
			var e *Error
			if !errors.As(err, &e) || e.Outcome != Unknown || errString(e.Err) != tt.want {
				t.Errorf("Run: %#v, want Unknown with %q", err, tt.want)
			}
		})
	}
}

func TestSigName(t *testing.T) {
	tests := []struct {
		sig  syscall.Signal
		want string
	}{
		{syscall.SIGINT, "SIGINT"},
		{syscall.SIGTERM, "SIGTERM"},
		{syscall.SIGHUP, "SIGHUP"},
		{syscall.SIGUSR1, syscall.SIGUSR1.String()},
	}
	for _, tt := range tests {
		if got := sigName(tt.sig); got != tt.want {
			t.Errorf("sigName(%d) = %q, want %q", int(tt.sig), got, tt.want)
		}
	}
}
