// Package evaluator evaluates SLOs and steady-state hypotheses against
// Prometheus continuously and publishes each cycle's verdicts as one
// immutable Snapshot.
//
// SLO windows are not queried whole: every SLO keeps ring buffers of event
// counts per time slice, filled once by range queries and then by asking
// only for the newest slice, so the cost of an evaluation does not grow with
// the window length.
//
// A cycle has five steps: plan (what every SLO and probe needs at time at,
// as data: plan.go), fetch (ask Prometheus, grouped and bounded: fetch.go),
// evaluate (store the answers in the buffers and compute every status from
// them and the previous snapshot: sloeval.go, hypeval.go), commit (publish
// the new snapshot atomically) and notify (the observers: run supervision,
// alerts).
package evaluator

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/slogate/slogate/query"
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
	// Spread delays each SLO's own queries by a hash of its name, up to
	// this share of the interval, so that thousands of SLOs do not hit
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
	// StaleAfter is how old the newest successful evaluation of an SLO or
	// hypothesis may be, when the snapshot is read, before it reads as
	// stale and a verdict as unknown, whatever the loop is doing (waiting
	// on a silent Prometheus, stuck). Default two and a half intervals;
	// serve sets min(2.5 × interval, interval × (1 + Spread) + the query
	// timeout): one interval, the delay of the spread, and one query.
	StaleAfter time.Duration
	// RemoteSLOs, when set, returns the statuses other shards published
	// (evaluator/shared), judged fresh as of the cycle's time: slo: probes
	// on SLOs this shard does not evaluate read them.
	RemoteSLOs func(at time.Time) map[string]SLOStatus
	// RunStarts, when set, returns the start of the active run that
	// watches each hypothesis (by name; the earliest when several do).
	// Baseline tolerances of those hypotheses compare with the baseline
	// taken before that start, and statistical tests with the samples
	// since then; other hypotheses use trailing windows.
	RunStarts func() map[string]time.Time
	// ForecastWindow is the window whose burn rate the budget forecasts
	// assume goes on (default slo.DefaultForecastWindow); an SLO window
	// shorter than it forecasts with its own.
	ForecastWindow time.Duration
	// Now is the clock and After waits on it (default time.Now and
	// time.After); tests set both to a fake clock to drive Run.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

// Evaluator evaluates a Set of definitions every interval.
type Evaluator struct {
	opts    Options
	logger  *zap.Logger
	metrics *selfMetrics
	sem     chan struct{}

	// cycleMu serialises cycles with each other and with definition swaps:
	// only the holder writes the slice buffers and publishes snapshots.
	cycleMu sync.Mutex
	// snap is the latest published snapshot; never nil.
	snap atomic.Pointer[Snapshot]
	// pendingLogged is the backfill count last logged (guarded by cycleMu).
	pendingLogged int
	// retention is how long the backend keeps data, asked hourly when the
	// Querier can tell (query.Retention); 0: unknown (guarded by cycleMu).
	retention      time.Duration
	retentionAsked time.Time
	// groups are the groups of the grouped SLOs (groups.go; guarded by
	// cycleMu).
	groups map[string]*groupSet
	// unionForms caches how each query is embedded in a union (union.go;
	// guarded by cycleMu).
	unionForms unionForms
	// baselines are the frozen baselines of the runs being watched, by
	// probe and run start, asked once per run (guarded by cycleMu).
	baselines map[string]Result
	// heartbeat is the Unix nanoseconds of the loop's last sign of life.
	heartbeat atomic.Int64

	obsMu     sync.Mutex
	observers []func(ctx context.Context, snap *Snapshot)
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
	if opts.After == nil {
		opts.After = time.After
	}
	if opts.ForecastWindow <= 0 {
		opts.ForecastWindow = slo.DefaultForecastWindow
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = opts.Interval*2 + opts.Interval/2
	}
	if opts.ShardCount <= 0 {
		opts.ShardCount = 1
	}
	if opts.ShardIndex < 0 || opts.ShardIndex >= opts.ShardCount {
		return nil, fmt.Errorf("shard.index %d: must be in [0, shard.count=%d)", opts.ShardIndex, opts.ShardCount)
	}
	e := &Evaluator{
		opts:   opts,
		logger: opts.Logger.With(zap.String("component", "evaluator")),
		sem:    make(chan struct{}, opts.MaxConcurrency),
		groups: map[string]*groupSet{},
	}
	e.snap.Store(&Snapshot{staleAfter: opts.StaleAfter, defs: &slo.Set{}, slos: map[string]*sloEntry{}, hyps: map[string]HypothesisStatus{}})
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
	return ShardOf(name, e.opts.ShardCount) == e.opts.ShardIndex
}

