package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slogate/slogate/internal/testenv"
)

// unit is a parsed systemd unit file: section → key → values in order
// (keys such as SystemCallFilter may be given several times).
type unit map[string]map[string][]string

// parseUnit reads the ini-like syntax of systemd units: [Section] headers,
// Key=Value lines, # and ; comments, and a trailing backslash continuing a
// line. Anything else is an error, since systemd would ignore it with no
// more than a log line.
func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	var pending string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if pending != "" {
			line, pending = pending+" "+line, ""
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			pending = s
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("%s:%d: %q is neither a [Section] nor a Key=Value in a section", path, n, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		u[section][k] = append(u[section][k], v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// last is the effective value of a key that systemd overrides by
// repetition.
func (u unit) last(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

func isTrue(v string) bool { return slices.Contains([]string{"yes", "true", "on", "1"}, v) }

func TestSystemdUnit(t *testing.T) {
	path := filepath.Join("systemd", "slogate.service")
	u := parseUnit(t, path)
	for _, s := range []string{"Unit", "Service", "Install"} {
		if u[s] == nil {
			t.Errorf("%s: no [%s] section", path, s)
		}
	}
	want := map[string]string{
		"User":           "slogate",
		"ProtectSystem":  "strict",
		"Restart":        "on-failure",
		"ExecReload":     "/bin/kill -HUP $MAINPID",
		"ReadWritePaths": "/var/lib/slogate",
		"StateDirectory": "slogate",
	}
	for k, v := range want {
		if got := u.last("Service", k); got != v {
			t.Errorf("%s: [Service] %s=%q, want %q", path, k, got, v)
		}
	}
	for _, k := range []string{"NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"} {
		if !isTrue(u.last("Service", k)) {
			t.Errorf("%s: [Service] %s is not on", path, k)
		}
	}
	if got := u.last("Install", "WantedBy"); got != "multi-user.target" {
		t.Errorf("%s: [Install] WantedBy=%q, want multi-user.target", path, got)
	}

	// ExecStart runs serve with the configuration, and the binary accepts
	// the flags.
	exec0 := strings.Fields(u.last("Service", "ExecStart"))
	if len(exec0) < 3 || filepath.Base(exec0[0]) != "slogate" || exec0[1] != "serve" || !slices.Contains(exec0, "--config=/etc/slogate/slogate.yaml") {
		t.Fatalf("%s: ExecStart=%q, want slogate serve --config=/etc/slogate/slogate.yaml", path, exec0)
	}
	bin := testenv.SlogateBinary(t)
	help, err := exec.Command(bin, append(exec0[1:2], "--help")...).CombinedOutput()
	if err != nil {
		t.Fatalf("slogate serve --help: %v\n%s", err, help)
	}
	for _, arg := range exec0[2:] {
		flag, _, _ := strings.Cut(arg, "=")
		if strings.HasPrefix(flag, "--") && !strings.Contains(string(help), flag+" ") {
			t.Errorf("%s: ExecStart flag %s is not a flag of slogate serve", path, flag)
		}
	}
}
