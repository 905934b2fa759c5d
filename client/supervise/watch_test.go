//go:build unix

package supervise

import (
	"context"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	// Each pause is its step, less up to a quarter at random.
	tests := []struct {
		attempt int
		step    time.Duration
	}{
		{1, 250 * time.Millisecond},
		{2, 500 * time.Millisecond},
		{3, time.Second},
		{4, 2 * time.Second},
		{5, 4 * time.Second},
		{6, 5 * time.Second},
		{7, 5 * time.Second},
		{1000, 5 * time.Second},
	}
	for _, tt := range tests {
		for range 200 {
			if got := backoff(tt.attempt); got <= tt.step*3/4 || got > tt.step {
				t.Errorf("backoff(%d) = %s, want in (%s, %s]", tt.attempt, got, tt.step*3/4, tt.step)
				break
			}
		}
	}
}

func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if !sleep(ctx, 0) || !sleep(ctx, -time.Second) {
		t.Error("sleep of nothing on a live context reports an early end")
	}
	cancel()
	if sleep(ctx, time.Hour) {
		t.Error("sleep on a cancelled context waited the whole hour")
	}
	if sleep(ctx, 0) {
		t.Error("sleep of nothing on a cancelled context reports a whole wait")
	}
}
