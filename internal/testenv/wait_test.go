package testenv_test

import (
	"errors"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

func TestPoll(t *testing.T) {
	calls := 0
	err := testenv.Poll(time.Minute, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Poll = %v after %d calls, want nil after 3", err, calls)
	}

	want := errors.New("never")
	if err := testenv.Poll(30*time.Millisecond, func() error { return want }); !errors.Is(err, want) {
		t.Fatalf("Poll of a condition that never holds = %v, want its last error", err)
	}
}
