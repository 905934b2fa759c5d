//go:build unix

package supervise

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/slogate/slogate/client"
)

// minPollGap spaces out long polls that come back at once without news, so
// that a server (or proxy) that does not hold them is asked once a second
// rather than in a busy loop.
const minPollGap = time.Second

// watcher long-polls a run in its own goroutine.
type watcher struct {
	updates chan *client.Run // every answer with news
	err     chan error       // why it gave up
	cancel  context.CancelFunc
	done    chan struct{}
}

// stop ends the watcher and waits for it; it may be called more than once.
func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

func (r *runner) watch(ctx context.Context, run *client.Run) *watcher {
	ctx, cancel := context.WithCancel(ctx)
	w := &watcher{
		updates: make(chan *client.Run),
		err:     make(chan error, 1),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go func() {
		defer close(w.done)
		if err := r.poll(ctx, run, w.updates); err != nil {
			w.err <- err
		}
	}()
	return w
}

// poll long-polls run until it is over or ctx ends, sending each answer
// that differs from the previous one. When the server cannot be reached it
// retries with backoff; once serverTimeout has passed since the first
// failure without an answer, or at an answer that retrying cannot change
// (the run is gone, the token is refused), it gives up with that error.
func (r *runner) poll(ctx context.Context, run *client.Run, updates chan<- *client.Run) error {
	state, seen := run.State, len(run.Timeline)
	var (
		failures     int
		firstFailure time.Time
	)
	for {
		asked := time.Now()
		next, err := r.client.WaitRun(ctx, run.ID, state, r.pollTimeout)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if !client.Retryable(err) {
				return err
			}
			failures++
			if failures == 1 {
				// The clock starts when the failure shows: a held long
				// poll says nothing about the server until it ends.
				firstFailure = time.Now()
				r.logf("cannot reach slogate at %s (%v); retrying for up to %s", r.server, rootCause(err), r.serverTimeout)
			}
			left := r.serverTimeout - time.Since(firstFailure)
			if left <= 0 {
				return err
			}
			if !sleep(ctx, min(backoff(failures), left)) {
				return nil
			}
			continue
		}
		if failures > 0 {
			r.logf("reached slogate at %s again", r.server)
			failures = 0
		}
		if next.State != state || len(next.Timeline) != seen {
			state, seen = next.State, len(next.Timeline)
			select {
			case updates <- next:
			case <-ctx.Done():
				return nil
			}
			if state.Terminal() {
				return nil
			}
			continue
		}
		if !sleep(ctx, minPollGap-time.Since(asked)) {
			return nil
		}
	}
}

// retry makes call until it succeeds, fails in a way retrying cannot
// change, or within has passed.
func (r *runner) retry(ctx context.Context, within time.Duration, call func(context.Context) (*client.Run, error)) (*client.Run, error) {
	deadline := time.Now().Add(within)
	for attempt := 1; ; attempt++ {
		run, err := call(ctx)
		if err == nil || !client.Retryable(err) || ctx.Err() != nil {
			return run, err
		}
		wait := backoff(attempt)
		if time.Now().Add(wait).After(deadline) {
			return nil, err
		}
		if attempt == 1 {
			r.logf("%v; retrying for up to %s", DescribeError(r.server, err), within)
		}
		if !sleep(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}

// backoff is the pause before attempt n+1: 250ms doubling up to 5s, less
// up to a quarter at random so that the clients of a restarted server do
// not all come back at once.
func backoff(n int) time.Duration {
	d := 250 * time.Millisecond << min(n-1, 5)
	d = min(d, 5*time.Second)
	return d - rand.N(d/4)
}

// sleep waits d or until ctx ends, reporting whether it waited the whole d.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func isConflict(err error) bool {
	var apiErr *client.APIError
	return errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict
}
