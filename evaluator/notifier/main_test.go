package notifier

import (
	"testing"

	"go.uber.org/goleak"
)

// Every sender, HTTP connection and Alertmanager child must be gone once
// Run has returned and the tests' cleanups ran.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
