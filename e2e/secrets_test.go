package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/slogate/slogate/internal/faultproxy"
	"github.com/slogate/slogate/internal/testenv"
)

// The secrets of TestSecretsNeverLeak: distinctive strings, so that any
// occurrence anywhere is a leak.
const (
	secretBasicPass = "promBasicPass-4f9d1c"   // prometheus.http.basic_auth.password
	secretBearer    = "promBearer-8c2e7a"      // prometheus.http.authorization.credentials
	secretURLPass   = "promURLPass-1b6f3e"     // password in prometheus.url
	secretHeader    = "promHeaderKey-5a0d9b"   // prometheus.headers X-Api-Key
	secretAMPass    = "amURLPass-7e3c2f"       // password in alertmanager.urls
	secretWebPass   = "webBasicPass-2d8b4e"    // web.config-file basic auth (plain)
	secretToken     = "apiToken-9f1a6c-e2e"    // web.api-token-file
	secretWrongPass = "wrongWebPass-3c7e1d"    // a client's wrong basic-auth password
	secretCLIToken  = "cliOnlyToken-6b2f8a"    // a token only the CLI sends
	secretBadURL    = "badSchemePass-0e4d7c"   // password in an invalid prometheus.url
	secretBacktest  = "backtestURLPass-8a1f5b" // password in backtest's --prometheus.url
)

