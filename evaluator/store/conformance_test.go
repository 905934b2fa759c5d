package store_test

import (
	"path/filepath"
	"testing"

	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/evaluator/store/storetest"
)

// TestConformance runs the contract of run stores against bbolt; pgstore
// runs the same against PostgreSQL.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s, err := store.Open(filepath.Join(t.TempDir(), "data"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
