package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/slo"
)

// fakeStatuses is a snapshot the test writes: one hypothesis, one SLO with
// 1,000,000 events in its 30d window (a budget of 1,000 bad events at
// 99.9 %), and bad events since the run started.
type fakeStatuses struct {
	defs      *slo.Set
	last      time.Time
	probe     *evaluator.ProbeStatus // nil: the hypothesis is not evaluated
	bad       float64
	sloFresh  bool
	countsOK  bool
	windowDur time.Duration
}

func newFakeStatuses(at time.Time) *fakeStatuses {
	return &fakeStatuses{
		defs: &slo.Set{
			SLOs:        []*slo.SLO{{Name: "checkout-availability", Service: "checkout", Objective: 99.9, Window: 30 * 24 * time.Hour}},
			Hypotheses:  []*slo.Hypothesis{{Name: "checkout-steady"}},
			Experiments: []*slo.Experiment{experiment(), {Name: "drain-inventory", OnUnknown: slo.GateClosed}},
		},
		last: at, probe: &probePass, sloFresh: true, countsOK: true, windowDur: 30 * 24 * time.Hour,
	}
}

func (f *fakeStatuses) Definitions() *slo.Set { return f.defs }

func (f *fakeStatuses) SLODef(name string) *slo.SLO { return f.defs.SLO(name) }

func (f *fakeStatuses) SLO(name string) (evaluator.SLOStatus, bool) {
	if name != "checkout-availability" {
		return evaluator.SLOStatus{}, false
	}
	return evaluator.SLOStatus{Name: name, Fresh: f.sloFresh, EvaluatedAt: f.last, LastSuccess: f.last,
		Windows: []evaluator.WindowStatus{{Duration: f.windowDur, Total: 1e6, Complete: true}}}, true
}

func (f *fakeStatuses) Hypothesis(name string) (evaluator.HypothesisStatus, bool) {
	if name != "checkout-steady" || f.probe == nil {
		return evaluator.HypothesisStatus{}, false
	}
	return evaluator.HypothesisStatus{Name: name, Verdict: f.probe.Verdict, Probes: []evaluator.ProbeStatus{*f.probe},
		EvaluatedAt: f.last, LastSuccess: f.last, Fresh: true, Since: t0}, true
}

func (f *fakeStatuses) SLOCounts(name string, from, to time.Time) (bad, total float64, complete, ok bool) {
	return f.bad, 1e6, f.countsOK, f.countsOK
}

func (f *fakeStatuses) LastCycle() (last, lastGood time.Time) { return f.last, f.last }

// brokenStore is the real store whose writes fail while broken is set, as
// on a full disk.
type brokenStore struct {
	*store.Store
	broken atomic.Bool
}

var errDiskFull = fmt.Errorf("/data/slogate.db: %w (the disk is full)", syscall.ENOSPC)

func (b *brokenStore) CreateRun(r *store.Run) error {
	if b.broken.Load() {
		return errDiskFull
	}
	return b.Store.CreateRun(r)
}

func (b *brokenStore) UpdateRun(r *store.Run, entries ...store.TimelineEntry) error {
	if b.broken.Load() {
		return errDiskFull
	}
	return b.Store.UpdateRun(r, entries...)
}

func (b *brokenStore) CheckWritable() error {
	if b.broken.Load() {
		return errDiskFull
	}
	return b.Store.CheckWritable()
}

type transition struct {
	run    *store.Run
	from   api.RunState
	stored *store.Run // what the store held when OnTransition was called
}

type env struct {
	st          *fakeStatuses
	db          *brokenStore
	m           *Manager
	reg         *prometheus.Registry
	now         time.Time
	mu          sync.Mutex
	transitions []transition
}