// ShardOf is the shard that evaluates the SLO named name when there are
// count shards.
func ShardOf(name string, count int) int {
	if count <= 1 {
		return 0
	}
	return int(hashName(name) % uint64(count))
}

func hashName(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// Definitions returns the current definitions (never nil, never modified).
func (e *Evaluator) Definitions() *slo.Set { return e.snap.Load().defs }

// SetDefinitions replaces the definitions. The new state is built completely
// before it is published; SLOs whose queries did not change keep their
// buffers and alert states, and hypotheses keep their verdicts, until the
// next cycle evaluates them again.
func (e *Evaluator) SetDefinitions(set *slo.Set) error {
	if set == nil {
		return errors.New("evaluator: nil definitions")
	}
	trackers := make(map[string]*sloTracker, len(set.SLOs))
	var errs []error
	for _, def := range set.SLOs {
		if !e.InShard(def.Name) {
			continue
		}
		t, err := newSLOTracker(def, e.opts.Interval, e.opts.MinRange)
		if err != nil {
			errs = append(errs, fmt.Errorf("slo %q: %w", def.Name, err))
			continue
		}
		trackers[def.Name] = t
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	cur := e.snap.Load()
	fresh := map[string]*sloTracker{}
	for name, t := range trackers {
		if _, ok := cur.slos[name]; !ok {
			fresh[name] = t
		}
	}
	e.restoreSnapshots(fresh)

	e.cycleMu.Lock()
	defer e.cycleMu.Unlock()
	cur = e.snap.Load()
	// The groups of grouped SLOs found so far keep being followed, with
	// the definition reloaded.
	groups := e.groupTrackers(trackers)
	freshGroups := map[string]*sloTracker{}
	for name, t := range groups {
		if _, ok := cur.slos[name]; !ok {
			freshGroups[name] = t
		}
		trackers[name] = t
	}
	e.restoreSnapshots(freshGroups)
	next := &Snapshot{
		at: cur.at, lastGood: cur.lastGood, cycles: cur.cycles, staleAfter: e.opts.StaleAfter, defs: set,
		slos: make(map[string]*sloEntry, len(trackers)), hyps: make(map[string]HypothesisStatus, len(set.Hypotheses)),
	}
	pending := 0
	for name, t := range trackers {
		entry := &sloEntry{tracker: t, status: initialSLOStatus(t.def)}
		if old, ok := cur.slos[name]; ok {
			t.adopt(old.tracker)
			if t.sameMeasure(old.tracker) {
				entry.status, entry.backfilled = old.status, old.backfilled
			}
		}
		if !entry.backfilled {
			pending++
		}
		next.slos[name] = entry
	}
	for _, def := range set.Hypotheses {
		st, ok := cur.hyps[def.Name]
		if !ok {
			st = initialHypothesisStatus(def)
		}
		next.hyps[def.Name] = st
	}
	next.sloNames, next.hypNames = sortedNames(next.slos), sortedNames(next.hyps)
	e.snap.Store(next)
	e.metrics.backfillPending.Set(float64(pending))
	return nil
}

// OnCycle registers fn to be called after every evaluation cycle with the
// snapshot the cycle published. Observers run one after the other, before
// the next cycle starts. Call it before Run.
func (e *Evaluator) OnCycle(fn func(ctx context.Context, snap *Snapshot)) {
	e.obsMu.Lock()
	defer e.obsMu.Unlock()
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
	defer e.saveSnapshots()
	lastSnapshot := e.opts.Now()
	for {
		e.beat()
		select {
		case <-ctx.Done():
			return nil
		case <-e.opts.After(max(next.Sub(e.opts.Now()), 0)):
		}
		e.Evaluate(ctx, next)
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

// Evaluate runs one cycle at time at (truncated to the interval): plan,
// fetch, evaluate, commit, notify.
func (e *Evaluator) Evaluate(ctx context.Context, at time.Time) {
	at = at.Truncate(e.opts.Interval)
	e.cycleMu.Lock()
	defer e.cycleMu.Unlock()
	e.beat()
	defer e.beat()
	start := time.Now()
	cur := e.snap.Load()

	e.refreshRetention(ctx, at)
	if e.retention > 0 {
		for _, entry := range cur.slos {
			entry.tracker.setCoveredFrom(at.Add(-e.retention))
		}
	}
	e.prefill(ctx, cur, at)
	p := e.plan(cur, at)
	e.logBackfill(cur, p)
	failures := e.fetch(ctx, p, start)
	if ctx.Err() != nil {
		// Shutting down: what was measured while cancelling is not a verdict.
		return
	}
	next := e.evaluate(cur, p, at)
	next.cycles = cur.cycles + 1
	if failures == 0 {
		next.lastGood = at
		e.metrics.lastSuccess.Set(float64(at.UnixNano()) / 1e9)
	}
	e.snap.Store(next)
	e.metrics.evalDuration.Observe(time.Since(start).Seconds())
	if failures > 0 {
		e.logger.Warn("evaluation had failed queries", zap.Int("failed", failures), zap.Time("at", at))
	}

	e.obsMu.Lock()
	observers := append([]func(context.Context, *Snapshot){}, e.observers...)
	e.obsMu.Unlock()
	for _, fn := range observers {
		fn(ctx, e.Snapshot())
	}
}

// retentionEvery is how often the backend's retention is asked again.
const retentionEvery = time.Hour

// refreshRetention asks the backend how long it keeps data, if it can
// tell and was not asked in the last retentionEvery (cycleMu held). A
// failure keeps what was known.
func (e *Evaluator) refreshRetention(ctx context.Context, at time.Time) {
	r, ok := e.opts.Querier.(query.Retention)
	if !ok || (!e.retentionAsked.IsZero() && at.Sub(e.retentionAsked) < retentionEvery) {
		return
	}
	e.retentionAsked = at
	d, known, err := r.Retention(ctx)
	switch {
	case err != nil:
		e.logger.Warn("cannot read the backend's retention; windows are taken to be covered as before", zap.Error(err))
	case known && d != e.retention:
		e.logger.Info("backend retention: older slices are not asked for, windows reaching further say how much of them is covered", zap.Duration("retention", d))
		e.retention = d
	case !known:
		e.retention = 0
	}
}

// prefillBatch is how many SLOs prefill backfills at a time.
const prefillBatch = 500

// prefill backfills the SLOs of cur that need it, prefillBatch at a time,
// when there are more than that (cycleMu held). A cycle's plan is fetched
// whole before any answer is stored, so a backfill of 10,000 SLOs at once
// held every range answer at the same time: 1.5 GB of heap for 30 days of
// history. Batch by batch, each batch's answers are stored in its SLOs'
// rings and dropped before the next is asked. The cycle's own plan then
// asks only what a batch failed to get.
func (e *Evaluator) prefill(ctx context.Context, cur *Snapshot, at time.Time) {
	var pending []string
	for _, name := range cur.sloNames {
		if !cur.slos[name].backfilled {
			pending = append(pending, name)
		}
	}
	if len(pending) <= prefillBatch {
		return
	}
	for len(pending) > 0 && ctx.Err() == nil {
		batch := pending[:min(prefillBatch, len(pending))]
		pending = pending[len(batch):]
		pl := &planner{p: newPlan(at)}
		for _, name := range batch {
			pl.addSLO(cur.slos[name].tracker)
		}
		e.batchQueries(pl)
		e.fetch(ctx, pl.p, time.Now())
		if ctx.Err() != nil {
			return
		}
		for _, name := range batch {
			// An error leaves its slices missing: the cycle asks again.
			_ = cur.slos[name].tracker.apply(at, pl.p.fetchedFor(name))
		}
	}
}

// plan lists what the SLOs and probes of cur need at time at.
func (e *Evaluator) plan(cur *Snapshot, at time.Time) *plan {
	pl := &planner{p: newPlan(at)}
	if e.opts.Spread > 0 {
		// Backfills are not delayed: nothing is known yet to wait with.
		pl.spread = func(name string) bool { return cur.slos[name].backfilled }
	}
	for _, name := range cur.sloNames {
		pl.addSLO(cur.slos[name].tracker)
	}
	var runStarts map[string]time.Time
	if e.opts.RunStarts != nil {
		runStarts = e.opts.RunStarts()
	}
	for _, h := range cur.defs.Hypotheses {
		pl.addHypothesis(h, runStarts[h.Name], e.baselines)
	}
	e.planDiscovery(pl, cur)
	e.batchQueries(pl)
	return pl.p
}

// batchQueries groups the planned queries of SLOs that differ only in
// label values and unites unrelated instant queries, unless batching is
// off.
func (e *Evaluator) batchQueries(pl *planner) {
	if e.opts.DisableBatching {
		return
	}
	pl.group()
	if len(e.unionForms) > 2*len(pl.p.queries)+1024 {
		e.unionForms = nil // definitions changed: forget the old queries
	}
	if e.unionForms == nil {
		e.unionForms = unionForms{}
	}
	pl.union(e.unionForms)
}

// logBackfill says how many SLOs are being backfilled, when that changes.
func (e *Evaluator) logBackfill(cur *Snapshot, p *plan) {
	pending := 0
	for _, entry := range cur.slos {
		if !entry.backfilled {
			pending++
		}
	}
	if pending > 0 && pending != e.pendingLogged {
		e.logger.Info("backfilling SLO windows from Prometheus", zap.Int("slos", pending), zap.Int("queries", len(p.queries)), zap.Int("grouped", len(p.groups)))
	}
	e.pendingLogged = pending
}

// evaluate stores the answers of p in the SLO buffers and computes the
// statuses of the cycle at time at: SLOs first, then the hypotheses, which
// read the SLO statuses of the same cycle. It returns the snapshot to
// publish.
func (e *Evaluator) evaluate(cur *Snapshot, p *plan, at time.Time) *Snapshot {
	next := &Snapshot{
		at: at, lastGood: cur.lastGood, staleAfter: e.opts.StaleAfter, defs: cur.defs,
		slos: make(map[string]*sloEntry, len(cur.slos)), hyps: make(map[string]HypothesisStatus, len(cur.hyps)),
		sloNames: cur.sloNames, hypNames: cur.hypNames,
	}
	// Storing answers and summing windows is CPU work without I/O: a
	// worker per core.
	entries := make([]*sloEntry, len(cur.sloNames))
	eachInParallel(len(entries), func(i int) {
		name := cur.sloNames[i]
		old := cur.slos[name]
		err := old.tracker.apply(at, p.fetchedFor(name))
		if qe := (*QueryError)(nil); errors.As(err, &qe) && qe.Reason == ReasonBadResult {
			e.metrics.queryFailures.WithLabelValues(ReasonBadResult).Inc()
		}
		st := sloStatus(old.tracker, old.status, at, err, e.opts.ForecastWindow)
		entries[i] = &sloEntry{status: st, tracker: old.tracker, backfilled: old.backfilled || err == nil && st.Fresh}
	})
	done := 0
	for i, entry := range entries {
		name := cur.sloNames[i]
		next.slos[name] = entry
		if entry.backfilled && !cur.slos[name].backfilled {
			done++
		}
	}
	e.updateGroups(next, p, at)
	statuses := make(map[string]SLOStatus, len(next.slos))
	for name, entry := range next.slos {
		statuses[name] = entry.status
	}
	if e.opts.RemoteSLOs != nil {
		for name, st := range e.opts.RemoteSLOs(at) {
			if _, local := statuses[name]; !local {
				statuses[name] = st
			}
		}
	}
	if done > 0 {
		e.metrics.backfillPending.Sub(float64(done))
		e.logger.Info("backfill progress", zap.Int("done", done), zap.Int("pending", e.pendingLogged-done))
	}

	baselines := make(map[string]Result, len(e.baselines))
	for _, h := range cur.defs.Hypotheses {
		answers := make([]probeAnswers, len(h.Probes))
		for i, pq := range p.probes[h.Name] {
			if pq == nil {
				continue
			}
			answers[i] = pq.answers()
			for _, r := range []*Result{&answers[i].value, &answers[i].events, &answers[i].baseline, &answers[i].control} {
				if qe := (*QueryError)(nil); errors.As(r.Err, &qe) && qe.Reason == ReasonBadResult && qe.Query == "" {
					// The backend answered, but not what an instant query
					// gives (a matrix): a failed query all the same.
					qe.Query = pq.value.exprOr(h.Probes[i].Query)
					e.metrics.queryFailures.WithLabelValues(ReasonBadResult).Inc()
				}
			}
			if pq.cacheKey != "" && answers[i].baseline.Outcome == OutcomeValue {
				// A run's baseline is taken before it started: the same
				// for the whole run, asked once.
				baselines[pq.cacheKey] = answers[i].baseline
			}
		}
		next.hyps[h.Name] = hypothesisStatus(h, cur.hyps[h.Name], at, answers, statuses)
	}
	e.baselines = baselines
	return next
}

// eachInParallel calls fn(i) for i in [0, n), a worker per core: for CPU
// work without I/O (storing answers, summing windows, decoding snapshots).
func eachInParallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// exprOr is the query's PromQL, or def for a query never planned.
func (q *plannedQuery) exprOr(def string) string {
	if q == nil {
		return def
	}
	return q.expr
}

func (e *Evaluator) saveSnapshots() {
	if err := e.SaveSnapshots(); err != nil {
		e.logger.Warn("saving the snapshot of SLO windows", zap.Error(err))
	}
}
