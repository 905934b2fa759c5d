package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestBasicAuthWithToken serves with TLS, basic auth and the API token all
// set, and drives the server through the real `slogate gate` and `slogate
// run`: basic auth goes in the Authorization header, the token in
// X-Slogate-Token. A mutating call lacking either is refused.
func TestBasicAuthWithToken(t *testing.T) {
	shop := startShop(t)
	certPath, keyPath, pool := selfSigned(t)
	const user, password = "sre", "basicPass-e2e-41c9"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := "tls_server_config:\n  cert_file: " + certPath + "\n  key_file: " + keyPath +
		"\nbasic_auth_users:\n  " + user + ": " + string(hash) + "\n"
	srv := startServer(t, serverOptions{promURL: shop.prom.URL(), webConfig: webConfig,
		tls: &tls.Config{RootCAs: pool}, basicAuth: [2]string{user, password}})
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	// call sends a request with basic auth (if basic) and the token in
	// header (if not empty) and returns the status and body.
	call := func(method, path string, basic bool, header string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if basic {
			req.SetBasicAuth(user, password)
		}
		switch header {
		case "Authorization":
			req.Header.Set("Authorization", "Bearer "+srv.Token())
		case "X-Slogate-Token":
			req.Header.Set("X-Slogate-Token", srv.Token())
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	srv.Eventually(60*time.Second, "the gate to open over TLS with basic auth", func() error {
		if code, body := call(http.MethodGet, "/api/v1/experiments/break-shop/gate", true, ""); code != http.StatusOK {
			return fmt.Errorf("the gate answers %d %s", code, body)
		}
		return nil
	})
	if url := startedURL(t, srv.LogPath()); url != srv.URL() {
		t.Errorf("serve logged its URL as %q, want %q", url, srv.URL())
	}

	// Refused: the token without basic auth (exporter-toolkit refuses it,
	// in either header), basic auth without the token, a wrong token.
	for _, c := range []struct {
		name   string
		basic  bool
		header string
	}{
		{"bearer token, no basic auth", false, "Authorization"},
		{"token header, no basic auth", false, "X-Slogate-Token"},
		{"basic auth, no token", true, ""},
	} {
		for _, path := range []string{"/api/v1/experiments/break-shop/runs", "/-/reload"} {
			code, body := call(http.MethodPost, path, c.basic, c.header)
			if code != http.StatusUnauthorized {
				t.Errorf("%s: POST %s: %d %s, want 401", c.name, path, code, body)
			}
			if c.basic && !strings.Contains(body, "X-Slogate-Token") {
				t.Errorf("%s: POST %s: the 401 does not say where the token goes: %s", c.name, path, body)
			}
		}
	}
	var runs struct{ Runs []runAnswer }
	if code, body := call(http.MethodGet, "/api/v1/runs", true, ""); code != http.StatusOK || json.Unmarshal([]byte(body), &runs) != nil || len(runs.Runs) != 0 {
		t.Fatalf("runs after refused starts: %d %s, want none", code, body)
	}
	if code, body := call(http.MethodPost, "/-/reload", true, "X-Slogate-Token"); code != http.StatusOK {
		t.Errorf("POST /-/reload with basic auth and the token header: %d %s", code, body)
	}

	// The CLI: the password and the token from files, the certificate
	// trusted through SSL_CERT_FILE.
	dir := t.TempDir()
	passFile := filepath.Join(dir, "password")
	if err := os.WriteFile(passFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := srv.TokenPath()
	cli := func(env []string, args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, slogateBinary(t), args...)
		cmd.Env = append(os.Environ(), append(env, "SSL_CERT_FILE="+certPath)...)
		out, err := cmd.CombinedOutput()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatalf("slogate %s: %v", args[0], err)
		}
		if bytes.Contains(out, []byte(password)) {
			t.Errorf("slogate %s printed the basic-auth password:\n%s", args[0], out)
		}
		return code, string(out)
	}
	auth := []string{"--server", srv.URL(), "--basic-auth-user", user, "--basic-auth-password-file", passFile, "--token-file", tokenFile}
	if code, out := cli(nil, append([]string{"gate", "break-shop"}, auth...)...); code != 0 || !strings.Contains(out, "gate break-shop: open") {
		t.Fatalf("slogate gate with basic auth: exit %d, want 0 and an open gate:\n%s", code, out)
	}
	if code, out := cli(nil, "gate", "break-shop", "--server", srv.URL()); code != 4 || !strings.Contains(out, "401 Unauthorized") || !strings.Contains(out, "--basic-auth-user") {
		t.Errorf("slogate gate without basic auth: exit %d, want 4 and a 401 naming the basic-auth flags:\n%s", code, out)
	}
	// Without the token, basic auth passes and the start is refused.
	if code, out := cli(nil, "run", "break-shop", "--server", srv.URL(), "--basic-auth-user", user, "--basic-auth-password-file", passFile, "--", "true"); code != 4 || !strings.Contains(out, "401 Unauthorized") || !strings.Contains(out, "web.api-token-file") {
		t.Errorf("slogate run without the token: exit %d, want 4 and the server's 401:\n%s", code, out)
	}
	// The credentials from the environment this time.
	env := []string{"SLOGATE_SERVER=" + srv.URL(), "SLOGATE_BASIC_AUTH_USER=" + user, "SLOGATE_BASIC_AUTH_PASSWORD_FILE=" + passFile, "SLOGATE_TOKEN_FILE=" + tokenFile}
	code, out := cli(env, "run", "break-shop", "--", "sleep", "2")
	if code != 0 || !strings.Contains(out, "passed") {
		t.Fatalf("slogate run with basic auth and the token: exit %d, want 0 (passed):\n%s", code, out)
	}
	if code, body := call(http.MethodGet, "/api/v1/experiments/break-shop/runs", true, ""); code != http.StatusOK || json.Unmarshal([]byte(body), &runs) != nil ||
		len(runs.Runs) != 1 || runs.Runs[0].State != "passed" {
		t.Fatalf("runs: %d %s, want the one run, passed", code, body)
	}
}

// TestBasicAuthWithoutTLSSaysHTTP serves with a web config file that sets
// basic auth only: the server speaks plain HTTP, and says so in the URL it
// logs (and puts in alert links).
func TestBasicAuthWithoutTLSSaysHTTP(t *testing.T) {
	shop := startShop(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// Ready means /ping answered plain HTTP with basic auth.
	srv := startServer(t, serverOptions{promURL: shop.prom.URL(), webConfig: "basic_auth_users:\n  sre: " + string(hash) + "\n", basicAuth: [2]string{"sre", "pw"}})
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+"/health", nil)
	req.SetBasicAuth("sre", "pw")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("/health over plain HTTP with basic auth: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/health over plain HTTP with basic auth: %d, want 200", resp.StatusCode)
	}
	if !strings.HasPrefix(srv.URL(), "http://") {
		t.Fatalf("test server URL %s", srv.URL())
	}
	if url := startedURL(t, srv.LogPath()); url != srv.URL() {
		t.Errorf("serve logged its URL as %q, want %q", url, srv.URL())
	}
}

// startedURL is the URL of serve's "slogate started" log line.
func startedURL(t *testing.T, logPath string) string {
	t.Helper()
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct{ Msg, URL string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "slogate started" {
			return line.URL
		}
	}
	t.Fatalf("no \"slogate started\" line in %s", logPath)
	return ""
}
