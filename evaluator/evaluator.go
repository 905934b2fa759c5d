// Package evaluator evaluates SLOs and steady-state hypotheses against
// Prometheus continuously and keeps their latest verdicts.
//
// SLO windows are not queried whole: every SLO keeps ring buffers of event
// counts per time slice, filled once by range queries and then by asking
// only for the newest slice, so the cost of an evaluation does not grow with
// the window length.
package evaluator

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/slogate/slogate/slo"
)

// Options configure an Evaluator.
type Options struct {
	Querier    Querier
	Logger     *zap.Logger
	Registerer prometheus.Registerer
	// Interval between evaluations; it must divide an hour evenly.
	Interval time.Duration
	// MaxConcurrency bounds the queries in flight.
	MaxConcurrency int
	// Spread delays each definition's evaluation by a hash of its name, up
	// to this share of the interval, so that thousands of SLOs do not hit
	// Prometheus at the same instant. 0 disables it.
	Spread float64
	// ShardIndex and ShardCount split the SLOs between replicas by a hash of
	// their name; hypotheses and experiments are evaluated by every replica.
	ShardIndex, ShardCount int
	// MinRange is the shortest range a slice is measured over (rate(x[R])
	// × slice length); it must be at least twice the scrape interval.
	// Default DefaultMinRange.
	MinRange time.Duration
	// Snapshots, when set, keeps the slice buffers across restarts: saved
	// every SnapshotInterval (default 5m) and when Run ends, restored for
	// SLOs that appear in SetDefinitions.
	Snapshots        SnapshotStore
	SnapshotInterval time.Duration
	// DisableBatching asks every SLO's newest slice on its own instead of
	// grouping the SLOs whose queries differ only in label values.
	DisableBatching bool
	// Now is the clock; tests set it.
	Now func() time.Time
}

// Evaluator evaluates a Set of definitions every interval.
type Evaluator struct {
	opts    Options
	logger  *zap.Logger
	metrics *selfMetrics
	sem     chan struct{}

	// cycleMu serialises cycles with each other and with definition swaps.
	cycleMu sync.Mutex

	mu         sync.RWMutex
	defs       *slo.Set
	slos       map[string]*sloState
	hyps       map[string]*hypState
	sloStatus  map[string]SLOStatus
	hypStatus  map[string]HypothesisStatus
	lastCycle  time.Time
	cycles     int
	observers  []func(ctx context.Context, at time.Time)
	lastGood   time.Time
	shardedOut int
	// pendingLogged is the backfill count last logged (guarded by cycleMu).
	pendingLogged int
	// heartbeat is the Unix nanoseconds of the loop's last sign of life.
	heartbeat atomic.Int64
}

