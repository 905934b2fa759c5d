package bench

import (
	"os"
	"testing"
)

// TestMain removes the benchmark's TSDB directories, which are shared by
// all benchmarks of the process and so outlive any one of them.
func TestMain(m *testing.M) {
	code := m.Run()
	removeHistories()
	os.Exit(code)
}
