package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slogate/slogate/client"
)

// TestClientBasicAuth drives gate and run against a server that wants
// basic auth on every request and the token on the calls that change
// runs, as slogate serve with web.config-file basic auth and
// web.api-token-file does.
func TestClientBasicAuth(t *testing.T) {
	const password = "hunter2-pw-7c1e"
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	passFile := write("password", password+"\n")
	crlfFile := write("password-crlf", "  "+password+"\r\n")
	emptyFile := write("empty", " \n")
	twoLines := write("two-lines", password+"\nsecond line\n")
	wrongFile := write("wrong", "not-the-password\n")
	tokenFile := write("token", "s3cret\n")
	missing := filepath.Join(dir, "nope")
	tests := []struct {
		name       string
		flags      []string
		env        map[string]string
		wantCode   int
		wantStderr string
	}{
		{name: "flags", flags: []string{"--basic-auth-user", "sre", "--basic-auth-password-file", passFile, "--token-file", tokenFile}},
		{name: "env", env: map[string]string{envBasicAuthUser: "sre", envBasicAuthPassFile: passFile, envTokenFile: tokenFile}},
		{name: "user flag, password file from env", flags: []string{"--basic-auth-user", "sre"}, env: map[string]string{envBasicAuthPassFile: passFile, envToken: "s3cret"}},
		{name: "flag wins over env", flags: []string{"--basic-auth-password-file", passFile, "--token", "s3cret"},
			env: map[string]string{envBasicAuthUser: "sre", envBasicAuthPassFile: missing}},
		{name: "white space around the password", flags: []string{"--basic-auth-user", "sre", "--basic-auth-password-file", crlfFile, "--token", "s3cret"}},
		{name: "no basic auth", flags: []string{"--token", "s3cret"}, wantCode: 4,
			wantStderr: "401 Unauthorized: Unauthorized (set --token or --token-file; for a server with basic auth, --basic-auth-user and --basic-auth-password-file)"},
		{name: "wrong password", flags: []string{"--basic-auth-user", "sre", "--basic-auth-password-file", wrongFile, "--token", "s3cret"}, wantCode: 4,
			wantStderr: "401 Unauthorized"},
		{name: "no token", flags: []string{"--basic-auth-user", "sre", "--basic-auth-password-file", passFile}, wantCode: 4,
			wantStderr: "401 Unauthorized: missing or wrong bearer token"},
		{name: "user without password", flags: []string{"--basic-auth-user", "sre", "--token", "s3cret"}, wantCode: 4,
			wantStderr: "slogate: --basic-auth-user sre: no password; set --basic-auth-password-file (or SLOGATE_BASIC_AUTH_PASSWORD_FILE)\n"},
		{name: "user from env without password", env: map[string]string{envBasicAuthUser: "sre"}, wantCode: 4,
			wantStderr: "slogate: SLOGATE_BASIC_AUTH_USER sre: no password; set --basic-auth-password-file (or SLOGATE_BASIC_AUTH_PASSWORD_FILE)\n"},
		{name: "password without user", flags: []string{"--basic-auth-password-file", passFile}, wantCode: 4,
			wantStderr: "slogate: --basic-auth-password-file " + passFile + ": no user; set --basic-auth-user (or SLOGATE_BASIC_AUTH_USER)\n"},
		{name: "missing password file", flags: []string{"--basic-auth-user", "sre", "--basic-auth-password-file", missing}, wantCode: 4,
			wantStderr: "slogate: --basic-auth-password-file: open " + missing + ": no such file or directory\n"},
		{name: "missing password file from env", env: map[string]string{envBasicAuthUser: "sre", envBasicAuthPassFile: missing}, wantCode: 4,
			wantStderr: "slogate: SLOGATE_BASIC_AUTH_PASSWORD_FILE: open " + missing + ": no such file or directory\n"},
		{name: "password file is a directory", flags: []string{"--basic-auth-user", "sre", "--basic-auth-password-file", dir}, wantCode: 4,
			wantStderr: "slogate: --basic-auth-password-file: read " + dir + ": is a directory\n"},
		{name: "empty password file", flags: []string{"--basic-auth-user", "sre", "--basic-auth-password-file", emptyFile}, wantCode: 4,
			wantStderr: "slogate: --basic-auth-password-file: " + emptyFile + " is empty\n"},
		{name: "two-line password file", flags: []string{"--basic-auth-user", "sre", "--basic-auth-password-file", twoLines}, wantCode: 4,
			wantStderr: "slogate: --basic-auth-password-file: " + twoLines + " has more than one line; the password must be its only line\n"},
		{name: "colon in the user", flags: []string{"--basic-auth-user", "s:re", "--basic-auth-password-file", passFile}, wantCode: 4,
			wantStderr: "slogate: --basic-auth-user: a user name cannot contain ':' or line breaks\n"},
	}
	for _, tt := range tests {
		for _, cmd := range []string{"gate", "run"} {
			t.Run(tt.name+"/"+cmd, func(t *testing.T) {
				for _, k := range []string{envToken, envTokenFile, envServer, envBasicAuthUser, envBasicAuthPassFile} {
					t.Setenv(k, tt.env[k])
				}
				f := newFakeAPI(t)
				f.mu.Lock()
				f.token, f.basicAuth = "s3cret", "sre:"+password
				f.mu.Unlock()
				f.setGate(experiment, client.StatusOpen)
				args := append([]string{cmd, experiment, "--server", f.srv.URL}, tt.flags...)
				if cmd == "run" {
					args = append(args, "--", "true")
				}
				res := runCLI(t, args...)
				wantCode, wantStderr := tt.wantCode, tt.wantStderr
				if cmd == "gate" && strings.Contains(wantStderr, "bearer token") {
					// The gate is a GET: basic auth is enough.
					wantCode, wantStderr = 0, ""
				}
				if res.code != wantCode {
					t.Errorf("exit %d, want %d", res.code, wantCode)
				}
				switch {
				case wantStderr == "" && cmd == "gate":
					if res.stderr != "" || res.stdout != "gate "+experiment+": open\n" {
						t.Errorf("stdout %q, stderr %q; want the open gate", res.stdout, res.stderr)
					}
				case wantStderr == "":
					assertContains(t, "stderr", res.stderr, "run run-1 passed")
				case strings.HasSuffix(wantStderr, "\n"):
					if res.stderr != wantStderr {
						t.Errorf("stderr %q, want %q", res.stderr, wantStderr)
					}
				default:
					assertContains(t, "stderr", res.stderr, wantStderr)
				}
				if strings.Contains(res.stdout+res.stderr, password) {
					t.Errorf("the password is in the output")
				}
				if wantCode == 0 && cmd == "run" && f.count().finishes != 1 {
					t.Errorf("%d finishes, want 1", f.count().finishes)
				}
			})
		}
	}
}

// TestClientFlagsHelp checks that gate and run document the basic-auth
// flags and offer no flag that would put a password on the command line.
func TestClientFlagsHelp(t *testing.T) {
	for _, cmd := range []string{"gate", "run"} {
		res := runCLI(t, cmd, "--help")
		if res.code != 0 {
			t.Errorf("%s --help: exit %d", cmd, res.code)
		}
		assertContains(t, cmd+" --help", res.stdout, "--basic-auth-user", "--basic-auth-password-file", envBasicAuthUser, envBasicAuthPassFile, client.TokenHeader)
		if strings.Contains(res.stdout, "--basic-auth-password ") || strings.Contains(res.stdout, "--password") {
			t.Errorf("%s --help offers a password flag:\n%s", cmd, res.stdout)
		}
	}
}
