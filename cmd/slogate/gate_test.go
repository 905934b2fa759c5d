package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate/client"
	"github.com/slogate/slogate/internal/testenv"
)

func TestGateCommand(t *testing.T) {
	budget := client.Reason{Kind: "slo", Name: "checkout-availability", Message: "error budget remaining 12% < 25%"}
	stale := client.Reason{Kind: "stale", Name: "checkout-steady", Message: "last evaluation 3m ago"}
	tests := []struct {
		name       string
		status     client.GateStatus // of the gate; empty: the experiment does not exist
		reasons    []client.Reason
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "open", status: client.StatusOpen, wantCode: 0, wantStdout: "gate kill-checkout-pod: open\n"},
		{name: "closed", status: client.StatusClosed, reasons: []client.Reason{budget, {Kind: "run-active", Message: "run r1 is active"}}, wantCode: 2,
			wantStdout: "gate kill-checkout-pod: closed\n" +
				"  - slo checkout-availability: error budget remaining 12% < 25%\n" +
				"  - run-active: run r1 is active\n"},
		{name: "unknown", status: client.StatusUnknown, reasons: []client.Reason{stale}, wantCode: 4,
			wantStdout: "gate kill-checkout-pod: unknown\n  - stale checkout-steady: last evaluation 3m ago\n"},
		{name: "unknown experiment", wantCode: 4,
			wantStderr: `slogate: asking the gate of "kill-checkout-pod": server answered 404 Not Found: experiment "kill-checkout-pod" not found` + "\n"},
		{name: "bad output", status: client.StatusOpen, args: []string{"-o", "yaml"}, wantCode: 4, wantStderr: `--output: unknown format "yaml"`},
		{name: "bad timeout", status: client.StatusOpen, args: []string{"--timeout", "0s"}, wantCode: 4, wantStderr: "--timeout 0s: must be positive"},
		{name: "unknown flag", status: client.StatusOpen, args: []string{"--nope"}, wantCode: 4, wantStderr: "unknown flag: --nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t)
			if tt.status != "" {
				f.setGate(experiment, tt.status, tt.reasons...)
			}
			res := runCLI(t, append([]string{"gate", experiment, "--server", f.srv.URL}, tt.args...)...)
			if res.code != tt.wantCode {
				t.Errorf("exit %d, want %d", res.code, tt.wantCode)
			}
			if res.stdout != tt.wantStdout {
				t.Errorf("stdout %q, want %q", res.stdout, tt.wantStdout)
			}
			if tt.wantStderr == "" && res.stderr != "" || !strings.Contains(res.stderr, tt.wantStderr) {
				t.Errorf("stderr %q, want %q", res.stderr, tt.wantStderr)
			}
		})
	}
}

func TestGateJSON(t *testing.T) {
	for _, status := range []client.GateStatus{client.StatusOpen, client.StatusClosed, client.StatusUnknown} {
		t.Run(string(status), func(t *testing.T) {
			f := newFakeAPI(t)
			f.setGate(experiment, status)
			res := runCLI(t, "gate", experiment, "--server", f.srv.URL, "--output", "json")
			var got map[string]any
			if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if got["experiment"] != experiment || got["status"] != string(status) || got["evaluatedAt"] != "2026-01-02T12:00:00Z" {
				t.Errorf("answer %v", got)
			}
			if reasons, ok := got["reasons"].([]any); !ok || len(reasons) != 0 {
				t.Errorf("reasons %#v, want []", got["reasons"])
			}
			if want := map[client.GateStatus]int{"open": 0, "closed": 2, "unknown": 4}[status]; res.code != want {
				t.Errorf("exit %d, want %d", res.code, want)
			}
		})
	}
}

func TestGateServerFromEnv(t *testing.T) {
	f := newFakeAPI(t)
	f.setGate(experiment, client.StatusClosed)
	t.Setenv(envServer, f.srv.URL)
	if res := runCLI(t, "gate", experiment); res.code != 2 {
		t.Errorf("exit %d, want 2: SLOGATE_SERVER not used", res.code)
	}
	t.Setenv(envServer, "http://127.0.0.1:1")
	if res := runCLI(t, "gate", experiment, "--server", f.srv.URL); res.code != 2 {
		t.Errorf("exit %d, want 2: --server should win over SLOGATE_SERVER", res.code)
	}
}

func TestGateUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	res := runCLI(t, "gate", experiment, "--server", server)
	if res.code != 4 {
		t.Errorf("exit %d, want 4", res.code)
	}
	want := "slogate: cannot reach slogate at " + server + ": connection refused (is slogate serve running? set --server)\n"
	if res.stderr != want || res.stdout != "" {
		t.Errorf("stderr %q, want %q; stdout %q", res.stderr, want, res.stdout)
	}
}

