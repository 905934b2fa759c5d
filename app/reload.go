package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/slogate/slogate/slo"
)

// ErrNothingDefined refuses a reload whose definitions define no SLO,
// hypothesis or experiment while some are in force and reload.allow-empty
// is off.
var ErrNothingDefined = errors.New("the new definitions define no SLO, hypothesis or experiment")

// reloader is the reload coordinator: every path that changes the
// definitions (start, SIGHUP, POST /-/reload, a changed file) goes through
// it, one at a time, and it alone sets the reload metrics.
type reloader struct {
	mu     sync.Mutex
	load   func() (*slo.Set, slo.Diagnostics)
	apply  func(*slo.Set) error
	logger *zap.Logger
	now    func() time.Time
	// allowEmpty accepts a reload to a set that defines nothing
	// (reload.allow-empty).
	allowEmpty bool
	// current is the set in force: the last one applied.
	current *slo.Set

	ok, at prometheus.Gauge
}

func newReloader(load func() (*slo.Set, slo.Diagnostics), logger *zap.Logger, reg prometheus.Registerer, now func() time.Time, allowEmpty bool) *reloader {
	return &reloader{
		load: load, logger: logger, now: now, allowEmpty: allowEmpty,
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
// refuse the start. A set that defines nothing is accepted, whatever
// reload.allow-empty says: a fresh install may start with nothing defined,
// and there is nothing in force yet that it could drop.
func (r *reloader) initial() (*slo.Set, error) {
	set, diags := r.load()
	for _, d := range diags.Warnings() {
		r.logger.Warn("definition warning", zap.String("problem", d.Error()))
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("definitions rejected:\n%s", diags.Errors().String())
	}
	if definesNothing(set) {
		r.logger.Warn("the definitions define no SLO, hypothesis or experiment; nothing is evaluated until a reload brings some")
	}
	return set, nil
}

// commit applies a loaded set and records the success.
func (r *reloader) commit(set *slo.Set) error {
	if err := r.apply(set); err != nil {
		r.ok.Set(0)
		return err
	}
	r.current = set
	r.ok.Set(1)
	r.at.Set(float64(r.now().UnixNano()) / 1e9)
	r.logger.Info("definitions loaded", zap.Int("slos", len(set.SLOs)), zap.Int("hypotheses", len(set.Hypotheses)), zap.Int("experiments", len(set.Experiments)))
	return nil
}

// reload re-reads and applies the definitions; a set with errors, or one
// that defines nothing (see refuseEmpty), is rejected and the previous one
// stays in force.
func (r *reloader) reload(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	set, diags := r.load()
	if diags.HasErrors() {
		r.ok.Set(0)
		r.logger.Error("reload rejected; keeping the previous definitions", zap.String("problems", diags.Errors().String()))
		return diags.Err()
	}
	if err := r.refuseEmpty(set, diags); err != nil {
		r.ok.Set(0)
		r.logger.Error("reload rejected; keeping the previous definitions", zap.Error(err))
		return err
	}
	if err := r.commit(set); err != nil {
		r.logger.Error("reload rejected; keeping the previous definitions", zap.Error(err))
		return err
	}
	return nil
}

// refuseEmpty refuses a set that defines nothing in place of one that
// defines something, unless reload.allow-empty is set: an emptied or
// truncated file, or a directory whose files were moved away, loads without
// errors into such a set, and applying it would drop every SLO and abort
// every active run. The loader's warnings say which files held nothing.
func (r *reloader) refuseEmpty(set *slo.Set, diags slo.Diagnostics) error {
	if r.allowEmpty || !definesNothing(set) || r.current == nil || definesNothing(r.current) {
		return nil
	}
	err := fmt.Errorf("%w, as an emptied or truncated file would; applying them would remove every definition in force and abort every active run. "+
		"To empty the definitions on purpose, set reload.allow-empty to true (flag --reload.allow-empty, variable SLOGATE_RELOAD_ALLOW_EMPTY)", ErrNothingDefined)
	if w := diags.Warnings(); len(w) > 0 {
		err = fmt.Errorf("%w\n%s", err, strings.TrimSuffix(w.String(), "\n"))
	}
	return err
}

// definesNothing reports whether set has nothing to evaluate. Sloth's
// AlertWindows alone only shape SLOs that are not there.
func definesNothing(set *slo.Set) bool {
	return set == nil || len(set.SLOs) == 0 && len(set.Hypotheses) == 0 && len(set.Experiments) == 0
}
