package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStoragePathUnusable: a storage.path that cannot be a directory stops
// `slogate serve` at start, with exit code 1 and a message naming
// storage.path, before it serves anything.
func TestStoragePathUnusable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	defs := filepath.Join(dir, "definitions.yaml")
	for path, content := range map[string]string{file: "not a directory\n", defs: definitions} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ name, path string }{
		{"below a regular file", filepath.Join(file, "data")},
		{"a regular file", file},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, slogateBinary(t), "serve",
				"--definitions="+defs, "--storage.path="+tc.path,
				// Never reached: the store is opened before anything listens
				// or queries.
				"--prometheus.url=http://127.0.0.1:9", "--web.listen-address=127.0.0.1:0")
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stderr, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("slogate serve: %v, want exit status 1\n%s", err, stderr.String())
			}
			out := stderr.String()
			for _, want := range []string{"storage.path", tc.path, "not a directory"} {
				if !strings.Contains(out, want) {
					t.Errorf("output does not name %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestStorageFull: with storage.path on a full file system, starting a run
// answers a JSON 5xx (not a 201 for a run that was never stored), the gate
// is not open while runs cannot be stored, the service stays up, and all is
// well again once there is room.
//
// The full disk is a small tmpfs mounted by the test, which needs root (or
// CAP_SYS_ADMIN), as CI has; where the mount is refused the test fails
// rather than pretend the full-disk case was checked.
func TestStorageFull(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("cannot mount a tmpfs to fill (%v): the full-disk case needs root (CAP_SYS_ADMIN), as CI has", err)
	}
	shop := startShop(t)
	srv := newServer(t, serverOptions{promURL: shop.prom.URL(), storage: filepath.Join(mnt, "data")})
	// Stopped before the unmount (cleanups run last first), even if the
	// start fails.
	t.Cleanup(func() {
		srv.Stop()
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	srv.Start()
	srv.waitGate("the gate to open", 60*time.Second, http.StatusOK)

	filler := filepath.Join(mnt, "filler")
	fill(t, filler)

	var failed runAnswer
	code := srv.do("POST", "/api/v1/experiments/break-shop/runs", true, nil, &failed)
	if code < 500 || failed.ID != "" || !strings.Contains(failed.Error, "no space left on device") {
		t.Fatalf("start on a full disk: %d %+v, want a 5xx JSON error saying the disk is full", code, failed)
	}
	var runs struct{ Runs []runAnswer }
	if srv.do("GET", "/api/v1/runs", false, nil, &runs); len(runs.Runs) != 0 {
		t.Errorf("runs after a start that failed: %+v, want none", runs.Runs)
	}
	// Several evaluations, each checking the store again: the gate must
	// stay shut while the disk is full.
	from := srv.evaluations()
	srv.Eventually(30*time.Second, "4 evaluations with the disk full", func() error {
		g, code := srv.gate()
		if code == http.StatusOK || g.Status == "open" || !g.hasReason("run-active") {
			t.Fatalf("gate while runs cannot be stored: %d %+v, want not open, with the reason", code, g)
		}
		if n := srv.evaluations(); n < from+4 {
			return fmt.Errorf("%v evaluations so far", n-from)
		}
		return nil
	})
	if srv.Exited() {
		t.Fatal("slogate exited on a full disk")
	}
	if code, _, err := srv.Try("GET", "/health", nil, false); err != nil || code != http.StatusOK {
		t.Fatalf("/health on a full disk: %d %v, want 200", code, err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	srv.waitGate("the gate to open once there is room", 20*time.Second, http.StatusOK)
	var run runAnswer
	if code := srv.do("POST", "/api/v1/experiments/break-shop/runs", true, nil, &run); code != http.StatusCreated {
		t.Fatalf("start once there is room: %d %+v", code, run)
	}
	var stored runAnswer
	if code := srv.do("GET", "/api/v1/runs/"+run.ID, false, nil, &stored); code != http.StatusOK || stored.State != "running" {
		t.Fatalf("the run started once there is room: %d %+v", code, stored)
	}
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", path, err)
			}
			return
		}
	}
}
