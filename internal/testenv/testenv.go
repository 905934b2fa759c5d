// Package testenv starts the real parts that slogate talks to in production
// — Prometheus, Alertmanager, a scrape target the test controls, and
// promtool-backfilled history — as child processes on free loopback ports,
// for integration and end-to-end tests.
//
// The binaries are the pinned versions that `make tools` builds into the
// repository's .bin/ directory (see DESIGN.md, "Tests with real parts"). A
// missing binary fails the test; it never skips it, so that a green run
// means the integration tests ran.
//
// Every child is stopped in t.Cleanup (SIGTERM, then SIGKILL), and on Linux
// it is also killed by the kernel when the test binary dies, so a panic or a
// `go test -timeout` leaves no orphan server behind.
package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// BinDirEnv names the environment variable that points at the directory
// holding prometheus, promtool, alertmanager and amtool. `make test` sets it
// to the repository's .bin/.
const BinDirEnv = "SLOGATE_BIN_DIR"

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. The
// listener is closed before returning, so another process may take the port
// in between; StartPrometheus and StartAlertmanager retry with a new port
// when that happens.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	return port
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func loopbackAddr(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// RepoRoot returns the directory of the go.mod enclosing the working
// directory (a test runs in its package's directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return root
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Binary returns the path of one of the pinned tools (prometheus, promtool,
// alertmanager, amtool), looked up in $SLOGATE_BIN_DIR, then in the
// repository's .bin/, then in $PATH. It fails the test if none has it.
func Binary(t testing.TB, name string) string {
	t.Helper()
	path, err := findBinary(name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return path
}

func findBinary(name string) (string, error) {
	var tried []string
	var dirs []string
	if dir := os.Getenv(BinDirEnv); dir != "" {
		dirs = append(dirs, dir)
	}
	if root, err := repoRoot(); err == nil {
		dirs = append(dirs, filepath.Join(root, ".bin"))
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, name)
		if isExecutable(path) {
			return path, nil
		}
		tried = append(tried, path)
	}
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	tried = append(tried, "$PATH")
	return "", fmt.Errorf("%s binary not found (looked in %v): run `make tools` to build the pinned Prometheus and Alertmanager into .bin/, or set %s", name, tried, BinDirEnv)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