func TestGateUsage(t *testing.T) {
	for _, args := range [][]string{{"gate"}, {"gate", "a", "b"}} {
		res := runCLI(t, args...)
		if res.code != 4 || !strings.Contains(res.stderr, "want one EXPERIMENT") {
			t.Errorf("%q: exit %d, stderr %q; want 4 and a usage message", args, res.code, res.stderr)
		}
	}
}

// fakeAPI is a small in-memory stand-in for the gate and run API of
// slogate serve: enough to drive the client commands through each path.
// The end-to-end test against the real server lives elsewhere.
type fakeAPI struct {
	srv *httptest.Server

	mu    sync.Mutex // guards what follows
	token string     // required on POSTs when set
	// basicAuth, "user:password", is required on every request when set,
	// as exporter-toolkit does; the token may then come in its header.
	basicAuth string
	changed   chan struct{} // closed and replaced at every change, to wake long polls
	gates     map[string]*client.GateAnswer
	runs      map[string]*client.Run
	aborts    []string // reasons of abort calls
	finishes  int
	// After a finish the run is recovering, then ends recoverTo after
	// recoverAfter.
	recoverTo    client.State
	recoverAfter time.Duration
	// down makes the server drop every request, as if it were gone;
	// dropped counts them.
	down    bool
	dropped int
	// polls counts the long polls open now, by the state they wait to
	// change.
	polls map[client.State]int
	// mute makes long polls answer only at their timeout, like a server
	// that misses a change.
	mute bool
}

var t0 = time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{
		changed:      make(chan struct{}),
		gates:        map[string]*client.GateAnswer{},
		polls:        map[client.State]int{},
		runs:         map[string]*client.Run{},
		recoverTo:    client.StatePassed,
		recoverAfter: 100 * time.Millisecond,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/experiments/{name}/gate", f.gate)
	mux.HandleFunc("POST /api/v1/experiments/{name}/runs", f.startRun)
	mux.HandleFunc("GET /api/v1/runs/{id}", f.getRun)
	mux.HandleFunc("POST /api/v1/runs/{id}/finish", f.finishRun)
	mux.HandleFunc("POST /api/v1/runs/{id}/abort", f.abortRun)
	mux.HandleFunc("GET /api/v1/runs/{id}/wait", f.waitRun)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		down := f.down
		if down {
			f.dropped++
		}
		f.mu.Unlock()
		if down {
			// Drop the connection without an answer, like a server that
			// went away mid-request.
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		f.mu.Lock()
		token, basicAuth := f.token, f.basicAuth
		f.mu.Unlock()
		if basicAuth != "" {
			if user, pass, ok := r.BasicAuth(); !ok || user+":"+pass != basicAuth {
				w.Header().Set("WWW-Authenticate", "Basic")
				http.Error(w, "Unauthorized", http.StatusUnauthorized)
				return
			}
		}
		if r.Method == http.MethodPost && token != "" && r.Header.Get("Authorization") != "Bearer "+token && r.Header.Get(client.TokenHeader) != token {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// setGate sets the gate of experiment; reasons are "kind name: message".
func (f *fakeAPI) setGate(experiment string, status client.GateStatus, reasons ...client.Reason) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gates[experiment] = &client.GateAnswer{Experiment: experiment, Status: status, Reasons: reasons, EvaluatedAt: t0}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// notifyLocked wakes the long polls; f.mu is held.
func (f *fakeAPI) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func gateCode(status client.GateStatus) int {
	switch status {
	case client.StatusOpen:
		return http.StatusOK
	case client.StatusClosed:
		return http.StatusConflict
	}
	return http.StatusServiceUnavailable
}

func (f *fakeAPI) gate(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.gates[r.PathValue("name")]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("experiment %q not found", r.PathValue("name"))})
		return
	}
	writeJSON(w, gateCode(g.Status), g)
}

func (f *fakeAPI) startRun(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := r.PathValue("name")
	g, ok := f.gates[name]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("experiment %q not found", name)})
		return
	}
	if !g.Open() {
		writeJSON(w, http.StatusConflict, map[string]any{"error": "gate " + g.Status, "gate": g})
		return
	}
	id := fmt.Sprintf("run-%d", len(f.runs)+1)
	run := &client.Run{ID: id, Experiment: name, State: client.StateRunning, StartedAt: time.Now(), Timeline: []client.TimelineEntry{}}
	f.runs[id] = run
	f.notifyLocked()
	writeJSON(w, http.StatusCreated, run)
}

func (f *fakeAPI) getRun(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if run, ok := f.runLocked(w, r); ok {
		writeJSON(w, http.StatusOK, run)
	}
}

