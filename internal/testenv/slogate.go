package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	slogateOnce sync.Once
	slogatePath string
	slogateErr  error
)

// SlogateBinary builds cmd/slogate once per test process, as users run it,
// and returns its path. The binary lives in a temporary directory that is
// left for the OS to clean: tests of one package share it.
func SlogateBinary(t testing.TB) string {
	t.Helper()
	root := RepoRoot(t)
	slogateOnce.Do(func() {
		dir, err := os.MkdirTemp("", "slogate-test-bin")
		if err != nil {
			slogateErr = err
			return
		}
		slogatePath = filepath.Join(dir, "slogate")
		cmd := exec.Command("go", "build", "-o", slogatePath, "./cmd/slogate")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			slogateErr = fmt.Errorf("go build ./cmd/slogate: %v\n%s", err, out)
		}
	})
	if slogateErr != nil {
		t.Fatal(slogateErr)
	}
	return slogatePath
}