func newEnv(t *testing.T, dir string) *env {
	t.Helper()
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	e := &env{st: newFakeStatuses(t0), db: &brokenStore{Store: s}, reg: prometheus.NewRegistry(), now: t0}
	e.m, err = New(Options{
		Store: e.db, Snapshots: func() Statuses { return e.st }, Registerer: e.reg,
		Now: func() time.Time { return e.now },
		OnTransition: func(r *store.Run, from api.RunState) {
			stored, err := s.GetRun(r.ID)
			if err != nil {
				t.Errorf("OnTransition: run %s is not stored: %v", r.ID, err)
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			e.transitions = append(e.transitions, transition{run: r, from: from, stored: stored})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// cycle supervises after an evaluation at t0+d, read d later.
func (e *env) cycle(d time.Duration) {
	e.st.last = t0.Add(d)
	e.now = e.st.last
	e.m.OnCycle(context.Background(), e.st)
}

func (e *env) start(t *testing.T) *store.Run {
	t.Helper()
	r, ans, err := e.m.Start("kill-checkout-pod")
	if err != nil {
		t.Fatalf("Start: %v (gate %+v)", err, ans)
	}
	return r
}

func (e *env) gate(t *testing.T, experiment string) *api.GateAnswer {
	t.Helper()
	ans, err := e.m.Gate(experiment)
	if err != nil {
		t.Fatal(err)
	}
	return ans
}

// wantGauges checks slogate_gate_open and slogate_run_active, given per
// experiment in that order.
func (e *env) wantGauges(t *testing.T, want map[string][2]int) {
	t.Helper()
	var gate, active strings.Builder
	for _, exp := range slices.Sorted(maps.Keys(want)) {
		fmt.Fprintf(&gate, "slogate_gate_open{experiment=%q} %d\n", exp, want[exp][0])
		fmt.Fprintf(&active, "slogate_run_active{experiment=%q} %d\n", exp, want[exp][1])
	}
	text := "# HELP slogate_gate_open 1 when the experiment's gate is open, 0 when closed or unknown.\n# TYPE slogate_gate_open gauge\n" + gate.String() +
		"# HELP slogate_run_active 1 while a run of the experiment is running or recovering.\n# TYPE slogate_run_active gauge\n" + active.String()
	if err := testutil.CollectAndCompare(e.reg, strings.NewReader(text), "slogate_gate_open", "slogate_run_active"); err != nil {
		t.Error(err)
	}
}

func TestManagerStart(t *testing.T) {
	tests := []struct {
		name       string
		probe      *evaluator.ProbeStatus
		experiment string
		wantErr    error
		wantStatus api.GateStatus
		wantReason string
	}{
		{name: "gate open", probe: &probePass, experiment: "kill-checkout-pod", wantStatus: api.GateOpen},
		{name: "gate closed", probe: &probeFail, experiment: "kill-checkout-pod", wantErr: ErrGateClosed, wantStatus: api.GateClosed,
			wantReason: "verdict fail since 2026-11-28T05:33:00Z"},
		{name: "gate unknown", probe: nil, experiment: "kill-checkout-pod", wantErr: ErrGateClosed, wantStatus: api.GateUnknown,
			wantReason: "hypothesis is not evaluated (yet)"},
		{name: "unknown experiment", probe: &probePass, experiment: "nope", wantErr: ErrUnknownExperiment},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, t.TempDir())
			e.st.probe = tt.probe
			r, ans, err := e.m.Start(tt.experiment)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Start = %v, want %v", err, tt.wantErr)
			}
			if tt.wantStatus != "" && (ans == nil || ans.Status != tt.wantStatus) {
				t.Fatalf("gate answer %+v, want %s", ans, tt.wantStatus)
			}
			if tt.wantReason != "" && (len(ans.Reasons) == 0 || ans.Reasons[0].Message != tt.wantReason) {
				t.Errorf("reasons %+v, want first %q", ans.Reasons, tt.wantReason)
			}
			runs, _ := e.m.List(store.ListFilter{})
			if tt.wantErr != nil {
				if r != nil || len(runs) != 0 {
					t.Errorf("a refused start stored %v", runs)
				}
				return
			}
			stored, err := e.m.Get(r.ID)
			if err != nil || stored.State != api.StateRunning || len(stored.Timeline) != 1 || stored.Timeline[0].Message != "run started: gate open" {
				t.Fatalf("stored run %+v, %v", stored, err)
			}
			// The run closes the gate and is not a transition.
			if ans := e.gate(t, "kill-checkout-pod"); ans.Status != api.GateClosed || ans.Reasons[len(ans.Reasons)-1].Kind != api.KindRunActive {
				t.Errorf("gate with an active run: %+v", ans)
			}
			if _, _, err := e.m.Start("kill-checkout-pod"); !errors.Is(err, ErrGateClosed) {
				t.Errorf("second Start = %v, want ErrGateClosed", err)
			}
			if len(e.transitions) != 0 {
				t.Errorf("transitions %+v", e.transitions)
			}
		})
	}
}

// TestManagerAbortByCycle: a cycle that aborts a run stores it, with its
// timeline entry, before OnTransition is called, and counts it.
func TestManagerAbortByCycle(t *testing.T) {
	e := newEnv(t, t.TempDir())
	r := e.start(t)
	e.cycle(30 * time.Second)
	e.st.probe = &probeFail
	e.cycle(time.Minute)

	if len(e.transitions) != 1 {
		t.Fatalf("%d transitions, want 1", len(e.transitions))
	}
	tr := e.transitions[0]
	reason := "hypothesis failed: checkout-steady: error-rate value 0.05 not within tolerance < 0.01 (verdict fail)"
	if tr.from != api.StateRunning || tr.run.State != api.StateAborted || tr.run.Reason != reason {
		t.Errorf("OnTransition(%+v, %s)", tr.run, tr.from)
	}
	last := tr.stored.Timeline[len(tr.stored.Timeline)-1]
	if tr.stored.State != api.StateAborted || tr.stored.EndedAt == nil || last.Verdict != "aborted" || last.Message != reason {
		t.Errorf("stored when OnTransition was called: %+v", tr.stored)
	}
	// started, two cycles of (probe, SLO), the abort
	if len(tr.stored.Timeline) != 6 || len(tr.run.Timeline) != 6 {
		t.Errorf("timeline of %d entries stored, %d handed over, want 6", len(tr.stored.Timeline), len(tr.run.Timeline))
	}
	if got := testutil.ToFloat64(e.m.total.WithLabelValues("kill-checkout-pod", "aborted")); got != 1 {
		t.Errorf("slogate_runs_total{verdict=aborted} = %v", got)
	}
	// An aborted run is over: a later cycle leaves it, the API refuses.
	e.cycle(90 * time.Second)
	if got, _ := e.m.Get(r.ID); len(got.Timeline) != 6 {
		t.Errorf("a cycle after the abort wrote to the timeline: %d entries", len(got.Timeline))
	}
	if _, err := e.m.Abort(r.ID, ""); !errors.Is(err, ErrConflict) {
		t.Errorf("Abort of an aborted run = %v, want ErrConflict", err)
	}
	if _, err := e.m.Finish(r.ID); !errors.Is(err, ErrConflict) {
		t.Errorf("Finish of an aborted run = %v, want ErrConflict", err)
	}
}

func TestManagerRecovery(t *testing.T) {
	e := newEnv(t, t.TempDir())
	r := e.start(t)
	e.st.bad = 20 // 2 % of the budget
	e.cycle(30 * time.Second)
	e.now = t0.Add(50 * time.Second)
	fin, err := e.m.Finish(r.ID)
	if err != nil || fin.State != api.StateRecovering || fin.FinishedAt == nil || !fin.FinishedAt.Equal(e.now) {
		t.Fatalf("Finish = %+v, %v", fin, err)
	}
	if _, err := e.m.Finish(r.ID); !errors.Is(err, ErrConflict) {
		t.Errorf("second Finish = %v, want ErrConflict", err)
	}
	// The evaluation at 30s predates the finish: no verdict yet.
	e.st.last = t0.Add(30 * time.Second)
	e.m.OnCycle(context.Background(), e.st)
	if got, _ := e.m.Get(r.ID); got.State != api.StateRecovering {
		t.Fatalf("state %s after an evaluation before the finish", got.State)
	}
	e.cycle(time.Minute)
	got, _ := e.m.Get(r.ID)
	if got.State != api.StatePassed || got.Reason != "hypotheses hold after the experiment" || math.Abs(got.BudgetSpent-0.02) > 1e-9 {
		t.Fatalf("run after recovery: %+v", got)
	}
	if n := len(e.transitions); n != 2 || e.transitions[0].from != api.StateRunning || e.transitions[1].from != api.StateRecovering {
		t.Errorf("transitions %+v", e.transitions)
	}
	if got := testutil.ToFloat64(e.m.total.WithLabelValues("kill-checkout-pod", "passed")); got != 1 {
		t.Errorf("slogate_runs_total{verdict=passed} = %v", got)
	}
}

// TestManagerUnknownStreakSurvivesRestart: the streak is in the stored run,
// so a restart between two unknown evaluations does not reset it.
func TestManagerUnknownStreakSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	first := newEnv(t, dir)
	r := first.start(t)
	first.st.probe = &probeNoData
	first.cycle(30 * time.Second)
	if got, _ := first.m.Get(r.ID); got.State != api.StateRunning || got.UnknownStreak != 1 {
		t.Fatalf("after one unknown evaluation: %s, streak %d", got.State, got.UnknownStreak)
	}
	if err := first.db.Close(); err != nil {
		t.Fatal(err)
	}

	second := newEnv(t, dir)
	second.st.probe = &probeNoData
	second.cycle(time.Minute)
	got, _ := second.m.Get(r.ID)
	if got.State != api.StateAborted || !strings.HasPrefix(got.Reason, "hypothesis unknown for 2 evaluations") {
		t.Errorf("after a restart and another unknown evaluation: %s %q", got.State, got.Reason)
	}
}