func (f *fakeAPI) runLocked(w http.ResponseWriter, r *http.Request) (*client.Run, bool) {
	run, ok := f.runs[r.PathValue("id")]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("run %q not found", r.PathValue("id"))})
	}
	return run, ok
}

func (f *fakeAPI) finishRun(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	run, ok := f.runLocked(w, r)
	if !ok {
		return
	}
	f.finishes++
	if run.State != client.StateRunning {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "run is " + string(run.State)})
		return
	}
	// A last measurement, then recovery.
	v := 0.002
	run.Timeline = append(run.Timeline,
		client.TimelineEntry{At: t0.Add(30 * time.Second), Hypothesis: "checkout-steady", Probe: "error-rate", Value: &v, Verdict: "pass"},
		client.TimelineEntry{At: t0.Add(31 * time.Second), Verdict: "recovering", Message: "chaos finished"})
	run.State = client.StateRecovering
	f.notifyLocked()
	writeJSON(w, http.StatusOK, run)
	id, to := run.ID, f.recoverTo
	time.AfterFunc(f.recoverAfter, func() { f.end(id, to, "recovery "+string(to)) })
}

func (f *fakeAPI) abortRun(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	run, ok := f.runLocked(w, r)
	if !ok {
		return
	}
	f.aborts = append(f.aborts, body.Reason)
	if run.State.Terminal() {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "run is " + string(run.State)})
		return
	}
	f.endLocked(run, client.StateAborted, body.Reason)
	writeJSON(w, http.StatusOK, run)
}

// end ends a run as the server would on its own (a hypothesis failed, the
// recovery check is over).
func (f *fakeAPI) end(id string, state client.State, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if run := f.runs[id]; run != nil && !run.State.Terminal() {
		f.endLocked(run, state, reason)
	}
}

func (f *fakeAPI) endLocked(run *client.Run, state client.State, reason string) {
	now := time.Now()
	run.State, run.Reason, run.EndedAt = state, reason, &now
	run.BudgetSpent = 0.0123
	run.Timeline = append(run.Timeline, client.TimelineEntry{At: t0.Add(time.Minute), Verdict: string(state), Message: reason})
	f.notifyLocked()
}

// appendEntry adds a timeline entry to a run, as an evaluation would.
func (f *fakeAPI) appendEntry(id string, e client.TimelineEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs[id].Timeline = append(f.runs[id].Timeline, e)
	f.notifyLocked()
}

func (f *fakeAPI) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	f.notifyLocked()
}

func (f *fakeAPI) waitRun(w http.ResponseWriter, r *http.Request) {
	timeout, err := time.ParseDuration(r.URL.Query().Get("timeout"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "timeout: " + err.Error()})
		return
	}
	state := client.State(r.URL.Query().Get("state"))
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	f.mu.Lock()
	run, ok := f.runLocked(w, r)
	if !ok {
		f.mu.Unlock()
		return
	}
	seen := len(run.Timeline)
	f.polls[state]++
	defer func() {
		// Every way out below has released f.mu by now.
		f.mu.Lock()
		f.polls[state]--
		f.mu.Unlock()
	}()
	for f.mute || run.State == state && len(run.Timeline) == seen && !f.down {
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			f.mu.Lock()
			writeJSON(w, http.StatusOK, run)
			f.mu.Unlock()
			return
		case <-r.Context().Done():
			return
		}
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	if f.down {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// onlyRun waits for the one run of the test to exist and returns its id.
func (f *fakeAPI) onlyRun(t *testing.T) string {
	t.Helper()
	var id string
	testenv.Eventually(t, 10*time.Second, "a run to be started", func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		for id = range f.runs {
			return nil
		}
		return errors.New("no run yet")
	})
	return id
}

// droppedRequests is how many requests the server dropped while down.
func (f *fakeAPI) droppedRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dropped
}

// waiting is how many long polls waiting for a run to leave state are
// open.
func (f *fakeAPI) waiting(state client.State) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.polls[state]
}

func (f *fakeAPI) state(id string) (client.State, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs[id].State, f.runs[id].Reason
}

// counts are how many runs were started and finish calls made.
type counts struct{ runs, finishes int }

func (f *fakeAPI) count() counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return counts{runs: len(f.runs), finishes: f.finishes}
}

func (f *fakeAPI) abortReasons() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.aborts...)
}

// result is what a command run in process left behind.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	start := time.Now()
	code := execute(args, &out, &errOut)
	res := result{code: code, stdout: out.String(), stderr: errOut.String(), took: time.Since(start)}
	t.Logf("slogate %q → exit %d in %s\nstdout:\n%s\nstderr:\n%s", args, code, res.took.Round(time.Millisecond), res.stdout, res.stderr)
	return res
}

func assertContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %q", what, want)
		}
	}
}

const experiment = "kill-checkout-pod"
