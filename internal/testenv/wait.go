package testenv

import (
	"testing"
	"time"
)

// Eventually is the one way tests wait: it calls cond until cond returns
// nil and fails the test with cond's last error once timeout has passed.
// Tests synchronize on conditions, never on fixed sleeps; the timeout only
// bounds a test that would otherwise hang, so make it generous (CI machines
// are slow and noisy).
//
// cond is called at once, then at growing pauses (10 ms up to 250 ms), so a
// condition that is already true costs nothing and a slow one does not
// flood the server it asks.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}

// Poll is Eventually without a test: it returns nil once cond does, or
// cond's last error (or that it never ran) after timeout.
func Poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	pause := 10 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return err
		}
		t := time.NewTimer(min(pause, time.Until(deadline)))
		<-t.C
		pause = min(2*pause, 250*time.Millisecond)
	}
}
