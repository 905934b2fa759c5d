package testenv_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Packages that use testenv may check for leaked goroutines too: the
// children's reapers, the HTTP clients and the targets must all be gone
// once the tests' cleanups ran.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
