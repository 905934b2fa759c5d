package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/common/version"
	"go.uber.org/zap"
)

// target is one Alertmanager: its queue and metrics.
type target struct {
	name     string // base URL, credentials redacted: for logs and metrics
	endpoint string // .../api/v2/alerts, credentials included
	queue    *queue
	metrics  *targetMetrics
}

func newTarget(name, endpoint string, capacity int, m *metrics) *target {
	tm := m.target(name)
	return &target{name: name, endpoint: endpoint, queue: newQueue(capacity, tm), metrics: tm}
}

// postableAlert is an alert in the body of POST /api/v2/alerts.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// rejectedError is a 4xx answer: the request is wrong and would be wrong
// again.
type rejectedError struct {
	status string
	body   string
}

func (e *rejectedError) Error() string {
	return fmt.Sprintf("rejected: %s: %s", e.status, e.body)
}

// deliver sends t's queue until ctx ends. Failures are retried with
// exponential backoff; 4xx answers drop the batch.
func (n *Notifier) deliver(ctx context.Context, t *target) {
	logger := n.logger.With(zap.String("alertmanager", t.name))
	delay := n.backoffMin
	failures := 0
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		batch := t.queue.peek(maxBatch)
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-t.queue.wake:
				continue
			}
		}
		err := n.post(ctx, t, batch)
		var rejected *rejectedError
		switch {
		case err == nil:
			t.queue.ack(batch)
			t.metrics.sent.Add(float64(len(batch)))
			if failures > 0 {
				logger.Info("alertmanager reachable again; sending all firing alerts again", zap.Int("failedAttempts", failures))
				n.resync(t)
			}
			failures, delay = 0, n.backoffMin
		case ctx.Err() != nil:
			// Shutdown, not a failure: Run's flush tries once more.
			return
		case errors.As(err, &rejected):
			t.queue.ack(batch)
			t.metrics.rejected.Add(float64(len(batch)))
			logger.Error("alertmanager rejected alerts; dropping them", zap.Int("alerts", len(batch)), zap.Error(err))
		default:
			t.metrics.failed.Add(float64(len(batch)))
			failures++
			wait := jitter(delay)
			delay = min(2*delay, n.backoffMax)
			logger.Warn("sending alerts failed; retrying",
				zap.Int("alerts", len(batch)), zap.Int("attempt", failures), zap.Duration("retryIn", wait), zap.Error(err))
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
	}
}

// flush makes one attempt to deliver what is left in t's queue, giving up
// at the first failure or when ctx ends.
func (n *Notifier) flush(ctx context.Context, t *target) {
	for ctx.Err() == nil {
		batch := t.queue.peek(maxBatch)
		if len(batch) == 0 {
			return
		}
		err := n.post(ctx, t, batch)
		var rejected *rejectedError
		switch {
		case err == nil:
			t.queue.ack(batch)
			t.metrics.sent.Add(float64(len(batch)))
		case errors.As(err, &rejected):
			t.queue.ack(batch)
			t.metrics.rejected.Add(float64(len(batch)))
		default:
			t.metrics.failed.Add(float64(len(batch)))
			n.logger.Warn("alerts left undelivered at shutdown",
				zap.String("alertmanager", t.name), zap.Int("alerts", t.queue.len()), zap.Error(err))
			return
		}
	}
}

// post sends one batch.
func (n *Notifier) post(ctx context.Context, t *target, batch []*entry) error {
	body := make([]postableAlert, len(batch))
	for i, e := range batch {
		a := e.alert
		body[i] = postableAlert{
			Labels: a.Labels, Annotations: a.Annotations,
			StartsAt: a.StartsAt.UTC(), EndsAt: a.EndsAt.UTC(), GeneratorURL: a.GeneratorURL,
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encoding %d alerts: %w", len(batch), err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("posting alerts to %s: %w", t.name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "slogate/"+version.Version)
	start := time.Now()
	resp, err := n.client.Do(req)
	t.metrics.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		// The client's error names the URL, credentials included: say
		// only what went wrong.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("posting %d alerts to %s: %w", len(batch), t.name, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	// Read the rest so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	switch code := resp.StatusCode; {
	case code/100 == 2:
		return nil
	case code/100 == 4 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
		return &rejectedError{status: resp.Status, body: strings.TrimSpace(string(msg))}
	default:
		return fmt.Errorf("posting %d alerts to %s: %s: %s", len(batch), t.name, resp.Status, strings.TrimSpace(string(msg)))
	}
}

// jitter spreads retries over [d/2, d), so that replicas that lost the same
// Alertmanager do not come back in step.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}
