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

func TestPollPermanent(t *testing.T) {
	gone := errors.New("the server exited")
	calls := 0
	start := time.Now()
	err := testenv.Poll(time.Minute, func() error {
		calls++
		return testenv.Permanent(gone)
	})
	if err != gone || calls != 1 {
		t.Fatalf("Poll = %v after %d calls, want the permanent error itself after 1", err, calls)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Poll of a permanent error took %s, want no wait", took)
	}
	if testenv.Permanent(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
}

func TestPollEvery(t *testing.T) {
	var at []time.Time
	err := testenv.PollEvery(time.Minute, 20*time.Millisecond, func() error {
		at = append(at, time.Now())
		if len(at) < 4 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || len(at) != 4 {
		t.Fatalf("PollEvery = %v after %d calls, want nil after 4", err, len(at))
	}
	for i := 1; i < len(at); i++ {
		// The pause does not grow: each is the interval (a timer never
		// fires early).
		if d := at[i].Sub(at[i-1]); d < 20*time.Millisecond {
			t.Errorf("call %d came %s after the previous one, want at least the 20ms interval", i, d)
		}
	}
}
