package chaos

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/slo"
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

// Options configure a Manager.
type Options struct {
	Store    *store.Store
	Statuses Statuses
	Logger   *zap.Logger
	// Registerer gets slogate_gate_open, slogate_run_active and
	// slogate_runs_total.
	Registerer prometheus.Registerer
	Now        func() time.Time
	// OnTransition is called after a run's state change was stored, e.g. to
	// send the ChaosExperimentAborted alert.
	OnTransition      func(r *store.Run, from api.RunState)
	UnknownAbortAfter int
}

// Manager is the gate and the run supervisor.
type Manager struct {
	opts   Options
	logger *zap.Logger
	total  *prometheus.CounterVec

	mu      sync.Mutex // serialises run state changes
	unknown map[string]int
	changed chan struct{}

	// storeErr is why a write of run state failed for a reason of the
	// store itself (disk full, read-only file system), until a run is
	// stored or checkStore succeeds. It has its own lock because Gate runs
	// both with and without mu held.
	storeMu  sync.Mutex
	storeErr error
}

// While the store refuses writes, each evaluation writes (and removes)
// storeCheckSize bytes under storeCheckKey to notice when it takes them
// again. The check is far larger than a run start: a small write can
// succeed on a full disk by reusing the database's free pages, and the gate
// must not open again before a run really fits.
const (
	storeCheckKey  = "chaos/store-check"
	storeCheckSize = 64 << 10
)

