package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/internal/clip"
)

// Errors of the run API, for errors.Is.
var (
	ErrUnknownExperiment = errors.New("unknown experiment")
	ErrGateClosed        = errors.New("gate closed")
	ErrConflict          = errors.New("run is not in a state that allows this")
)

// DefaultUnknownAbortAfter is how many evaluations in a row a running
// experiment's hypothesis may be unknown before the run is aborted: an
// experiment nobody can watch is not safe to continue, but one failed scrape
// should not end it.
const DefaultUnknownAbortAfter = 2

// Store persists runs and their timelines. The bbolt store
// (evaluator/store) implements it for one replica, and the PostgreSQL store
// (evaluator/pgstore) for replicas that share it.
//
// Every write is durable when it returns, and is refused with the store's
// sentinel errors when it breaks the rules of runs: store.ErrRunActive for
// a second active run of an experiment, store.ErrInvalidTransition for a
// state that does not follow (api.RunState.CanBecome), store.ErrNotFound,
// store.ErrExists, store.ErrInvalidRun. Any other error is the store's own
// trouble (disk full, database down).
type Store interface {
	CreateRun(r *store.Run) error
	// UpdateRun replaces the record (r.Timeline is ignored) and appends
	// entries to the timeline, in one write.
	UpdateRun(r *store.Run, entries ...store.TimelineEntry) error
	GetRun(id string) (*store.Run, error)
	ListRuns(f store.ListFilter) ([]*store.Run, error)
	// CheckWritable reports whether the store takes a write as large as a
	// run's now.
	CheckWritable() error
}

// Options configure a Manager.
type Options struct {
	Store Store
	// Snapshots returns the latest snapshot the evaluator published.
	Snapshots func() Statuses
	Logger    *zap.Logger
	// Registerer gets slogate_gate_open, slogate_run_active and
	// slogate_runs_total.
	Registerer prometheus.Registerer
	Now        func() time.Time
	// OnTransition is called after a run's state change was stored, e.g. to
	// send the ChaosExperimentAborted alert.
	OnTransition      func(r *store.Run, from api.RunState)
	UnknownAbortAfter int
	// Lease, when set, is the lease that lets one replica of several that
	// share the store supervise the runs: OnCycle supervises only while it
	// is held, and writes its decisions under it (Store must then be a
	// LeasedStore), so that a replica that lost it changes nothing. Without
	// it this replica supervises every run (the embedded store).
	Lease Lease
}

// Lease says whether this replica supervises the runs now.
type Lease interface {
	Held() (store.Lease, bool)
}

// LeasedStore is a store shared by replicas: it checks a lease in the
// transaction of a supervisor's write, failing with store.ErrLeaseLost.
type LeasedStore interface {
	UpdateRunLeased(l store.Lease, r *store.Run, entries ...store.TimelineEntry) error
}

// Manager is the gate and the run supervisor: it gathers what the
// decisions (Decide and the others) need, stores what they decide, and
// then tells the metrics, the long polls and OnTransition.
type Manager struct {
	opts   Options
	policy Policy
	logger *zap.Logger
	total  *prometheus.CounterVec

	mu      sync.Mutex // serialises run state changes
	changed chan struct{}

	// storeErr is why a write of run state failed for a reason of the
	// store itself (disk full, read-only file system), until a run is
	// created or the store's CheckWritable succeeds. It has its own lock
	// because Gate runs both with and without mu held.
	storeMu  sync.Mutex
	storeErr error
}