// TestSecretsNeverLeak runs `slogate serve` with every kind of credential
// it holds — Prometheus basic auth, bearer token, a password in the URL, a
// secret header, an Alertmanager URL password, the API token and web basic
// auth — against a Prometheus behind a proxy that fails in turn (401, 5xx,
// hanging past the timeout, connections reset, Prometheus killed), and
// collects everything slogate says: its log, every /api/* answer, /metrics,
// /health, /ping, the UI pages, reload and auth errors, and the output of
// the `gate`, `run`, `backtest` and `serve` commands succeeding and failing
// with those credentials (the web basic-auth password given to `gate` and
// `run` by file). None of the secrets (nor their base64 in a Basic header)
// appears anywhere.
func TestSecretsNeverLeak(t *testing.T) {
	shop := startShop(t)
	proxy := faultproxy.New(t, shop.prom.URL())
	rec := newAuthRecorder(t, proxy.URL())
	host := strings.TrimPrefix(rec.srv.URL, "http://")

	hash, err := bcrypt.GenerateFromPassword([]byte(secretWebPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := "basic_auth_users:\n  sre: " + string(hash) + "\n"
	amPort := testenv.FreePort(t) // nobody listens: every alert fails
	amURL := fmt.Sprintf("http://amuser:%s@127.0.0.1:%d", secretAMPass, amPort)

	// Three servers, one per way of authenticating to Prometheus: Go's
	// client sends the URL's user info in place of any configured auth, and
	// prometheus/common accepts one auth method at a time. The first two
	// require web basic auth for everything and the API token (in
	// X-Slogate-Token) for mutating calls; the third only the API token, as
	// a bearer token.
	variants := []struct {
		name, promURL, config string
		sent                  string // the Authorization header Prometheus must receive
		webAuth               bool
	}{
		{"basic auth", rec.srv.URL, "prometheus:\n  headers:\n    X-Api-Key: " + secretHeader +
			"\n  http:\n    basic_auth:\n      username: prom-user\n      password: " + secretBasicPass + "\n",
			"Basic " + base64.StdEncoding.EncodeToString([]byte("prom-user:"+secretBasicPass)), true},
		{"bearer", rec.srv.URL, "prometheus:\n  http:\n    authorization:\n      credentials: " + secretBearer + "\n",
			"Bearer " + secretBearer, true},
		{"URL user info", "http://urluser:" + secretURLPass + "@" + host, "",
			"Basic " + base64.StdEncoding.EncodeToString([]byte("urluser:"+secretURLPass)), false},
	}
	var servers []*secretServer
	for _, v := range variants {
		o := serverOptions{promURL: v.promURL, amURLs: []string{amURL}, token: secretToken, config: v.config, args: []string{"--prometheus.timeout=1s"}}
		if v.webAuth {
			o.webConfig, o.basicAuth = webConfig, [2]string{"sre", secretWebPass}
		}
		servers = append(servers, &secretServer{server: startServer(t, o), name: v.name, sent: v.sent, webAuth: v.webAuth})
	}
	for _, s := range servers {
		s.Eventually(60*time.Second, s.name+": the gate to open through the authenticating path", func() error {
			if code, body := s.get("/api/v1/experiments/break-shop/gate"); code != http.StatusOK {
				return fmt.Errorf("the gate answers %d %s", code, body)
			}
			return nil
		})
		if !rec.saw(s.sent) {
			t.Errorf("%s: Prometheus never received the configured credentials", s.name)
		}
	}
	if !rec.sawHeader(secretHeader) {
		t.Error("Prometheus never received the secret header")
	}

	var collected bytes.Buffer
	collectAll := func(phase string) {
		for _, s := range servers {
			s.collect(t, phase, &collected)
		}
	}
	collectAll("healthy")

	// gate and run succeeding with web basic auth, the password from a file
	// and the token in X-Slogate-Token.
	cliDir := t.TempDir()
	passFile := filepath.Join(cliDir, "web-password")
	if err := os.WriteFile(passFile, []byte(secretWebPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := servers[0].TokenPath()
	webAuthArgs := []string{"--server", servers[0].URL(), "--basic-auth-user", "sre", "--basic-auth-password-file", passFile}
	for _, args := range [][]string{
		append([]string{"gate", "break-shop", "--token-file", tokenFile}, webAuthArgs...),
		append(append([]string{"run", "break-shop", "--token-file", tokenFile}, webAuthArgs...), "--", "true"),
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(ctx, slogateBinary(t), args...).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("slogate %s with web basic auth and the token: %v\n%s", args[0], err, out)
		}
		fmt.Fprintf(&collected, "\n== slogate %s (%v)\n%s", strings.Join(redactArgs(args), " "), err, out)
	}

	faults := []struct {
		name    string
		inject  func()
		recover func()
	}{
		{"401", func() {
			proxy.Status(http.StatusUnauthorized, `{"status":"error","errorType":"unauthorized","error":"bad credentials"}`)
		}, proxy.Pass},
		{"503", func() { proxy.Status(http.StatusServiceUnavailable, "upstream unavailable") }, proxy.Pass},
		{"hanging past the timeout", proxy.Hang, proxy.Pass},
		{"connections reset", proxy.Drop, proxy.Pass},
		{"Prometheus killed", shop.prom.Kill, func() { shop.prom.Restart(t) }},
	}
	for _, f := range faults {
		f.inject()
		for _, s := range servers {
			s.Eventually(30*time.Second, s.name+": the gate to close during "+f.name, func() error {
				if code, body := s.get("/api/v1/experiments/break-shop/gate"); code != http.StatusServiceUnavailable {
					return fmt.Errorf("the gate answers %d %s", code, body)
				}
				return nil
			})
		}
		// A few more evaluations, so that errors are logged and shown.
		for _, s := range servers {
			s.WaitEvaluations(2, 30*time.Second)
		}
		collectAll(f.name)
		f.recover()
	}

	// The commands that talk to the server or to Prometheus, failing with
	// the credentials on their command line.
	srv := servers[0].server
	hostPort := strings.TrimPrefix(srv.URL(), "http://")
	closed := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	defs := srv.DefinitionsPath()
	badConfig := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(badConfig, []byte("prometheus:\n  url: ftp://u:"+secretBadURL+"@"+closed+"\n  headers:\n    X-Api-Key: "+secretHeader+
		"\n  http:\n    basic_auth:\n      username: u\n      password: "+secretBasicPass+"\n    authorization:\n      credentials: "+secretBearer+
		"\nevaluation:\n  interval: 7s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongPassFile := filepath.Join(cliDir, "wrong-password")
	twoLinesFile := filepath.Join(cliDir, "two-lines")
	if err := os.WriteFile(wrongPassFile, []byte(secretWrongPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(twoLinesFile, []byte(secretWebPass+"\n"+secretWrongPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	commands := [][]string{
		{"gate", "break-shop", "--server", srv.URL(), "--token", secretCLIToken},                                      // 401 from web basic auth
		{"gate", "break-shop", "--server", "http://sre:" + secretWebPass + "@" + hostPort, "--token", secretCLIToken}, // user info refused
		{"gate", "break-shop", "--server", srv.URL(), "--basic-auth-user", "sre", "--basic-auth-password-file", wrongPassFile, "--token", secretCLIToken},
		{"gate", "break-shop", "--server", srv.URL(), "--basic-auth-user", "sre", "--basic-auth-password-file", twoLinesFile},
		{"gate", "break-shop", "--server", srv.URL(), "--basic-auth-user", "sre", "--basic-auth-password-file", passFile, "--token", secretCLIToken}, // gate unknown: Prometheus answers 401
		{"run", "break-shop", "--server", srv.URL(), "--basic-auth-user", "sre", "--basic-auth-password-file", passFile, "--token", secretCLIToken, "--", "true"},
		{"run", "break-shop", "--server", srv.URL(), "--basic-auth-user", "sre", "--basic-auth-password-file", passFile, "--token-file", tokenFile, "--", "true"},
		{"gate", "break-shop", "--server", "http://" + closed, "--token", secretCLIToken}, // nobody there
		{"run", "break-shop", "--server", srv.URL(), "--token", secretCLIToken, "--", "true"},
		{"backtest", defs, "--from", "-1h", "--prometheus.url", "http://u:" + secretBacktest + "@" + closed},
		{"backtest", defs, "--from", "-1h", "--prometheus.url", "ftp://u:" + secretBacktest + "@" + closed},
		{"serve", "--config", badConfig, "--definitions", defs, "--web.listen-address", closed},
	}
	proxy.Status(http.StatusUnauthorized, "Unauthorized")
	commands = append(commands, []string{"backtest", defs, "--from", "-1h", "--prometheus.url", "http://u:" + secretBacktest + "@" + host})
	for _, args := range commands {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(ctx, slogateBinary(t), args...).CombinedOutput()
		cancel()
		if err == nil {
			t.Errorf("slogate %s succeeded, want it to fail", args[0])
		}
		fmt.Fprintf(&collected, "\n== slogate %s (%v)\n%s", strings.Join(redactArgs(args), " "), err, out)
		if len(bytes.TrimSpace(out)) == 0 {
			t.Errorf("slogate %s failed without saying why", args[0])
		}
	}
	proxy.Pass()

	// The logs, shutdown included.
	for _, s := range servers {
		s.Stop()
		b, err := os.ReadFile(s.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("127.0.0.1:"+fmt.Sprint(amPort))) {
			t.Errorf("%s: the log says nothing about the unreachable Alertmanager: the failures it must not leak from were not exercised", s.name)
		}
		fmt.Fprintf(&collected, "\n== log of %s\n%s", s.name, b)
	}

	secrets := []string{secretBasicPass, secretBearer, secretURLPass, secretHeader, secretAMPass, secretWebPass,
		secretToken, secretWrongPass, secretCLIToken, secretBadURL, secretBacktest, string(hash)}
	for _, v := range variants {
		secrets = append(secrets, strings.TrimPrefix(strings.TrimPrefix(v.sent, "Basic "), "Bearer "))
	}
	secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte("sre:"+secretWebPass)))
	text := collected.String()
	leaks := 0
	for _, s := range secrets {
		if i := strings.Index(text, s); i >= 0 {
			leaks++
			from, to := max(0, i-300), min(len(text), i+len(s)+100)
			t.Errorf("secret %q leaked:\n...%s...", s, text[from:to])
		}
	}
	t.Logf("RELIABILITY kind=secrets secrets=%d prometheus_faults=%d responses=%d commands=%d bytes_scanned=%d leaks=%d",
		len(secrets), len(faults), servers[0].responses+servers[1].responses+servers[2].responses, len(commands), len(text), leaks)
}

// redactArgs hides the secrets in a command line, for the collected text
// (the arguments themselves are not slogate's output).
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if u, err := url.Parse(a); err == nil && u.User != nil {
			a = u.Redacted()
		}
		if a == secretCLIToken {
			a = "<token>"
		}
		out[i] = a
	}
	return out
}

// secretServer is one of the servers of TestSecretsNeverLeak.
type secretServer struct {
	*server
	name      string
	sent      string
	webAuth   bool // web basic auth required for everything
	responses int
}

var secretClient = &http.Client{Timeout: 10 * time.Second}

// request sends a request with the web basic-auth credentials user:pass
// (none if user is empty) and the API token (none if empty): a bearer
// token, or in X-Slogate-Token beside basic auth, as the client sends it.
func (s *secretServer) request(method, path, user, pass, token string) (int, []byte) {
	req, err := http.NewRequest(method, s.URL()+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	switch {
	case user != "":
		req.SetBasicAuth(user, pass)
		if token != "" {
			req.Header.Set("X-Slogate-Token", token)
		}
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := secretClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error()) // not up yet, or gone
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	s.responses++
	return resp.StatusCode, b
}

// get is an authorized GET.
func (s *secretServer) get(path string) (int, []byte) {
	if s.webAuth {
		return s.request(http.MethodGet, path, "sre", secretWebPass, "")
	}
	return s.request(http.MethodGet, path, "", "", "")
}

// post is a mutating call as this server accepts it: with the token, and
// basic auth if required.
func (s *secretServer) post(path string) (int, []byte) {
	if s.webAuth {
		return s.request(http.MethodPost, path, "sre", secretWebPass, secretToken)
	}
	return s.request(http.MethodPost, path, "", "", secretToken)
}

// collect fetches every page and API answer, successful or not, into out.
func (s *secretServer) collect(t *testing.T, phase string, out *bytes.Buffer) {
	t.Helper()
	add := func(what string, code int, body []byte) {
		if code == 0 {
			t.Errorf("%s %s %s: no answer: %s", s.name, phase, what, body)
		}
		fmt.Fprintf(out, "\n== %s %s %s: %d\n%s", s.name, phase, what, code, body)
	}
	paths := []string{
		"/api/v1/slos", "/api/v1/slos/shop-availability", "/api/v1/hypotheses", "/api/v1/hypotheses/shop-steady",
		"/api/v1/experiments", "/api/v1/experiments/break-shop/gate", "/api/v1/experiments/break-shop/runs",
		"/api/v1/runs", "/api/v1/runs/no-such-run", "/api/v1/no-such-endpoint", "/metrics", "/health", "/ping",
		"/-/ready", "/-/healthy", "/", "/slos", "/slos/shop-availability", "/hypotheses", "/runs",
	}
	for _, p := range paths {
		code, body := s.get(p)
		add("GET "+p, code, body)
	}
	// Refused: no credentials, a wrong password, a wrong token, the token
	// where basic auth is wanted.
	for _, c := range []struct{ method, user, pass, token string }{
		{http.MethodGet, "", "", ""}, {http.MethodGet, "sre", secretWrongPass, ""}, {http.MethodGet, "", "", secretToken},
		{http.MethodPost, "", "", secretWrongPass}, {http.MethodPost, "", "", ""}, {http.MethodPost, "sre", secretWebPass, ""},
		{http.MethodPost, "sre", secretWebPass, secretWrongPass},
	} {
		code, body := s.request(c.method, "/api/v1/experiments/break-shop/runs", c.user, c.pass, c.token)
		add(c.method+" runs, maybe refused", code, body)
	}
	if s.webAuth {
		// Each credential alone is refused: the token without basic auth,
		// basic auth with a wrong password and the right token.
		for _, c := range []struct{ user, pass, token string }{{"", "", secretToken}, {"sre", secretWrongPass, secretToken}} {
			code, body := s.request(http.MethodPost, "/api/v1/experiments/break-shop/runs", c.user, c.pass, c.token)
			add("POST runs, refused", code, body)
			if code != http.StatusUnauthorized {
				t.Errorf("%s %s: POST runs with one credential of two: %d, want 401", s.name, phase, code)
			}
		}
	}
	// A run start (refused or not, its answer and the run it made are
	// collected) and a reload.
	code, body := s.post("/api/v1/experiments/break-shop/runs")
	add("POST runs", code, body)
	if phase == "healthy" && code != http.StatusCreated {
		t.Errorf("%s: POST runs with every credential the server wants: %d %s, want 201", s.name, code, body)
	}
	if code == http.StatusCreated {
		var run runAnswer
		if err := json.Unmarshal(body, &run); err != nil {
			t.Fatalf("run start: %s: %v", body, err)
		}
		for _, p := range []string{"/api/v1/runs/" + run.ID, "/runs/" + run.ID, "/api/v1/runs/" + run.ID + "/wait?timeout=1s"} {
			c, b := s.get(p)
			add("GET "+p, c, b)
		}
		c, b := s.post("/api/v1/runs/" + run.ID + "/abort")
		add("POST abort", c, b)
	}
	code, body = s.post("/-/reload")
	add("POST /-/reload", code, body)
	if code != http.StatusOK {
		t.Errorf("%s %s: POST /-/reload with every credential the server wants: %d %s, want 200", s.name, phase, code, body)
	}
}

// authRecorder is a reverse proxy in front of the fault proxy that
// remembers the credentials slogate sent, to prove they were in use.
type authRecorder struct {
	srv *httptest.Server

	mu      sync.Mutex
	auth    map[string]bool
	headers map[string]bool
}

func newAuthRecorder(t *testing.T, upstream string) *authRecorder {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	r := &authRecorder{auth: map[string]bool{}, headers: map[string]bool{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{DisableKeepAlives: true}
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) {
		// The fault proxy reset the connection: do the same.
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		}
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.auth[req.Header.Get("Authorization")] = true
		r.headers[req.Header.Get("X-Api-Key")] = true
		r.mu.Unlock()
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *authRecorder) saw(auth string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.auth[auth]
}

func (r *authRecorder) sawHeader(v string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.headers[v]
}
