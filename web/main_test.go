package web

import (
	"os"
	"testing"
)

// TestMain removes the UI fixture's TSDB, which the tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	closeFixtureDB()
	os.Exit(code)
}