// New validates opts and returns an Evaluator with no definitions.
func New(opts Options) (*Evaluator, error) {
	if opts.Querier == nil {
		return nil, errors.New("evaluator: a Querier is required")
	}
	if opts.Interval <= 0 {
		opts.Interval = 30 * time.Second
	}
	if time.Hour%opts.Interval != 0 {
		return nil, fmt.Errorf("evaluation.interval %s: must divide 1h evenly (e.g. 10s, 15s, 30s, 1m, 5m)", opts.Interval)
	}
	if opts.MaxConcurrency <= 0 {
		opts.MaxConcurrency = 8
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.SnapshotInterval <= 0 {
		opts.SnapshotInterval = 5 * time.Minute
	}
	if opts.MinRange <= 0 {
		opts.MinRange = DefaultMinRange
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ShardCount <= 0 {
		opts.ShardCount = 1
	}
	if opts.ShardIndex < 0 || opts.ShardIndex >= opts.ShardCount {
		return nil, fmt.Errorf("shard.index %d: must be in [0, shard.count=%d)", opts.ShardIndex, opts.ShardCount)
	}
	e := &Evaluator{
		opts:      opts,
		logger:    opts.Logger.With(zap.String("component", "evaluator")),
		sem:       make(chan struct{}, opts.MaxConcurrency),
		defs:      &slo.Set{},
		slos:      map[string]*sloState{},
		hyps:      map[string]*hypState{},
		sloStatus: map[string]SLOStatus{},
		hypStatus: map[string]HypothesisStatus{},
	}
	e.metrics = newSelfMetrics(opts.Registerer)
	if err := opts.Registerer.Register(&collector{e: e}); err != nil {
		return nil, fmt.Errorf("evaluator: registering metrics: %w", err)
	}
	return e, nil
}

// Interval is the evaluation interval.
func (e *Evaluator) Interval() time.Duration { return e.opts.Interval }

// InShard reports whether this replica evaluates the SLO named name.
func (e *Evaluator) InShard(name string) bool {
	if e.opts.ShardCount <= 1 {
		return true
	}
	return int(hashName(name)%uint64(e.opts.ShardCount)) == e.opts.ShardIndex
}

func hashName(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// SetDefinitions replaces the definitions. The new state is built completely
// before it is swapped in; SLOs whose queries did not change keep their
// buffers and hypotheses keep their verdicts.
func (e *Evaluator) SetDefinitions(set *slo.Set) error {
	if set == nil {
		return errors.New("evaluator: nil definitions")
	}
	slos := make(map[string]*sloState, len(set.SLOs))
	hyps := make(map[string]*hypState, len(set.Hypotheses))
	var errs []error
	sharded := 0
	for _, def := range set.SLOs {
		if !e.InShard(def.Name) {
			sharded++
			continue
		}
		st, err := newSLOState(def, e.opts.Interval, e.opts.MinRange)
		if err != nil {
			errs = append(errs, fmt.Errorf("slo %q: %w", def.Name, err))
			continue
		}
		slos[def.Name] = st
	}
	for _, def := range set.Hypotheses {
		hyps[def.Name] = newHypState(def)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	e.mu.RLock()
	fresh := map[string]*sloState{}
	for name, st := range slos {
		if _, ok := e.slos[name]; !ok {
			fresh[name] = st
		}
	}
	e.mu.RUnlock()
	e.restoreSnapshots(fresh)

	e.cycleMu.Lock()
	defer e.cycleMu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	pending := 0
	for name, st := range slos {
		if old, ok := e.slos[name]; ok {
			st.tracker.adopt(old.tracker)
			st.alertSince = old.alertSince
			if old.tracker.queries.key() == st.tracker.queries.key() {
				st.status.Alerts = old.status.Alerts
				st.backfilled = old.backfilled
			}
		}
		if !st.backfilled {
			pending++
		}
	}
	e.metrics.backfillPending.Set(float64(pending))
	for name, st := range hyps {
		st.adopt(e.hyps[name])
	}
	e.defs, e.slos, e.hyps, e.shardedOut = set, slos, hyps, sharded
	for name := range e.sloStatus {
		if _, ok := slos[name]; !ok {
			delete(e.sloStatus, name)
		}
	}
	for name := range e.hypStatus {
		if _, ok := hyps[name]; !ok {
			delete(e.hypStatus, name)
		}
	}
	return nil
}

// Definitions returns the current definitions (never nil, never modified).
func (e *Evaluator) Definitions() *slo.Set {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.defs
}

// OnCycle registers fn to be called after every evaluation cycle, with the
// cycle's evaluation time. Call it before Run.
func (e *Evaluator) OnCycle(fn func(ctx context.Context, at time.Time)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.observers = append(e.observers, fn)
}

// Run evaluates at every interval boundary until ctx ends. A cycle that
// overruns makes the loop skip the boundaries it missed (counted in
// slogate_evaluation_iterations_missed_total) instead of catching up in a
// burst, like Prometheus's rule groups.
func (e *Evaluator) Run(ctx context.Context) error {
	e.beat()
	next := e.opts.Now().Truncate(e.opts.Interval).Add(e.opts.Interval)
	// Evaluate once right away (the previous boundary) so that the service
	// is ready without waiting for a full interval.
	e.Evaluate(ctx, next.Add(-e.opts.Interval))
	timer := time.NewTimer(0)
	defer timer.Stop()
	defer e.saveSnapshots()
	lastSnapshot := e.opts.Now()
	for {
		wait := next.Sub(e.opts.Now())
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		e.beat()
		e.Evaluate(ctx, next)
		e.beat()
		if e.opts.Now().Sub(lastSnapshot) >= e.opts.SnapshotInterval {
			e.saveSnapshots()
			lastSnapshot = e.opts.Now()
		}
		now := e.opts.Now()
		next = next.Add(e.opts.Interval)
		if now.After(next) {
			missed := int(now.Sub(next)/e.opts.Interval) + 1
			e.metrics.missed.Add(float64(missed))
			e.logger.Warn("evaluation took longer than the interval; skipping missed iterations",
				zap.Int("missed", missed), zap.Duration("interval", e.opts.Interval))
			next = now.Truncate(e.opts.Interval).Add(e.opts.Interval)
		}
	}
}

// Evaluate runs one cycle at time at (truncated to the interval): SLOs
// first, then hypotheses, which may read the SLOs' fresh statuses.
func (e *Evaluator) Evaluate(ctx context.Context, at time.Time) {
	at = at.Truncate(e.opts.Interval)
	e.cycleMu.Lock()
	defer e.cycleMu.Unlock()
	start := time.Now()

	e.mu.RLock()
	slos, hyps := e.slos, e.hyps
	observers := append([]func(context.Context, time.Time){}, e.observers...)
	e.mu.RUnlock()

	f := newCycleFetcher(e.opts.Querier, e.sem, e.metrics)
	f.beat = e.beat
	sloResults := make(map[string]SLOStatus, len(slos))
	var resMu sync.Mutex
	var wg sync.WaitGroup
	// One goroutine per definition would be 10,000 goroutines; the query
	// semaphore already bounds the load, so a small pool is enough.
	work := make(chan *sloState)
	workers := min(len(slos), 4*e.opts.MaxConcurrency)
	pending := 0
	for _, st := range slos {
		if !st.backfilled {
			pending++
		}
	}
	if pending > 0 && pending != e.pendingLogged {
		e.logger.Info("backfilling SLO windows from Prometheus", zap.Int("slos", pending))
	}
	e.pendingLogged = pending
	if !e.opts.DisableBatching {
		e.prefetchBatched(ctx, f, slos, at)
	}
	var backfilled atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for st := range work {
				wasBackfilled := st.backfilled
				if wasBackfilled && !st.tracker.answered(f, at) {
					e.spreadDelay(ctx, start, st.tracker.def.Name)
				}
				s := st.evaluate(ctx, f, at)
				if !wasBackfilled && s.Error == "" && s.Fresh {
					st.backfilled = true
					e.metrics.backfillPending.Dec()
					if n := int(backfilled.Add(1)); n == pending || n%max(1, pending/10) == 0 {
						e.logger.Info("backfill progress", zap.Int("done", n), zap.Int("of", pending), zap.Duration("elapsed", time.Since(start)))
					}
				}
				resMu.Lock()
				sloResults[st.tracker.def.Name] = s
				resMu.Unlock()
			}
		}()
	}
	for _, name := range sortedKeys(slos) {
		select {
		case work <- slos[name]:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()

	lookup := func(name string) (*sloState, SLOStatus, bool) {
		st, ok := slos[name]
		if !ok {
			return nil, SLOStatus{}, false
		}
		s, ok := sloResults[name]
		return st, s, ok
	}
	hypResults := make(map[string]HypothesisStatus, len(hyps))
	var hwg sync.WaitGroup
	for name, st := range hyps {
		hwg.Add(1)
		go func() {
			defer hwg.Done()
			s := st.evaluate(ctx, f, at, lookup)
			resMu.Lock()
			hypResults[name] = s
			resMu.Unlock()
		}()
	}
	hwg.Wait()

	if ctx.Err() != nil {
		// Shutting down: what was measured while cancelling is not a verdict.
		return
	}
	e.mu.Lock()
	for name, s := range sloResults {
		if _, ok := e.slos[name]; ok {
			e.sloStatus[name] = s
		}
	}
	for name, s := range hypResults {
		if _, ok := e.hyps[name]; ok {
			e.hypStatus[name] = s
		}
	}
	e.lastCycle = at
	e.cycles++
	if f.failures() == 0 {
		e.lastGood = at
		e.metrics.lastSuccess.Set(float64(at.UnixNano()) / 1e9)
	}
	e.mu.Unlock()
	e.metrics.evalDuration.Observe(time.Since(start).Seconds())
	if n := f.failures(); n > 0 {
		e.logger.Warn("evaluation had failed queries", zap.Int("failed", n), zap.Time("at", at))
	}
	for _, fn := range observers {
		fn(ctx, at)
	}
}

func (e *Evaluator) saveSnapshots() {
	if err := e.SaveSnapshots(); err != nil {
		e.logger.Warn("saving the snapshot of SLO windows", zap.Error(err))
	}
}

// spreadDelay waits until the SLO's offset into the cycle that started at
// start. The offset counts from the cycle's start, not from when a worker
// gets to the SLO: each worker evaluates many SLOs one after the other, and
// offsets that added up made a cycle of 1,000 SLOs last minutes.
func (e *Evaluator) spreadDelay(ctx context.Context, start time.Time, name string) {
	if e.opts.Spread <= 0 {
		return
	}
	max := time.Duration(float64(e.opts.Interval) * e.opts.Spread)
	if max <= 0 {
		return
	}
	d := time.Until(start.Add(time.Duration(hashName(name) % uint64(max))))
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// beat records a sign of life of the evaluation loop: a cycle starting or
// ending, or a query of a cycle answered (or failing).
func (e *Evaluator) beat() { e.heartbeat.Store(e.opts.Now().UnixNano()) }

// Heartbeat is when the evaluation loop last showed progress: a cycle began
// or ended, or one of its queries came back, whatever Prometheus answered.
// A loop that is waiting for its next interval or for a slow Prometheus
// still beats; a deadlocked one does not. It is zero before Run.
func (e *Evaluator) Heartbeat() time.Time {
	ns := e.heartbeat.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Ready reports whether one cycle has completed since start.
func (e *Evaluator) Ready() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.cycles > 0
}

// LastCycle is the evaluation time of the latest cycle, and of the latest
// cycle in which every query succeeded.
func (e *Evaluator) LastCycle() (last, lastGood time.Time) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.lastCycle, e.lastGood
}

// SLOs returns the statuses of all evaluated SLOs, sorted by name.
func (e *Evaluator) SLOs() []SLOStatus {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]SLOStatus, 0, len(e.slos))
	for _, name := range sortedKeys(e.slos) {
		out = append(out, e.sloStatusLocked(name))
	}
	return out
}

// SLO returns one SLO's status.
func (e *Evaluator) SLO(name string) (SLOStatus, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if _, ok := e.slos[name]; !ok {
		return SLOStatus{}, false
	}
	return e.sloStatusLocked(name), true
}

func (e *Evaluator) sloStatusLocked(name string) SLOStatus {
	if s, ok := e.sloStatus[name]; ok {
		return e.withFreshness(s)
	}
	return e.slos[name].status
}

// withFreshness marks a status stale once its last success is older than two
// intervals, whatever the latest cycle said.
func (e *Evaluator) withFreshness(s SLOStatus) SLOStatus {
	s.Fresh = s.Fresh && e.fresh(s.LastSuccess)
	return s
}

func (e *Evaluator) fresh(last time.Time) bool {
	return !last.IsZero() && e.opts.Now().Sub(last) < 2*e.opts.Interval+e.opts.Interval/2
}

// Hypotheses returns all hypothesis statuses, sorted by name.
func (e *Evaluator) Hypotheses() []HypothesisStatus {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]HypothesisStatus, 0, len(e.hyps))
	for _, name := range sortedKeys(e.hyps) {
		out = append(out, e.hypStatusLocked(name))
	}
	return out
}

// Hypothesis returns one hypothesis' status.
func (e *Evaluator) Hypothesis(name string) (HypothesisStatus, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if _, ok := e.hyps[name]; !ok {
		return HypothesisStatus{}, false
	}
	return e.hypStatusLocked(name), true
}

func (e *Evaluator) hypStatusLocked(name string) HypothesisStatus {
	s, ok := e.hypStatus[name]
	if !ok {
		s = e.hyps[name].status
	}
	s.Fresh = s.Fresh && e.fresh(s.LastSuccess)
	if !e.fresh(s.EvaluatedAt) && s.Verdict != slo.Unknown {
		// The loop has not evaluated it for two intervals (stuck, or
		// shutting down): an old verdict is not a verdict.
		s.Verdict = slo.Unknown
	}
	return s
}

// SLOCounts returns the bad and total events of an SLO in (from, to], and
// whether all of that span could be measured.
func (e *Evaluator) SLOCounts(name string, from, to time.Time) (bad, total float64, complete bool, ok bool) {
	e.mu.RLock()
	st, found := e.slos[name]
	e.mu.RUnlock()
	if !found {
		return 0, 0, false, false
	}
	c, missing := st.tracker.countsBetween(from, to)
	return c.bad, c.total, missing == 0, true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
