package e2e

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// TestStorageMigrate moves the runs of a bbolt replica to PostgreSQL with
// `slogate storage migrate`, twice: the first copy takes them all, the
// second none; a replica on PostgreSQL then serves them with the same IDs,
// states and timelines, and supervises the one still running.
func TestStorageMigrate(t *testing.T) {
	shop := startShop(t)
	old := startServer(t, serverOptions{promURL: shop.prom.URL()})
	old.waitGate("the gate opens", 60*time.Second, http.StatusOK)
	var aborted, running haRun
	if code := old.do("POST", "/api/v1/experiments/break-shop/runs", true, nil, &aborted); code != http.StatusCreated {
		t.Fatalf("start: %d", code)
	}
	old.Eventually(30*time.Second, "measurements", func() error {
		if r, _ := old.run(aborted.ID); len(r.Timeline) < 2 {
			return errors.New("no measurements yet")
		}
		return nil
	})
	if code := old.do("POST", "/api/v1/runs/"+aborted.ID+"/abort", true, strings.NewReader(`{"reason": "migration test"}`), nil); code != http.StatusOK {
		t.Fatalf("abort: %d", code)
	}
	old.waitGate("the gate opens after the abort", 60*time.Second, http.StatusOK)
	if code := old.do("POST", "/api/v1/experiments/break-shop/runs", true, nil, &running); code != http.StatusCreated {
		t.Fatalf("second start: %d", code)
	}
	before := map[string]haRun{}
	for _, id := range []string{aborted.ID, running.ID} {
		before[id], _ = old.run(id)
	}
	old.Stop()

	db := testenv.StartPostgres(t).NewDatabase(t)
	migrate := func(args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, slogateBinary(t), append([]string{"storage", "migrate"}, args...)...).CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &exit):
			return string(out), exit.ExitCode()
		}
		t.Fatalf("slogate storage migrate: %v", err)
		return "", 0
	}
	for i, want := range []string{"copied 2 runs, skipped 0", "copied 0 runs, skipped 2"} {
		if out, code := migrate("--from", old.StoragePath(), "--to", db); code != 0 || !strings.Contains(out, want) {
			t.Fatalf("migrate #%d: exit %d, %q; want 0 and %q", i+1, code, out, want)
		}
	}
	if out, code := migrate("--to", db); code != 2 || !strings.Contains(out, "--from") {
		t.Errorf("migrate without --from: exit %d, %q; want 2 naming --from", code, out)
	}
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	if out, code := migrate("--from", missing, "--to", db); code != 1 || !strings.Contains(out, missing) {
		t.Errorf("migrate from a missing directory: exit %d, %q; want 1 naming it", code, out)
	}

	srv := startServer(t, serverOptions{promURL: shop.prom.URL(), storageURL: db})
	for id, b := range before {
		got, code := srv.run(id)
		if code != http.StatusOK || got.State != b.State || got.Reason != b.Reason || len(got.Timeline) < len(b.Timeline) {
			t.Errorf("run %s on PostgreSQL: %d %s (%s) with %d entries; bbolt had %s (%s) with %d", id, code, got.State, got.Reason, len(got.Timeline), b.State, b.Reason, len(b.Timeline))
			continue
		}
		for j := range b.Timeline {
			if x, y := b.Timeline[j], got.Timeline[j]; !x.At.Equal(y.At) || x.Verdict != y.Verdict || x.Probe != y.Probe || x.Message != y.Message {
				t.Errorf("run %s entry %d: %+v on bbolt, %+v on PostgreSQL", id, j, x, y)
			}
		}
	}
	// The running run is still the experiment's active run, and it is
	// supervised on its new store.
	if code := srv.do("POST", "/api/v1/experiments/break-shop/runs", true, nil, nil); code != http.StatusConflict {
		t.Errorf("start with the migrated run active: %d, want 409", code)
	}
	n := len(before[running.ID].Timeline)
	srv.Eventually(30*time.Second, "the migrated run is supervised", func() error {
		if r, _ := srv.run(running.ID); len(r.Timeline) <= n || r.Supervisor == "" {
			return errors.New("no new measurement or no supervisor yet")
		}
		return nil
	})
}