// TestManagerStoreFailure: a run state that cannot be stored makes every
// gate unknown until the store takes writes again, and nobody hears of a
// change that was not stored.
func TestManagerStoreFailure(t *testing.T) {
	e := newEnv(t, t.TempDir())
	r := e.start(t)
	if ans := e.gate(t, "drain-inventory"); ans.Status != api.GateOpen {
		t.Fatalf("gate of drain-inventory before: %+v", ans)
	}

	e.db.broken.Store(true)
	e.st.probe = &probeFail
	e.cycle(30 * time.Second)
	if len(e.transitions) != 0 {
		t.Errorf("OnTransition called for a change the store refused: %+v", e.transitions)
	}
	if got, _ := e.m.Get(r.ID); got.State != api.StateRunning || len(got.Timeline) != 1 {
		t.Errorf("stored run %s with %d entries, want it untouched", got.State, len(got.Timeline))
	}
	ans := e.gate(t, "drain-inventory")
	want := "runs cannot be stored: " + errDiskFull.Error()
	if ans.Status != api.GateUnknown || len(ans.Reasons) != 1 || ans.Reasons[0].Kind != api.KindRunActive || ans.Reasons[0].Message != want {
		t.Errorf("gate while the store fails: %+v, want unknown: %q", ans, want)
	}
	e.wantGauges(t, map[string][2]int{"drain-inventory": {0, 0}, "kill-checkout-pod": {0, 1}})
	if _, _, err := e.m.Start("drain-inventory"); !errors.Is(err, ErrGateClosed) {
		t.Errorf("Start while the store fails = %v, want ErrGateClosed", err)
	}

	// Still broken: the check at the end of the cycle fails too.
	e.cycle(time.Minute)
	if ans := e.gate(t, "drain-inventory"); ans.Status != api.GateUnknown {
		t.Errorf("gate after a failed check: %+v", ans)
	}

	// The store works again: this cycle stores the abort and the check
	// opens the gate.
	e.db.broken.Store(false)
	e.cycle(90 * time.Second)
	if got, _ := e.m.Get(r.ID); got.State != api.StateAborted {
		t.Errorf("run %s once the store works, want aborted", got.State)
	}
	if len(e.transitions) != 1 || e.transitions[0].stored.State != api.StateAborted {
		t.Errorf("transitions %+v", e.transitions)
	}
	if ans := e.gate(t, "drain-inventory"); ans.Status != api.GateOpen {
		t.Errorf("gate once the store works: %+v", ans)
	}
	e.wantGauges(t, map[string][2]int{"drain-inventory": {1, 0}, "kill-checkout-pod": {0, 0}})
}

// TestManagerGatesOneSnapshot: Gates and the collector read the snapshot
// once for all experiments.
func TestManagerGatesOneSnapshot(t *testing.T) {
	e := newEnv(t, t.TempDir())
	reads := 0
	e.m.opts.Snapshots = func() Statuses { reads++; return e.st }
	answers := e.m.Gates()
	if reads != 1 || len(answers) != 2 || answers[0].Experiment != "kill-checkout-pod" || answers[1].Experiment != "drain-inventory" {
		t.Errorf("Gates read %d snapshots: %+v", reads, answers)
	}
	reads = 0
	if _, err := e.reg.Gather(); err != nil {
		t.Fatal(err)
	}
	if reads != 1 {
		t.Errorf("a scrape read %d snapshots, want 1", reads)
	}
}