// New validates opts. The Manager starts supervising when the evaluator
// calls OnCycle.
func New(opts Options) (*Manager, error) {
	if opts.Store == nil || opts.Statuses == nil {
		return nil, errors.New("chaos: a store and the evaluator's statuses are required")
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
	m := &Manager{
		opts:    opts,
		logger:  opts.Logger.With(zap.String("component", "runs")),
		unknown: map[string]int{},
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

// Gate answers whether experiment may run now.
func (m *Manager) Gate(experiment string) (*api.GateAnswer, error) {
	exp := m.opts.Statuses.Definitions().Experiment(experiment)
	if exp == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownExperiment, experiment)
	}
	ans := evaluateGate(m.opts.Statuses, exp)
	active, err := m.opts.Store.ListRuns(store.ListFilter{Experiment: experiment, Active: true})
	if err != nil {
		// Without the store we cannot know whether a run is active.
		ans.Reasons = append(ans.Reasons, api.Reason{Kind: api.KindRunActive, Name: experiment, Message: "cannot read runs: " + err.Error()})
		if ans.Status == api.GateOpen {
			ans.Status = api.GateUnknown
		}
		return ans, nil
	}
	for _, r := range active {
		ans.Reasons = append(ans.Reasons, api.Reason{Kind: api.KindRunActive, Name: r.ID, Message: fmt.Sprintf("run %s is %s since %s", r.ID, r.State, r.StartedAt.UTC().Format(time.RFC3339))})
		ans.Status = api.GateClosed
	}
	if err := m.storeError(); err != nil {
		// A run this answer let start could be neither recorded nor
		// supervised: the start would fail, or a run already going would
		// lose its timeline.
		ans.Reasons = append(ans.Reasons, api.Reason{Kind: api.KindRunActive, Name: experiment, Message: "runs cannot be stored: " + err.Error()})
		if ans.Status == api.GateOpen {
			ans.Status = api.GateUnknown
		}
	}
	return ans, nil
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
	if err := m.opts.Store.PutSnapshot(storeCheckKey, make([]byte, storeCheckSize)); err != nil {
		m.storeFailed(err)
		return
	}
	if err := m.opts.Store.DeleteSnapshot(storeCheckKey); err != nil {
		m.logger.Warn("removing the store check", zap.Error(err))
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
	if !ans.Open() {
		return nil, ans, fmt.Errorf("%w: experiment %q: %s", ErrGateClosed, experiment, ans.Status)
	}
	now := m.opts.Now().UTC()
	r := &store.Run{
		ID: store.NewID(now), Experiment: experiment, State: api.StateRunning, StartedAt: now,
		Timeline: []store.TimelineEntry{{At: now, Verdict: string(api.StateRunning), Message: "run started: gate open"}},
	}
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

// Get returns a run with its timeline.
func (m *Manager) Get(id string) (*store.Run, error) { return m.opts.Store.GetRun(id) }

// List returns runs, newest first.
func (m *Manager) List(f store.ListFilter) ([]*store.Run, error) { return m.opts.Store.ListRuns(f) }

// Finish declares the chaos over: the run starts recovering.
func (m *Manager) Finish(id string) (*store.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.opts.Store.GetRun(id)
	if err != nil {
		return nil, err
	}
	if r.State != api.StateRunning {
		return r, fmt.Errorf("%w: run %s is %s, only a running run can finish", ErrConflict, id, r.State)
	}
	now := m.opts.Now().UTC()
	r.FinishedAt = &now
	return r, m.transition(r, api.StateRecovering, "chaos finished; checking recovery", now)
}

// Abort ends a running or recovering run as aborted.
func (m *Manager) Abort(id, reason string) (*store.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.opts.Store.GetRun(id)
	if err != nil {
		return nil, err
	}
	if r.State.Terminal() {
		return r, fmt.Errorf("%w: run %s already %s", ErrConflict, id, r.State)
	}
	if reason == "" {
		reason = "aborted through the API"
	}
	return r, m.transition(r, api.StateAborted, reason, m.opts.Now().UTC())
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
			return r, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return r, nil
		}
	}
}

// transition stores a state change with its timeline entry before anyone is
// told about it.
func (m *Manager) transition(r *store.Run, to api.RunState, reason string, at time.Time, entries ...store.TimelineEntry) error {
	from := r.State
	r.State = to
	r.Reason = reason
	if to.Terminal() {
		r.EndedAt = &at
	}
	entries = append(entries, store.TimelineEntry{At: at, Verdict: string(to), Message: reason})
	if err := m.opts.Store.UpdateRun(r, entries...); err != nil {
		m.storeFailed(err)
		r.State = from
		return fmt.Errorf("storing run %s: %w", r.ID, err)
	}
	r.Timeline = append(r.Timeline, entries...)
	m.logger.Info("run changed state", zap.String("run", r.ID), zap.String("experiment", r.Experiment),
		zap.String("from", string(from)), zap.String("to", string(to)), zap.String("reason", reason))
	if to.Terminal() {
		m.total.WithLabelValues(r.Experiment, string(to)).Inc()
		delete(m.unknown, r.ID)
	}
	m.notify(r, from)
	return nil
}

func (m *Manager) notify(r *store.Run, from api.RunState) {
	close(m.changed)
	m.changed = make(chan struct{})
	if from != "" && m.opts.OnTransition != nil {
		m.opts.OnTransition(r, from)
	}
}

// OnCycle supervises the active runs after an evaluation at time at.
func (m *Manager) OnCycle(_ context.Context, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	runs, err := m.opts.Store.ActiveRuns()
	if err != nil {
		m.logger.Error("cannot read active runs; runs are not supervised this cycle", zap.Error(err))
		return
	}
	for _, r := range runs {
		if err := m.supervise(r, at); err != nil {
			m.logger.Error("supervising run", zap.String("run", r.ID), zap.Error(err))
		}
	}
	if m.storeError() != nil {
		m.checkStore()
	}
}

func (m *Manager) supervise(r *store.Run, at time.Time) error {
	exp := m.opts.Statuses.Definitions().Experiment(r.Experiment)
	if exp == nil {
		return m.transition(r, api.StateAborted, "experiment definition was removed", at)
	}
	var entries []store.TimelineEntry
	var failed, unknown []string
	for _, name := range exp.Hypotheses {
		h, ok := m.opts.Statuses.Hypothesis(name)
		if !ok {
			unknown = append(unknown, name+" (not evaluated)")
			entries = append(entries, store.TimelineEntry{At: at, Hypothesis: name, Verdict: string(slo.Unknown)})
			continue
		}
		for _, p := range h.Probes {
			entries = append(entries, store.TimelineEntry{
				At: at, Hypothesis: name, Probe: p.Name, Value: store.FloatPtr(float64(p.Value)),
				Verdict: string(p.Verdict), Message: p.Error,
			})
		}
		switch h.Verdict {
		case slo.Fail:
			failed = append(failed, name+": "+failingProbes(h))
		case slo.Unknown:
			unknown = append(unknown, name+": "+failingProbes(h))
		}
	}
	spendMsg := ""
	for _, name := range exp.SLOs {
		spent, ok := m.budgetSpent(name, r.StartedAt, at)
		e := store.TimelineEntry{At: at, SLO: name, Value: store.FloatPtr(spent), Verdict: string(slo.Pass), Message: "share of the error budget spent since the start"}
		switch {
		case !ok:
			e.Verdict, e.Message = string(slo.Unknown), "budget spent unknown: SLO data incomplete"
		case exp.MaxBudgetSpend > 0 && spent > exp.MaxBudgetSpend:
			e.Verdict = string(slo.Fail)
			spendMsg = fmt.Sprintf("SLO %s: run spent %s of the error budget, more than maxBudgetSpend %s", name, pct(spent), pct(exp.MaxBudgetSpend))
		}
		if ok && spent > r.BudgetSpent {
			r.BudgetSpent = spent
		}
		entries = append(entries, e)
	}
	if len(unknown) > 0 {
		m.unknown[r.ID]++
	} else {
		delete(m.unknown, r.ID)
	}

	switch r.State {
	case api.StateRunning:
		switch {
		case len(failed) > 0:
			return m.transition(r, api.StateAborted, "hypothesis failed: "+strings.Join(failed, "; "), at, entries...)
		case spendMsg != "":
			return m.transition(r, api.StateAborted, spendMsg, at, entries...)
		case exp.MaxDuration > 0 && at.Sub(r.StartedAt) > exp.MaxDuration:
			return m.transition(r, api.StateAborted, fmt.Sprintf("ran longer than maxDuration %s", slo.FormatDuration(exp.MaxDuration)), at, entries...)
		case exp.OnUnknown != slo.GateOpen && m.unknown[r.ID] >= m.opts.UnknownAbortAfter:
			return m.transition(r, api.StateAborted, fmt.Sprintf("hypothesis unknown for %d evaluations, the run cannot be supervised: %s", m.unknown[r.ID], strings.Join(unknown, "; ")), at, entries...)
		}
	case api.StateRecovering:
		if r.FinishedAt == nil || at.Before(*r.FinishedAt) {
			// This evaluation predates the finish: it says nothing about recovery.
			break
		}
		if len(failed) == 0 && len(unknown) == 0 {
			return m.transition(r, api.StatePassed, "hypotheses hold after the experiment", at, entries...)
		}
		if !at.Before(r.FinishedAt.Add(exp.Recovery)) {
			why := append(failed, unknown...)
			return m.transition(r, api.StateFailed, fmt.Sprintf("hypotheses did not hold again within recovery %s: %s", slo.FormatDuration(exp.Recovery), strings.Join(why, "; ")), at, entries...)
		}
	}
	if err := m.opts.Store.UpdateRun(r, entries...); err != nil {
		m.storeFailed(err)
		return fmt.Errorf("storing run %s: %w", r.ID, err)
	}
	m.notify(r, "")
	return nil
}

// budgetSpent is the share of the SLO window's error budget that bad events
// in (from, to] spent.
func (m *Manager) budgetSpent(name string, from, to time.Time) (float64, bool) {
	def := m.opts.Statuses.Definitions().SLO(name)
	st, ok := m.opts.Statuses.SLO(name)
	if def == nil || !ok || !st.Fresh {
		return math.NaN(), false
	}
	if !to.After(from) {
		return 0, true
	}
	bad, _, complete, ok := m.opts.Statuses.SLOCounts(name, from, to)
	if !ok || !complete {
		return math.NaN(), false
	}
	ws, ok := st.WindowStatus(def.Window)
	if !ok || !ws.Complete {
		return math.NaN(), false
	}
	return slo.BudgetSpent(bad, float64(ws.Total), def.Objective), true
}

func failingProbes(h evaluator.HypothesisStatus) string {
	var parts []string
	for _, p := range h.Probes {
		if p.Verdict != slo.Pass {
			parts = append(parts, p.Name+" "+probeMessage(p))
		}
	}
	if len(parts) == 0 {
		return "verdict " + string(h.Verdict)
	}
	return strings.Join(parts, ", ")
}

// gateCollector exports slogate_gate_open and slogate_run_active per
// experiment, computed at scrape time so they never lag the API.
type gateCollector struct{ m *Manager }

var (
	descGateOpen = prometheus.NewDesc("slogate_gate_open",
		"1 when the experiment's gate is open, 0 when closed or unknown.", []string{"experiment"}, nil)
	descRunActive = prometheus.NewDesc("slogate_run_active",
		"1 while a run of the experiment is running or recovering.", []string{"experiment"}, nil)
)

func (c *gateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descGateOpen
	ch <- descRunActive
}

func (c *gateCollector) Collect(ch chan<- prometheus.Metric) {
	defs := c.m.opts.Statuses.Definitions()
	active := map[string]bool{}
	if runs, err := c.m.opts.Store.ActiveRuns(); err == nil {
		for _, r := range runs {
			active[r.Experiment] = true
		}
	}
	names := make([]string, 0, len(defs.Experiments))
	for _, e := range defs.Experiments {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	for _, name := range names {
		open := 0.0
		if ans, err := c.m.Gate(name); err == nil && ans.Open() {
			open = 1
		}
		ch <- prometheus.MustNewConstMetric(descGateOpen, prometheus.GaugeValue, open, name)
		a := 0.0
		if active[name] {
			a = 1
		}
		ch <- prometheus.MustNewConstMetric(descRunActive, prometheus.GaugeValue, a, name)
	}
}
