package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"
)

// DefaultCheckInterval is how often a Checker checks the store after the
// check at start: damage comes from outside (a disk, a file system, another
// process writing to the file) at any time, and a check reads the whole
// file, which for a store of runs takes well under a second.
const DefaultCheckInterval = time.Hour

// CheckerOptions configure a Checker.
type CheckerOptions struct {
	Store      *Store
	Logger     *zap.Logger
	Registerer prometheus.Registerer
	// Interval between checks; zero means DefaultCheckInterval.
	Interval time.Duration
	// Now and After are the clock (default time.Now and time.After).
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

// Checker checks the store (Store.Check) at start and then every interval,
// and says what it found: the gauge slogate_store_damaged, the time of the
// last check and, for damage, an error in the log naming storage.path, the
// problems and what to do. It does not change what the gate answers: a read
// that meets damage fails on its own, and damage elsewhere (an old run's
// timeline) says nothing about whether a run is active.
type Checker struct {
	store    *Store
	logger   *zap.Logger
	interval time.Duration
	now      func() time.Time
	after    func(time.Duration) <-chan time.Time

	damaged, healthy, lastCheck prometheus.Gauge
}

// NewChecker returns a Checker of o.Store; it checks nothing until Run.
func NewChecker(o CheckerOptions) (*Checker, error) {
	if o.Store == nil {
		return nil, errors.New("store checker: no store")
	}
	if o.Interval < 0 {
		return nil, fmt.Errorf("store checker: negative interval %s", o.Interval)
	}
	if o.Interval == 0 {
		o.Interval = DefaultCheckInterval
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	f := promauto.With(o.Registerer)
	return &Checker{
		store:    o.Store,
		logger:   o.Logger.With(zap.String("component", "store")),
		interval: o.Interval,
		now:      o.Now,
		after:    o.After,
		damaged: f.NewGauge(prometheus.GaugeOpts{
			Name: "slogate_store_damaged",
			Help: "1 if the last check of the run store (storage.path) found damage, 0 if it found none.",
		}),
		healthy: f.NewGauge(prometheus.GaugeOpts{
			Name: "slogate_store_healthy",
			Help: "1 if the last check of the run store (storage.path) found it sound, 0 if it found damage.",
		}),
		lastCheck: f.NewGauge(prometheus.GaugeOpts{
			Name: "slogate_store_last_check_timestamp_seconds",
			Help: "Time of the last completed check of the run store, damage found or not; 0 before the first.",
		}),
	}, nil
}

// Run checks the store at once and then every interval until ctx ends;
// it returns nil then. Damage is reported, not returned: a damaged store
// does not stop the service.
func (c *Checker) Run(ctx context.Context) error {
	for {
		c.check(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-c.after(c.interval):
		}
	}
}

func (c *Checker) check(ctx context.Context) {
	begin := c.now()
	err := c.store.Check(ctx)
	if ctx.Err() != nil {
		return // shutdown: no verdict
	}
	var damage *CheckError
	switch {
	case err == nil:
		c.damaged.Set(0)
		c.healthy.Set(1)
		c.logger.Debug("store check found no damage", zap.String("file", c.store.Path()), zap.Duration("took", c.now().Sub(begin)))
	case errors.As(err, &damage):
		c.damaged.Set(1)
		c.healthy.Set(0)
		c.logger.Error("the store is damaged: stop slogate, move the file aside and start again with an empty store; the runs it holds are lost to slogate, active ones included, so end the chaos they guard by other means",
			zap.String("storage.path", c.store.path), zap.String("file", c.store.Path()),
			zap.Int("problems", damage.Total), zap.Strings("first", damage.Problems))
	default:
		// Not a verdict on the file (it was closed, say): the last one stands.
		c.logger.Warn("store check failed", zap.Error(err))
		return
	}
	c.lastCheck.Set(float64(c.now().UnixNano()) / 1e9)
}
