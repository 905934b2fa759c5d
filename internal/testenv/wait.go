package testenv

import (
	"errors"
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
// flood the server it asks. A condition that can no longer become true (the
// server it waits for has exited) returns Permanent(err), which ends the
// wait at once.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}

// Poll is Eventually without a test: it returns nil once cond does, or
// cond's last error after timeout, or at once an error cond marked
// Permanent.
func Poll(timeout time.Duration, cond func() error) error {
	return poll(timeout, 10*time.Millisecond, 250*time.Millisecond, cond)
}

// PollEvery is Poll at a fixed pace: cond is called at once, then every
// interval. It is for the few waits that are also measurements, whose
// resolution is the interval (how long until the gate closed, to 20 ms;
// how much CPU a process used in each second); everything else uses Poll.
func PollEvery(timeout, interval time.Duration, cond func() error) error {
	return poll(timeout, interval, interval, cond)
}

func poll(timeout, first, most time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	pause := first
	for {
		err := cond()
		if err == nil {
			return nil
		}
		var p *permanent
		if errors.As(err, &p) {
			return p.err
		}
		if !time.Now().Before(deadline) {
			return err
		}
		t := time.NewTimer(min(pause, time.Until(deadline)))
		<-t.C
		pause = min(2*pause, most)
	}
}

// Permanent marks an error of a condition that can no longer become true,
// so that Poll, PollEvery and Eventually give up at once with err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err: err}
}

type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }
