//go:build soak

package e2e

import (
	"os"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// Longer variants of the kill -9, load and Prometheus fault tests, for
// `make soak` (build tag soak). Each is bounded in time; the environment
// tunes them:
//
//	SLOGATE_CRASH_ITERATIONS   kills of TestSoakKill9 (default 60)
//	SLOGATE_SOAK_LOAD          duration of TestSoakLoad (default 3m)
//	SLOGATE_SOAK_FAULTS        duration of TestSoakPrometheusFaults (default 4m)

func TestSoakKill9(t *testing.T) {
	n := envInt(t, crashIterationsEnv, 60)
	t.Run("bbolt", func(t *testing.T) { runKill9(t, n, "") })
	t.Run("postgres", func(t *testing.T) { runKill9(t, n, testenv.StartPostgres(t).NewDatabase(t)) })
}

// TestSoakLoad runs the load of TestLoad for SLOGATE_SOAK_LOAD: each of the
// 8 workers makes one call about every 15 ms (10 ms pause and the call).
func TestSoakLoad(t *testing.T) {
	d := envDuration(t, "SLOGATE_SOAK_LOAD", 3*time.Minute)
	requests := max(int(d/(15*time.Millisecond)), loadRequests)
	runLoad(t, loadWorkers, requests, 4*d+time.Minute)
}

// TestSoakPrometheusFaults injects random Prometheus faults for
// SLOGATE_SOAK_FAULTS.
func TestSoakPrometheusFaults(t *testing.T) {
	runFaultCycles(t, 0, envDuration(t, "SLOGATE_SOAK_FAULTS", 4*time.Minute), "")
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}
