// Package demo is the embedded default of `slogate demo`: a simulated shop
// written into a real Prometheus TSDB (with 30 days of history, so budgets
// mean something), and a scripted chaos experiment that goes through the
// real run API.
package demo

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// Buckets of the simulated latency histograms (seconds).
var Buckets = []float64{0.05, 0.1, 0.3, 0.5, 1}

// service is one simulated service with its cumulative counters.
type service struct {
	job        string
	rps        float64 // mean requests per second
	errRatio   float64 // normal share of 5xx
	instances  int
	slowShares []float64 // share of requests slower than each bucket bound

	ok, bad float64
	buckets []float64 // cumulative, per bound, then +Inf
	sum     float64
}

// Simulator writes the shop's series into a storage.
type Simulator struct {
	app      storage.Appendable
	step     time.Duration
	services []*service

	mu       sync.Mutex
	inject   map[string]float64 // job -> extra error share
	slowdown map[string]float64 // job -> extra share of slow requests
	rng      *rand.Rand
	last     time.Time
}

// NewSimulator returns a shop of three services sampled every step.
func NewSimulator(app storage.Appendable, step time.Duration) *Simulator {
	mk := func(job string, rps, errRatio float64, instances int, slow []float64) *service {
		return &service{job: job, rps: rps, errRatio: errRatio, instances: instances, slowShares: slow, buckets: make([]float64, len(Buckets)+1)}
	}
	return &Simulator{
		app:  app,
		step: step,
		services: []*service{
			mk("checkout", 40, 0.0003, 3, []float64{0.5, 0.2, 0.004, 0.001, 0.0002}),
			mk("catalog", 120, 0.001, 4, []float64{0.3, 0.1, 0.01, 0.002, 0.0005}),
			mk("payments", 15, 0.0002, 2, []float64{0.7, 0.4, 0.05, 0.004, 0.001}),
		},
		inject:   map[string]float64{},
		slowdown: map[string]float64{},
		rng:      rand.New(rand.NewPCG(42, 7)),
	}
}

// Inject adds an error share to a service's traffic (0 stops it).
func (s *Simulator) Inject(job string, errShare float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inject[job] = errShare
}

// Slowdown makes a share of a service's requests slower than 1s.
func (s *Simulator) Slowdown(job string, share float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slowdown[job] = share
}

// wave is the daily traffic shape: quiet nights, busy evenings.
func wave(t time.Time) float64 {
	h := float64(t.Unix()%86400) / 3600
	return 1 + 0.6*math.Sin((h-9)/24*2*math.Pi)
}

// incident is the history's scripted trouble: a bad deploy of checkout 9
// days ago, a catalog brown-out 4 days ago, and a short spike 20 hours ago.
func incident(job string, t, now time.Time) float64 {
	ago := now.Sub(t)
	switch {
	case job == "checkout" && ago > 9*24*time.Hour && ago < 9*24*time.Hour+40*time.Minute:
		return 0.08
	case job == "catalog" && ago > 4*24*time.Hour && ago < 4*24*time.Hour+3*time.Hour:
		return 0.02
	case job == "checkout" && ago > 20*time.Hour && ago < 20*time.Hour+10*time.Minute:
		return 0.03
	}
	return 0
}

// Backfill writes the history from from to to (excluded) at step.
func (s *Simulator) Backfill(ctx context.Context, from, to time.Time, step time.Duration) error {
	app := s.app.Appender(ctx)
	n := 0
	for t := from; t.Before(to); t = t.Add(step) {
		if err := s.sample(app, t, step, to, true); err != nil {
			_ = app.Rollback()
			return err
		}
		n++
		if n%500 == 0 {
			if err := app.Commit(); err != nil {
				return fmt.Errorf("demo: writing history: %w", err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			app = s.app.Appender(ctx)
		}
	}
	s.last = to.Add(-step)
	return app.Commit()
}

// Run samples the live shop every step until ctx ends.
func (s *Simulator) Run(ctx context.Context) error {
	tick := time.NewTicker(s.step)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			now = now.Truncate(time.Millisecond)
			if !now.After(s.last) {
				continue
			}
			app := s.app.Appender(ctx)
			if err := s.sample(app, now, now.Sub(s.last), now, false); err != nil {
				_ = app.Rollback()
				return err
			}
			if err := app.Commit(); err != nil {
				return fmt.Errorf("demo: writing samples: %w", err)
			}
			s.last = now
		}
	}
}

// sample advances every service by dt and appends its series at t.
func (s *Simulator) sample(app storage.Appender, t time.Time, dt time.Duration, now time.Time, history bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := t.UnixMilli()
	for _, svc := range s.services {
		n := svc.rps * wave(t) * dt.Seconds() * (0.9 + 0.2*s.rng.Float64())
		errShare := svc.errRatio
		slowExtra := 0.0
		if history {
			errShare += incident(svc.job, t, now)
		} else {
			errShare += s.inject[svc.job]
			slowExtra = s.slowdown[svc.job]
		}
		errShare = math.Min(1, errShare)
		bad := n * errShare
		svc.bad += bad
		svc.ok += n - bad
		for i := range Buckets {
			slow := math.Min(1, svc.slowShares[i]+slowExtra)
			svc.buckets[i] += n * (1 - slow)
		}
		svc.buckets[len(Buckets)] += n
		svc.sum += n * (0.04 + slowExtra)

		add := func(ls labels.Labels, v float64) error {
			if _, err := app.Append(0, ls, ts, v); err != nil {
				return fmt.Errorf("demo: append %s: %w", ls, err)
			}
			return nil
		}
		handler := "/api"
		if svc.job == "checkout" {
			handler = "/api/pay"
		}
		if err := add(labels.FromStrings("__name__", "http_requests_total", "job", svc.job, "handler", handler, "code", "200"), svc.ok); err != nil {
			return err
		}
		if err := add(labels.FromStrings("__name__", "http_requests_total", "job", svc.job, "handler", handler, "code", "500"), svc.bad); err != nil {
			return err
		}
		for i := 0; i <= len(Buckets); i++ {
			le := "+Inf"
			if i < len(Buckets) {
				le = strconv.FormatFloat(Buckets[i], 'f', -1, 64)
			}
			if err := add(labels.FromStrings("__name__", "http_request_duration_seconds_bucket", "job", svc.job, "handler", handler, "le", le), svc.buckets[i]); err != nil {
				return err
			}
		}
		if err := add(labels.FromStrings("__name__", "http_request_duration_seconds_count", "job", svc.job, "handler", handler), svc.buckets[len(Buckets)]); err != nil {
			return err
		}
		if err := add(labels.FromStrings("__name__", "http_request_duration_seconds_sum", "job", svc.job, "handler", handler), svc.sum); err != nil {
			return err
		}
		for i := range svc.instances {
			up := 1.0
			if !history && s.inject[svc.job] >= 0.5 && i == 0 {
				up = 0
			}
			if err := add(labels.FromStrings("__name__", "up", "job", svc.job, "instance", fmt.Sprintf("%s-%d:8080", svc.job, i)), up); err != nil {
				return err
			}
		}
	}
	return nil
}