// New validates opts. The Manager starts supervising when the evaluator
// calls OnCycle.
func New(opts Options) (*Manager, error) {
	if opts.Store == nil || opts.Snapshots == nil {
		return nil, errors.New("chaos: a store and the evaluator's snapshots are required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.UnknownAbortAfter <= 0 {
		opts.UnknownAbortAfter = DefaultUnknownAbortAfter
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if _, ok := opts.Store.(LeasedStore); opts.Lease != nil && !ok {
		return nil, errors.New("chaos: a lease needs a store that checks it (LeasedStore)")
	}
	m := &Manager{
		opts:    opts,
		policy:  Policy{UnknownAbortAfter: opts.UnknownAbortAfter},
		logger:  opts.Logger.With(zap.String("component", "runs")),
		changed: make(chan struct{}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slogate_runs_total",
			Help: "Chaos experiment runs that ended, by verdict (passed, failed, aborted).",
		}, []string{"experiment", "verdict"}),
	}
	if err := opts.Registerer.Register(m.total); err != nil {
		return nil, err
	}
	if err := opts.Registerer.Register(&gateCollector{m: m}); err != nil {
		return nil, err
	}
	return m, nil
}

// Gate answers whether experiment may run now, from one snapshot.
func (m *Manager) Gate(experiment string) (*api.GateAnswer, error) {
	st := m.opts.Snapshots()
	exp := st.Definitions().Experiment(experiment)
	if exp == nil {
		// The name comes from a request: quoted cut, however long.
		return nil, fmt.Errorf("%w %q", ErrUnknownExperiment, clip.Name(experiment))
	}
	active, err := m.opts.Store.ListRuns(store.ListFilter{Experiment: experiment, Active: true})
	return gateAnswer(st, exp, active, err, m.storeError()), nil
}

// Gates answers every experiment's gate, in definition order, from one
// snapshot and one read of the active runs.
func (m *Manager) Gates() []*api.GateAnswer { return m.GatesIn(m.opts.Snapshots()) }

// GatesIn is Gates from snapshot st: a page that shows statuses and gates
// shows them from the same cycle.
func (m *Manager) GatesIn(st Statuses) []*api.GateAnswer {
	answers, _ := m.gates(st)
	return answers
}

// gates also returns which experiments have an active run.
func (m *Manager) gates(st Statuses) ([]*api.GateAnswer, map[string]bool) {
	runs, err := m.opts.Store.ListRuns(store.ListFilter{Active: true})
	active := map[string][]*store.Run{}
	for _, r := range runs {
		active[r.Experiment] = append(active[r.Experiment], r)
	}
	storeErr := m.storeError()
	answers := []*api.GateAnswer{} // none is [], not null, in the API
	running := map[string]bool{}
	for _, exp := range st.Definitions().Experiments {
		answers = append(answers, gateAnswer(st, exp, active[exp.Name], err, storeErr))
		running[exp.Name] = len(active[exp.Name]) > 0
	}
	return answers, running
}

// storeFailed records a failed write of run state. Refusals about the run
// itself (an active run already, a bad transition) say nothing about the
// store.
func (m *Manager) storeFailed(err error) {
	for _, about := range []error{store.ErrRunActive, store.ErrExists, store.ErrNotFound, store.ErrInvalidTransition, store.ErrInvalidRun} {
		if errors.Is(err, about) {
			return
		}
	}
	m.storeMu.Lock()
	defer m.storeMu.Unlock()
	if m.storeErr == nil {
		m.logger.Error("runs cannot be stored; gates are unknown until the store takes writes again", zap.Error(err))
	}
	m.storeErr = err
}

// storeOK records that the store took a run, or the check.
func (m *Manager) storeOK() {
	m.storeMu.Lock()
	defer m.storeMu.Unlock()
	if m.storeErr != nil {
		m.logger.Info("runs can be stored again")
	}
	m.storeErr = nil
}

func (m *Manager) checkStore() {
	if err := m.opts.Store.CheckWritable(); err != nil {
		m.storeFailed(err)
		return
	}
	m.storeOK()
}

func (m *Manager) storeError() error {
	m.storeMu.Lock()
	defer m.storeMu.Unlock()
	return m.storeErr
}

// Start opens a run if the gate is open. A closed or unknown gate gives
// ErrGateClosed and the answer with its reasons.
func (m *Manager) Start(experiment string) (*store.Run, *api.GateAnswer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ans, err := m.Gate(experiment)
	if err != nil {
		return nil, nil, err
	}
	r, err := DecideStart(ans, m.opts.Now())
	if err != nil {
		return nil, ans, err
	}
	r.ID = store.NewID(r.StartedAt)
	if err := m.opts.Store.CreateRun(r); err != nil {
		m.storeFailed(err)
		if errors.Is(err, store.ErrRunActive) {
			return nil, ans, fmt.Errorf("%w: experiment %q: %v", ErrGateClosed, experiment, err)
		}
		return nil, ans, fmt.Errorf("storing run: %w", err)
	}
	m.storeOK()
	m.logger.Info("run started", zap.String("run", r.ID), zap.String("experiment", experiment))
	m.notify(r, "")
	return r, ans, nil
}

// Get returns a run with its timeline. An active run names the replica
// that supervises it now, when replicas share the store.
func (m *Manager) Get(id string) (*store.Run, error) {
	r, err := m.opts.Store.GetRun(id)
	if err == nil {
		m.nameSupervisor(r)
	}
	return r, err
}

// List returns runs, newest first, the active ones named as Get names
// them.
func (m *Manager) List(f store.ListFilter) ([]*store.Run, error) {
	runs, err := m.opts.Store.ListRuns(f)
	for _, r := range runs {
		m.nameSupervisor(r)
	}
	return runs, err
}

// nameSupervisor sets the supervisor of r, if it is active, to the lease's
// holder as this replica last saw it: the stored one is the replica that
// last wrote r under the lease, which may have lost it since, and a run
// just started has none. A run that ended keeps the stored one.
func (m *Manager) nameSupervisor(r *store.Run) {
	if r.State.Terminal() {
		return
	}
	if h, ok := m.opts.Lease.(interface{ Holder() string }); ok {
		if holder := h.Holder(); holder != "" {
			r.Supervisor = holder
		}
	}
}

// Finish declares the chaos over: the run starts recovering.
func (m *Manager) Finish(id string) (*store.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.opts.Store.GetRun(id)
	if err != nil {
		return nil, err
	}
	d, err := DecideFinish(r, m.opts.Now().UTC())
	if err != nil {
		return r, err
	}
	return m.commit(r, d)
}

// Abort ends a running or recovering run as aborted.
func (m *Manager) Abort(id, reason string) (*store.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.opts.Store.GetRun(id)
	if err != nil {
		return nil, err
	}
	d, err := DecideAbort(r, reason, m.opts.Now().UTC())
	if err != nil {
		return r, err
	}
	return m.commit(r, d)
}

// Wait returns the run once its state differs from state or its timeline
// has more than seen entries, or when ctx ends (then with the current run).
func (m *Manager) Wait(ctx context.Context, id string, state api.RunState, seen int) (*store.Run, error) {
	for {
		m.mu.Lock()
		ch := m.changed
		m.mu.Unlock()
		r, err := m.opts.Store.GetRun(id)
		if err != nil {
			return nil, err
		}
		if (state != "" && r.State != state) || len(r.Timeline) > seen || r.State.Terminal() && state == "" {
			m.nameSupervisor(r)
			return r, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			m.nameSupervisor(r)
			return r, nil
		}
	}
}

// commit stores decision d about run r, the state change and its timeline
// entries in one write, before anyone is told about it. It returns the
// run as stored, or r and the error of the store. m.mu is held.
func (m *Manager) commit(r *store.Run, d Decision) (*store.Run, error) {
	return m.commitUnder(nil, r, d)
}

// commitUnder is commit, under lease l when it is set: the supervisor's
// decisions.
func (m *Manager) commitUnder(l *store.Lease, r *store.Run, d Decision) (*store.Run, error) {
	next := d.Apply(r)
	var err error
	if l != nil {
		next.Supervisor = l.Holder
		err = m.opts.Store.(LeasedStore).UpdateRunLeased(*l, next, d.Entries...)
	} else {
		err = m.opts.Store.UpdateRun(next, d.Entries...)
	}
	if err != nil {
		if !errors.Is(err, store.ErrLeaseLost) {
			m.storeFailed(err)
		}
		return r, fmt.Errorf("storing run %s: %w", r.ID, err)
	}
	if !d.Changed() {
		m.notify(next, "")
		return next, nil
	}
	m.logger.Info("run changed state", zap.String("run", r.ID), zap.String("experiment", r.Experiment),
		zap.String("from", string(r.State)), zap.String("to", string(d.State)), zap.String("reason", d.Reason),
		zap.String("cause", string(d.Cause)))
	if d.State.Terminal() {
		m.total.WithLabelValues(r.Experiment, string(d.State)).Inc()
	}
	m.notify(next, r.State)
	return next, nil
}

// notify wakes the long polls and, for a state change (from is set), calls
// OnTransition. m.mu is held.
func (m *Manager) notify(r *store.Run, from api.RunState) {
	close(m.changed)
	m.changed = make(chan struct{})
	if from != "" && m.opts.OnTransition != nil {
		m.opts.OnTransition(r, from)
	}
}

// Wake wakes the long polls, which read their run again: the shared
// store calls it when another replica changed a run.
func (m *Manager) Wake() {
	m.mu.Lock()
	defer m.mu.Unlock()
	close(m.changed)
	m.changed = make(chan struct{})
}

// RunStarts returns, for every hypothesis an active run watches, the
// start of the earliest such run: the evaluator takes those hypotheses'
// baselines from before it and their test samples since (Options.RunStarts
// of the evaluator). A store that cannot be read gives none, and the
// hypotheses fall back to trailing windows for that cycle.
func (m *Manager) RunStarts() map[string]time.Time {
	runs, err := m.opts.Store.ListRuns(store.ListFilter{Active: true})
	if err != nil || len(runs) == 0 {
		return nil
	}
	defs := m.opts.Snapshots().Definitions()
	out := map[string]time.Time{}
	for _, r := range runs {
		exp := defs.Experiment(r.Experiment)
		if exp == nil {
			continue
		}
		for _, h := range exp.Hypotheses {
			if t, ok := out[h]; !ok || r.StartedAt.Before(t) {
				out[h] = r.StartedAt
			}
		}
	}
	return out
}

// OnCycle supervises the active runs with st, the snapshot of the cycle
// that just ended; the evaluation time is st's last cycle. With a Lease,
// only the replica that holds it does.
func (m *Manager) OnCycle(_ context.Context, st Statuses) {
	at, _ := st.LastCycle()
	var lease *store.Lease
	if m.opts.Lease != nil {
		l, held := m.opts.Lease.Held()
		if !held {
			return
		}
		lease = &l
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	runs, err := m.opts.Store.ListRuns(store.ListFilter{Active: true, Timeline: true})
	if err != nil {
		m.logger.Error("cannot read active runs; runs are not supervised this cycle", zap.Error(err))
		return
	}
	defs := st.Definitions()
	for _, r := range runs {
		exp := defs.Experiment(r.Experiment)
		var obs Observations
		if exp != nil {
			obs = Observe(st, exp, r.StartedAt, at)
		}
		if _, err := m.commitUnder(lease, r, Decide(r, obs, exp, at, m.policy)); err != nil {
			if errors.Is(err, store.ErrLeaseLost) {
				m.logger.Info("another replica took over the supervision of runs", zap.Error(err))
				return
			}
			m.logger.Error("supervising run", zap.String("run", r.ID), zap.Error(err))
		}
	}
	if m.storeError() != nil {
		m.checkStore()
	}
}
