package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStorageReadOnly: a storage.path on a read-only file system, empty or
// holding the runs of an earlier life, stops `slogate serve` at start with
// exit code 1 and a message naming storage.path and the read-only file
// system: it never serves a gate it could not back with stored runs. Once
// the file system is writable again the runs are all there.
//
// Like TestStorageFull it mounts a tmpfs, which needs root (CAP_SYS_ADMIN);
// where the mount is refused the test fails.
func TestStorageReadOnly(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=8m"); err != nil {
		t.Fatalf("cannot mount a tmpfs (%v): the read-only case needs root (CAP_SYS_ADMIN), as CI has", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	remount := func(flags uintptr) {
		t.Helper()
		if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_REMOUNT|flags, "size=8m"); err != nil {
			t.Fatalf("remount %s: %v", mnt, err)
		}
	}

	shop := startShop(t)
	data := filepath.Join(mnt, "data")
	srv := newServer(t, serverOptions{promURL: shop.prom.URL(), storage: data})

	serveFails := func(what string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := srv.Command(ctx)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("%s: slogate serve: %v, want exit status 1\n%s", what, err, out.String())
		}
		for _, want := range []string{"storage.path", data, "read-only file system"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: output does not name %q:\n%s", what, want, out.String())
			}
		}
	}

	// Empty and read-only.
	remount(syscall.MS_RDONLY)
	serveFails("empty read-only storage.path")

	// Writable: a run is stored; then read-only with the database in it.
	remount(0)
	srv.Start()
	srv.waitGate("the gate to open", 60*time.Second, http.StatusOK)
	var run runAnswer
	if code := srv.do("POST", "/api/v1/experiments/break-shop/runs", true, nil, &run); code != http.StatusCreated {
		t.Fatalf("start run: %d %+v", code, run)
	}
	srv.Stop()
	remount(syscall.MS_RDONLY)
	serveFails("storage.path with a database, read-only")

	remount(0)
	srv.Start()
	var stored runAnswer
	if code := srv.do("GET", "/api/v1/runs/"+run.ID, false, nil, &stored); code != http.StatusOK || stored.State != "running" {
		t.Fatalf("run after the read-only episode: %d %+v, want it still running", code, stored)
	}
	if g, code := srv.gate(); code == http.StatusOK || !g.hasReason("run-active") {
		t.Errorf("gate with the stored run active: %d %+v, want closed by the run", code, g)
	}
	t.Logf("RELIABILITY kind=storage-readonly cases=2 false_open=0")
}
