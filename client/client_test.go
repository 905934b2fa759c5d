package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// answer is a canned HTTP answer of a test server.
type answer struct {
	status int
	body   string
}

// serve starts a server answering every request with a, and records the
// last request (with its body) for the test to check.
func serve(t *testing.T, a answer) (*Client, *http.Request, *string) {
	t.Helper()
	var (
		got     = new(http.Request)
		gotBody = new(string)
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*got = *r.Clone(context.Background())
		*gotBody = string(b)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Options{Server: srv.URL + "/prefix/", Token: "s3cret", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c, got, gotBody
}

const (
	openGate    = `{"experiment":"kill/pod","status":"open","reasons":[],"evaluatedAt":"2026-01-02T03:04:05Z"}`
	closedGate  = `{"experiment":"kill/pod","status":"closed","reasons":[{"kind":"slo","name":"checkout-availability","message":"error budget remaining 12% < 25%"}],"evaluatedAt":"2026-01-02T03:04:05Z"}`
	unknownGate = `{"experiment":"kill/pod","status":"unknown","reasons":[{"kind":"stale","name":"checkout-steady","message":"last evaluation 3m ago"}],"evaluatedAt":"2026-01-02T03:04:05Z"}`
	runJSON     = `{"id":"r1","experiment":"kill/pod","state":"running","startedAt":"2026-01-02T03:04:05Z","budgetSpent":0.01,
		"timeline":[{"at":"2026-01-02T03:04:35Z","hypothesis":"h","probe":"p","value":0.002,"verdict":"pass"},
		            {"at":"2026-01-02T03:05:05Z","hypothesis":"h","probe":"p","value":null,"verdict":"unknown","message":"no data"}]}`
)

func TestGate(t *testing.T) {
	tests := []struct {
		name       string
		answer     answer
		wantStatus GateStatus
		wantAPI    int    // status of the *APIError wanted, 0 for none
		wantErr    string // part of the error message
	}{
		{name: "open", answer: answer{200, openGate}, wantStatus: StatusOpen},
		{name: "closed", answer: answer{409, closedGate}, wantStatus: StatusClosed},
		{name: "unknown", answer: answer{503, unknownGate}, wantStatus: StatusUnknown},
		{name: "unknown experiment", answer: answer{404, `{"error":"experiment \"kill/pod\" not found"}`}, wantAPI: 404, wantErr: `404 Not Found: experiment "kill/pod" not found`},
		{name: "not ready", answer: answer{503, `{"error":"definitions not loaded yet"}`}, wantAPI: 503, wantErr: "definitions not loaded yet"},
		{name: "proxy page", answer: answer{502, "<html>\n<h1>Bad   Gateway</h1></html>"}, wantAPI: 502, wantErr: "<html> <h1>Bad Gateway</h1></html>"},
		{name: "unexpected code", answer: answer{401, `{"error":"unauthorized"}`}, wantAPI: 401, wantErr: "unauthorized"},
		{name: "code and body disagree", answer: answer{200, closedGate}, wantErr: `server answered 200 with status "closed"`},
		{name: "garbage with a gate code", answer: answer{409, `not json`}, wantAPI: 409, wantErr: "not json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, req, _ := serve(t, tt.answer)
			g, err := c.Gate(context.Background(), "kill/pod")
			if req.Method != http.MethodGet || req.URL.EscapedPath() != "/prefix/api/v1/experiments/kill%2Fpod/gate" {
				t.Errorf("request %s %s", req.Method, req.URL.EscapedPath())
			}
			if got := req.Header.Get("Authorization"); got != "Bearer s3cret" {
				t.Errorf("Authorization = %q", got)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				var apiErr *APIError
				if errors.As(err, &apiErr) != (tt.wantAPI != 0) || (apiErr != nil && apiErr.Status != tt.wantAPI) {
					t.Errorf("err = %#v, want an APIError with status %d", err, tt.wantAPI)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g.Status != tt.wantStatus || g.Experiment != "kill/pod" || g.EvaluatedAt.IsZero() || g.Open() != (tt.wantStatus == StatusOpen) {
				t.Errorf("answer = %+v", g)
			}
			if tt.wantStatus != StatusOpen && (len(g.Reasons) != 1 || g.Reasons[0].Message == "") {
				t.Errorf("reasons = %+v", g.Reasons)
			}
		})
	}
}

func TestStartRun(t *testing.T) {
	tests := []struct {
		name       string
		answer     answer
		wantClosed bool
		wantAPI    int
	}{
		{name: "started", answer: answer{201, runJSON}},
		{name: "refused", answer: answer{409, `{"error":"gate closed","gate":` + closedGate + `}`}, wantClosed: true, wantAPI: 409},
		{name: "refused while unknown", answer: answer{409, `{"error":"gate unknown","gate":` + unknownGate + `}`}, wantClosed: true, wantAPI: 409},
		{name: "conflict without a gate", answer: answer{409, `{"error":"something else"}`}, wantAPI: 409},
		{name: "unauthorized", answer: answer{401, `{"error":"missing bearer token"}`}, wantAPI: 401},
		{name: "unknown experiment", answer: answer{404, `{"error":"no such experiment"}`}, wantAPI: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, req, _ := serve(t, tt.answer)
			run, gate, err := c.StartRun(context.Background(), "kill/pod")
			if req.Method != http.MethodPost || req.URL.EscapedPath() != "/prefix/api/v1/experiments/kill%2Fpod/runs" {
				t.Errorf("request %s %s", req.Method, req.URL.EscapedPath())
			}
			if errors.Is(err, ErrGateClosed) != tt.wantClosed {
				t.Errorf("err = %v, want ErrGateClosed: %v", err, tt.wantClosed)
			}
			if tt.wantClosed != (gate != nil) || (gate != nil && (gate.Open() || len(gate.Reasons) != 1)) {
				t.Errorf("gate = %+v", gate)
			}
			if tt.wantAPI != 0 {
				var apiErr *APIError
				if !errors.As(err, &apiErr) || apiErr.Status != tt.wantAPI || apiErr.Message == "" {
					t.Errorf("err = %v, want an APIError %d with a message", err, tt.wantAPI)
				}
				if run != nil {
					t.Errorf("run = %+v with an error", run)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if run.ID != "r1" || run.State != StateRunning || len(run.Timeline) != 2 || *run.Timeline[0].Value != 0.002 || run.Timeline[1].Value != nil {
				t.Errorf("run = %+v", run)
			}
		})
	}
}

func TestRunCalls(t *testing.T) {
	tests := []struct {
		name     string
		call     func(*Client) (*Run, error)
		method   string
		path     string
		query    string
		wantBody string
	}{
		{
			name:   "get",
			call:   func(c *Client) (*Run, error) { return c.GetRun(context.Background(), "r 1") },
			method: http.MethodGet, path: "/prefix/api/v1/runs/r%201",
		},
		{
			name:   "finish",
			call:   func(c *Client) (*Run, error) { return c.FinishRun(context.Background(), "r 1") },
			method: http.MethodPost, path: "/prefix/api/v1/runs/r%201/finish",
		},
		{
			name: "abort",
			call: func(c *Client) (*Run, error) {
				return c.AbortRun(context.Background(), "r 1", `command failed: "exit status 2"`)
			},
			method: http.MethodPost, path: "/prefix/api/v1/runs/r%201/abort",
			wantBody: `{"reason":"command failed: \"exit status 2\""}`,
		},
		{
			name: "wait",
			call: func(c *Client) (*Run, error) {
				return c.WaitRun(context.Background(), "r 1", StateRecovering, 30*time.Second)
			},
			method: http.MethodGet, path: "/prefix/api/v1/runs/r%201/wait", query: "state=recovering&timeout=30s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, req, body := serve(t, answer{200, runJSON})
			run, err := tt.call(c)
			if err != nil {
				t.Fatal(err)
			}
			if run.ID != "r1" {
				t.Errorf("run = %+v", run)
			}
			if req.Method != tt.method || req.URL.EscapedPath() != tt.path || req.URL.RawQuery != tt.query {
				t.Errorf("request %s %s?%s, want %s %s?%s", req.Method, req.URL.EscapedPath(), req.URL.RawQuery, tt.method, tt.path, tt.query)
			}
			if *body != tt.wantBody {
				t.Errorf("body %q, want %q", *body, tt.wantBody)
			}
			if tt.wantBody != "" && req.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type = %q", req.Header.Get("Content-Type"))
			}
			if req.Header.Get("Authorization") != "Bearer s3cret" {
				t.Errorf("Authorization = %q", req.Header.Get("Authorization"))
			}
		})
	}
}

func TestRunCallErrors(t *testing.T) {
	tests := []struct {
		name      string
		answer    answer
		wantErr   string
		retryable bool
	}{
		{name: "not found", answer: answer{404, `{"error":"run \"r1\" not found"}`}, wantErr: `finishing run "r1": server answered 404 Not Found: run "r1" not found`},
		{name: "already over", answer: answer{409, `{"error":"run is aborted"}`}, wantErr: "409 Conflict: run is aborted"},
		{name: "server error", answer: answer{500, `{"error":"store: disk full"}`}, wantErr: "disk full", retryable: true},
		{name: "not a run", answer: answer{200, `{"hello":"world"}`}, wantErr: "no id or state", retryable: true},
		{name: "not json", answer: answer{200, `<html>`}, wantErr: "decoding the run (200)", retryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, _ := serve(t, tt.answer)
			_, err := c.FinishRun(context.Background(), "r1")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if Retryable(err) != tt.retryable {
				t.Errorf("Retryable = %v", !tt.retryable)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c, err := New(Options{Server: "http://" + addr, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Gate(context.Background(), "x")
	if err == nil || !Retryable(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		t.Errorf("a connection failure is not an APIError: %v", err)
	}
}

// TestWaitRunTimeout checks that a long poll may take longer than the
// request timeout, but not much longer than its own wait.
func TestWaitRunTimeout(t *testing.T) {
	hold := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(300 * time.Millisecond):
		case <-hold:
			return
		}
		if r.URL.Path == "/api/v1/runs/r1/wait" {
			io.WriteString(w, runJSON)
			return
		}
		<-hold
	}))
	defer srv.Close()
	defer close(hold)
	c, err := New(Options{Server: srv.URL, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitRun(context.Background(), "r1", StateRunning, 200*time.Millisecond); err != nil {
		t.Errorf("long poll: %v", err)
	}
	if _, err := c.GetRun(context.Background(), "r1"); !errors.Is(err, context.DeadlineExceeded) || !Retryable(err) {
		t.Errorf("plain call: err = %v, want a retryable deadline error", err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		wantBase string
		wantErr  string
	}{
		{name: "default", wantBase: DefaultServer},
		{name: "prefix", opts: Options{Server: "https://ops.example.com/slogate/"}, wantBase: "https://ops.example.com/slogate"},
		{name: "no scheme", opts: Options{Server: "localhost:8080"}, wantErr: "want an http or https URL"},
		{name: "other scheme", opts: Options{Server: "ftp://x"}, wantErr: "want an http or https URL"},
		{name: "query", opts: Options{Server: "http://x/?a=b"}, wantErr: "without query"},
		{name: "negative timeout", opts: Options{Timeout: -time.Second}, wantErr: "must not be negative"},
		{name: "token with a newline", opts: Options{Token: "a\nb"}, wantErr: "single line"},
		{name: "basic auth", opts: Options{BasicAuth: &BasicAuth{Username: "sre", Password: "pw"}}, wantBase: DefaultServer},
		{name: "basic auth without a username", opts: Options{BasicAuth: &BasicAuth{Password: "pw"}}, wantErr: "basic auth: no username"},
		{name: "basic auth without a password", opts: Options{BasicAuth: &BasicAuth{Username: "sre"}}, wantErr: `basic auth: no password for user "sre"`},
		{name: "username with a colon", opts: Options{BasicAuth: &BasicAuth{Username: "s:re", Password: "pw"}}, wantErr: "must not contain ':'"},
		{name: "password with a newline", opts: Options{BasicAuth: &BasicAuth{Username: "sre", Password: "pw\nmore"}}, wantErr: "single lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Server() != tt.wantBase {
				t.Errorf("Server() = %q, want %q", c.Server(), tt.wantBase)
			}
		})
	}
}

// TestBasicAuth checks the headers of each combination of credentials:
// with basic auth the token moves to TokenHeader, since the Authorization
// header can carry one of them only.
func TestBasicAuth(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		wantAuth   string
		wantHeader string // TokenHeader
	}{
		{name: "basic auth and token", opts: Options{Token: "s3cret", BasicAuth: &BasicAuth{Username: "sre", Password: "hunter2"}},
			wantAuth: "Basic c3JlOmh1bnRlcjI=", wantHeader: "s3cret"},
		{name: "basic auth only", opts: Options{BasicAuth: &BasicAuth{Username: "sre", Password: "hunter2"}}, wantAuth: "Basic c3JlOmh1bnRlcjI="},
		{name: "token only", opts: Options{Token: "s3cret"}, wantAuth: "Bearer s3cret"},
		{name: "neither"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []http.Header
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = append(got, r.Header.Clone())
				if r.Method == http.MethodPost {
					w.WriteHeader(http.StatusCreated)
					io.WriteString(w, runJSON)
					return
				}
				io.WriteString(w, openGate)
			}))
			defer srv.Close()
			tt.opts.Server, tt.opts.Timeout = srv.URL, 5*time.Second
			c, err := New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Gate(context.Background(), "kill/pod"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.StartRun(context.Background(), "kill/pod"); err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 {
				t.Fatalf("%d requests, want 2", len(got))
			}
			for i, h := range got {
				if a := h.Values("Authorization"); tt.wantAuth == "" && len(a) != 0 || tt.wantAuth != "" && (len(a) != 1 || a[0] != tt.wantAuth) {
					t.Errorf("request %d: Authorization = %q, want %q", i, a, tt.wantAuth)
				}
				if v := h.Values(TokenHeader); tt.wantHeader == "" && len(v) != 0 || tt.wantHeader != "" && (len(v) != 1 || v[0] != tt.wantHeader) {
					t.Errorf("request %d: %s = %q, want %q", i, TokenHeader, v, tt.wantHeader)
				}
			}
		})
	}
	// The caller's struct is copied: changing it later changes nothing.
	ba := &BasicAuth{Username: "sre", Password: "hunter2"}
	c, err := New(Options{BasicAuth: ba})
	if err != nil {
		t.Fatal(err)
	}
	ba.Password = ""
	if c.basic.Password != "hunter2" {
		t.Error("the client shares the caller's BasicAuth")
	}
}

func TestNoNameOrID(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Gate(ctx, ""); err == nil {
		t.Error("Gate accepted an empty name")
	}
	if _, _, err := c.StartRun(ctx, ""); err == nil {
		t.Error("StartRun accepted an empty name")
	}
	if _, err := c.GetRun(ctx, ""); err == nil {
		t.Error("GetRun accepted an empty id")
	}
}

func TestTimelineValueNull(t *testing.T) {
	var e TimelineEntry
	if err := json.Unmarshal([]byte(`{"at":"2026-01-02T03:04:05Z","value":null,"verdict":"unknown"}`), &e); err != nil {
		t.Fatal(err)
	}
	if e.Value != nil {
		t.Errorf("value = %v, want nil", *e.Value)
	}
}
