package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/slogate/slogate/slo"
)

// reloader is the reload coordinator: every path that changes the
// definitions (start, SIGHUP, POST /-/reload, a changed file) goes through
// it, one at a time, and it alone sets the reload metrics.
type reloader struct {
	mu     sync.Mutex
	load   func() (*slo.Set, slo.Diagnostics)
	apply  func(*slo.Set) error
	logger *zap.Logger
	now    func() time.Time

	ok, at prometheus.Gauge
}

func newReloader(load func() (*slo.Set, slo.Diagnostics), logger *zap.Logger, reg prometheus.Registerer, now func() time.Time) *reloader {
	return &reloader{
		load: load, logger: logger, now: now,
		ok: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "slogate_config_last_reload_successful",
			Help: "1 if the last reload of the definitions succeeded, 0 if it was rejected (the previous definitions stay in force).",
		}),
		at: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "slogate_config_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful reload of the definitions.",
		}),
	}
}

// initial loads the definitions at start: warnings are logged, errors
// refuse the start.
func (r *reloader) initial() (*slo.Set, error) {
	set, diags := r.load()
	for _, d := range diags.Warnings() {
		r.logger.Warn("definition warning", zap.String("problem", d.Error()))
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("definitions rejected:\n%s", diags.Errors().String())
	}
	return set, nil
}

// commit applies a loaded set and records the success.
func (r *reloader) commit(set *slo.Set) error {
	if err := r.apply(set); err != nil {
		r.ok.Set(0)
		return err
	}
	r.ok.Set(1)
	r.at.Set(float64(r.now().UnixNano()) / 1e9)
	r.logger.Info("definitions loaded", zap.Int("slos", len(set.SLOs)), zap.Int("hypotheses", len(set.Hypotheses)), zap.Int("experiments", len(set.Experiments)))
	return nil
}

// reload re-reads and applies the definitions; a set with errors is
// rejected and the previous one stays in force.
func (r *reloader) reload(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	set, diags := r.load()
	if diags.HasErrors() {
		r.ok.Set(0)
		r.logger.Error("reload rejected; keeping the previous definitions", zap.String("problems", diags.Errors().String()))
		return diags.Err()
	}
	if err := r.commit(set); err != nil {
		r.logger.Error("reload rejected; keeping the previous definitions", zap.Error(err))
		return err
	}
	return nil
}
