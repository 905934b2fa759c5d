package chaos

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator/store"
)

// fakeLease is this replica's view of the supervision lease, as a keeper
// of the shared store would give it: the test grants it and takes it away.
// The Manager asks from its own goroutines, hence the lock.
type fakeLease struct {
	mu    sync.Mutex
	lease store.Lease
	held  bool
	other string // Holder when not held: another replica, "" when unknown
}

func (f *fakeLease) set(l store.Lease, held bool, other string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lease, f.held, f.other = l, held, other
}

func (f *fakeLease) Held() (store.Lease, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lease, f.held
}

func (f *fakeLease) Holder() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held {
		return f.lease.Holder
	}
	return f.other
}

// leasedStore is the real store with the check of a shared one: a write
// under a lease succeeds only while that lease is the one granted last,
// checked and written under one lock as in one transaction. It counts the
// writes of runs, and tells reads when reads is set.
type leasedStore struct {
	*store.Store
	reads chan<- string // set before the Manager is used

	mu            sync.Mutex
	granted       store.Lease
	leased, plain int
}

func (s *leasedStore) grant(l store.Lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.granted = l
}

// writes returns how many writes of runs were tried under a lease and
// without one.
func (s *leasedStore) writes() (leased, plain int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leased, s.plain
}

func (s *leasedStore) UpdateRunLeased(l store.Lease, r *store.Run, entries ...store.TimelineEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leased++
	if l != s.granted {
		return fmt.Errorf("update run %s: %w (lease %s, fence %d)", r.ID, store.ErrLeaseLost, l.Name, l.Fence)
	}
	return s.Store.UpdateRun(r, entries...)
}

func (s *leasedStore) UpdateRun(r *store.Run, entries ...store.TimelineEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.plain++
	return s.Store.UpdateRun(r, entries...)
}

func (s *leasedStore) GetRun(id string) (*store.Run, error) {
	r, err := s.Store.GetRun(id)
	if s.reads != nil {
		s.reads <- id
	}
	return r, err
}

// The supervision lease held by this replica (r1) or another (r2), at
// successive fences.
var (
	leaseR1      = store.Lease{Name: "run-supervisor", Holder: "r1", Fence: 1}
	leaseR2      = store.Lease{Name: "run-supervisor", Holder: "r2", Fence: 2}
	leaseR1Again = store.Lease{Name: "run-supervisor", Holder: "r1", Fence: 3}
)

const failedReason = "hypothesis failed: checkout-steady: error-rate value 0.05 not within tolerance < 0.01 (verdict fail)"

// leaseEnv is a replica of several that share a store: its Manager
// supervises under lease.
type leaseEnv struct {
	st    *fakeStatuses
	db    *leasedStore
	lease *fakeLease
	m     *Manager
	logs  *observer.ObservedLogs

	mu          sync.Mutex
	transitions []transition
}

func newLeaseEnv(t *testing.T) *leaseEnv {
	t.Helper()
	s, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	core, logs := observer.New(zapcore.InfoLevel)
	e := &leaseEnv{st: newFakeStatuses(t0), db: &leasedStore{Store: s}, lease: &fakeLease{}, logs: logs}
	e.m, err = New(Options{
		Store: e.db, Snapshots: func() Statuses { return e.st }, Registerer: prometheus.NewRegistry(),
		Logger: zap.New(core), Now: func() time.Time { return t0 }, Lease: e.lease,
		OnTransition: func(r *store.Run, from api.RunState) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.transitions = append(e.transitions, transition{run: r, from: from})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// cycle supervises after an evaluation at t0+d.
func (e *leaseEnv) cycle(d time.Duration) {
	e.st.last = t0.Add(d)
	e.m.OnCycle(context.Background(), e.st)
}

// hold gives l to this replica, in the store and in its view.
func (e *leaseEnv) hold(l store.Lease) {
	e.db.grant(l)
	e.lease.set(l, true, "")
}

// lose gives l to another replica, in the store and in this one's view.
func (e *leaseEnv) lose(l store.Lease) {
	e.db.grant(l)
	e.lease.set(store.Lease{}, false, l.Holder)
}

func (e *leaseEnv) start(t *testing.T, experiment string) *store.Run {
	t.Helper()
	r, ans, err := e.m.Start(experiment)
	if err != nil {
		t.Fatalf("Start(%s): %v (gate %+v)", experiment, err, ans)
	}
	return r
}

// stored is run id as the store holds it, not as the Manager serves it.
func (e *leaseEnv) stored(t *testing.T, id string) *store.Run {
	t.Helper()
	r, err := e.db.Store.GetRun(id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *leaseEnv) transitionsSoFar() []transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]transition(nil), e.transitions...)
}

// TestLeaseNotHeld: a replica without the lease leaves the runs alone,
// even one whose hypothesis fails; once it holds the lease it aborts that
// run, under the lease, by the usual rules.
func TestLeaseNotHeld(t *testing.T) {
	e := newLeaseEnv(t)
	e.lose(leaseR2)
	r := e.start(t, "kill-checkout-pod")
	e.st.probe = &probeFail
	e.cycle(30 * time.Second)

	if leased, plain := e.db.writes(); leased != 0 || plain != 0 {
		t.Errorf("a replica without the lease wrote runs: %d under a lease, %d without", leased, plain)
	}
	got := e.stored(t, r.ID)
	if got.State != api.StateRunning || len(got.Timeline) != 1 || got.UnknownStreak != 0 || got.Supervisor != "" {
		t.Errorf("run after a cycle without the lease: %s, %d entries, streak %d, supervisor %q; want it untouched",
			got.State, len(got.Timeline), got.UnknownStreak, got.Supervisor)
	}
	if tr := e.transitionsSoFar(); len(tr) != 0 {
		t.Errorf("transitions without the lease: %+v", tr)
	}

	e.hold(leaseR1Again)
	e.cycle(time.Minute)
	got = e.stored(t, r.ID)
	last := got.Timeline[len(got.Timeline)-1]
	if got.State != api.StateAborted || got.Reason != failedReason || got.EndedAt == nil || !got.EndedAt.Equal(t0.Add(time.Minute)) ||
		last.Verdict != "aborted" || got.Supervisor != "r1" {
		t.Errorf("run after a cycle under the lease: %+v, want aborted at %s by r1: %q", got, t0.Add(time.Minute), failedReason)
	}
	if tr := e.transitionsSoFar(); len(tr) != 1 || tr[0].from != api.StateRunning || tr[0].run.State != api.StateAborted {
		t.Errorf("transitions under the lease: %+v, want one running → aborted", tr)
	}
	if leased, plain := e.db.writes(); leased != 1 || plain != 0 {
		t.Errorf("writes under the lease: %d under it, %d without; want the one under it", leased, plain)
	}
	if got := testutil.ToFloat64(e.m.total.WithLabelValues("kill-checkout-pod", "aborted")); got != 1 {
		t.Errorf("slogate_runs_total{verdict=aborted} = %v", got)
	}
}

// TestLeaseLostBeforeWrite: another replica takes the lease after this one
// read it as held and before it writes. The store refuses the first write
// and the cycle stops there: nothing stored, nobody told, no store trouble
// recorded, no error logged. The next cycle under the lease proceeds.
func TestLeaseLostBeforeWrite(t *testing.T) {
	e := newLeaseEnv(t)
	e.hold(leaseR1)
	kill := e.start(t, "kill-checkout-pod")
	drain := e.start(t, "drain-inventory")
	e.cycle(30 * time.Second)
	if leased, plain := e.db.writes(); leased != 2 || plain != 0 {
		t.Fatalf("first cycle: %d writes under the lease, %d without; want 2 under it", leased, plain)
	}
	before := map[string]*store.Run{kill.ID: e.stored(t, kill.ID), drain.ID: e.stored(t, drain.ID)}

	e.db.grant(leaseR2) // this replica has not noticed yet: it still reads leaseR1 as held
	e.st.probe = &probeFail
	e.logs.TakeAll()
	e.cycle(time.Minute)

	if leased, plain := e.db.writes(); leased != 3 || plain != 0 {
		t.Errorf("cycle that lost the lease: %d writes tried under it, %d without; want one (the cycle stops at the first refusal)", leased-2, plain)
	}
	for id, want := range before {
		if got := e.stored(t, id); !reflect.DeepEqual(got, want) {
			t.Errorf("run %s changed by a cycle that lost the lease:\n got %+v\nwant %+v", id, got, want)
		}
	}
	if tr := e.transitionsSoFar(); len(tr) != 0 {
		t.Errorf("transitions of a cycle that lost the lease: %+v", tr)
	}
	if err := e.m.storeError(); err != nil {
		t.Errorf("a lost lease counted as store trouble: %v", err)
	}
	for _, ans := range e.m.Gates() {
		if ans.Status == api.GateUnknown {
			t.Errorf("gate of %s is unknown after a lost lease: %+v", ans.Experiment, ans.Reasons)
		}
	}
	logged := e.logs.TakeAll()
	for _, l := range logged {
		if l.Level >= zapcore.WarnLevel {
			t.Errorf("logged at %s: %s %v", l.Level, l.Message, l.ContextMap())
		}
	}
	if len(logged) != 1 || !strings.Contains(logged[0].Message, "another replica took over") {
		t.Errorf("logs of a cycle that lost the lease: %+v, want one saying another replica took over", logged)
	}

	// The keeper notices; a cycle without the lease does nothing.
	e.lose(leaseR2)
	e.cycle(90 * time.Second)
	if leased, plain := e.db.writes(); leased != 3 || plain != 0 {
		t.Errorf("cycle without the lease wrote: %d under a lease, %d without", leased-3, plain)
	}

	// The lease comes back: the cycle aborts the failing run.
	e.hold(leaseR1Again)
	e.cycle(2 * time.Minute)
	if got := e.stored(t, kill.ID); got.State != api.StateAborted || got.Reason != failedReason || got.Supervisor != "r1" {
		t.Errorf("kill-checkout-pod once the lease is back: %s %q supervised by %q, want aborted by r1", got.State, got.Reason, got.Supervisor)
	}
	if got := e.stored(t, drain.ID); got.State != api.StateRunning || got.Supervisor != "r1" {
		t.Errorf("drain-inventory once the lease is back: %s supervised by %q, want running under r1", got.State, got.Supervisor)
	}
	if tr := e.transitionsSoFar(); len(tr) != 1 || tr[0].run.ID != kill.ID || tr[0].run.State != api.StateAborted {
		t.Errorf("transitions once the lease is back: %+v, want kill-checkout-pod aborted once", tr)
	}
}

// TestLeaseSupervisorOfRuns: an active run is served as supervised by the
// lease's holder as this replica last saw it, or by the replica that
// stored it last when the holder is unknown; a run that ended keeps the
// replica that ended it.
func TestLeaseSupervisorOfRuns(t *testing.T) {
	tests := []struct {
		name       string
		view       func(*fakeLease)
		wantActive string
	}{
		{name: "this replica holds the lease", view: func(f *fakeLease) { f.set(leaseR1Again, true, "") }, wantActive: "r1"},
		{name: "another replica holds it", view: func(f *fakeLease) { f.set(store.Lease{}, false, "r2") }, wantActive: "r2"},
		{name: "holder unknown", view: func(f *fakeLease) { f.set(store.Lease{}, false, "") }, wantActive: "r0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newLeaseEnv(t)
			// r0 supervised both runs and aborted the failing one.
			e.hold(store.Lease{Name: "run-supervisor", Holder: "r0", Fence: 1})
			ended := e.start(t, "kill-checkout-pod")
			active := e.start(t, "drain-inventory")
			e.st.probe = &probeFail
			e.cycle(30 * time.Second)
			if got := e.stored(t, ended.ID); got.State != api.StateAborted || got.Supervisor != "r0" {
				t.Fatalf("ended run: %s by %q, want aborted by r0", got.State, got.Supervisor)
			}
			if got := e.stored(t, active.ID); got.State != api.StateRunning || got.Supervisor != "r0" {
				t.Fatalf("active run: %s by %q, want running under r0", got.State, got.Supervisor)
			}

			tt.view(e.lease)
			want := map[string]string{ended.ID: "r0", active.ID: tt.wantActive}
			for id, sup := range want {
				got, err := e.m.Get(id)
				if err != nil || got.Supervisor != sup {
					t.Errorf("Get(%s): supervisor %q, %v; want %q", id, got.Supervisor, err, sup)
				}
			}
			for _, f := range []store.ListFilter{{}, {Active: true}, {Experiment: "kill-checkout-pod"}} {
				runs, err := e.m.List(f)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range runs {
					if r.Supervisor != want[r.ID] {
						t.Errorf("List(%+v): run %s (%s) supervised by %q, want %q", f, r.ID, r.State, r.Supervisor, want[r.ID])
					}
				}
			}
			if got := e.stored(t, active.ID); got.Supervisor != "r0" {
				t.Errorf("serving the run changed the stored supervisor to %q", got.Supervisor)
			}
		})
	}
}

// TestNewLeaseNeedsLeasedStore: a Manager cannot supervise under a lease
// that its store does not check.
func TestNewLeaseNeedsLeasedStore(t *testing.T) {
	s, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	tests := []struct {
		name    string
		store   Store
		lease   Lease
		wantErr string
	}{
		{name: "lease over the embedded store", store: s, lease: &fakeLease{}, wantErr: "chaos: a lease needs a store that checks it (LeasedStore)"},
		{name: "lease over a wrapped store", store: &brokenStore{Store: s}, lease: &fakeLease{}, wantErr: "chaos: a lease needs a store that checks it (LeasedStore)"},
		{name: "lease over a leased store", store: &leasedStore{Store: s}, lease: &fakeLease{}},
		{name: "embedded store without a lease", store: s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(Options{Store: tt.store, Snapshots: func() Statuses { return newFakeStatuses(t0) }, Lease: tt.lease})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("New = %v, want %q", err, tt.wantErr)
			case tt.wantErr != "" && m != nil:
				t.Errorf("New returned a Manager with its error")
			}
		})
	}
}

// hangGuard bounds a wait that should end at once, so that a broken Wake
// fails the test instead of hanging it; no result depends on it.
const hangGuard = 10 * time.Second

// TestWakeWakesWait: a run that another replica changed in the shared
// store reaches a pending Wait when the store calls Wake, and not before.
func TestWakeWakesWait(t *testing.T) {
	e := newLeaseEnv(t)
	reads := make(chan string, 8)
	e.db.reads = reads
	e.lose(leaseR2)
	r := e.start(t, "kill-checkout-pod")
	if len(reads) != 0 {
		t.Fatalf("Start read the run through GetRun")
	}

	// waitThrough starts a Wait for a change after seen entries, makes
	// change once Wait has read the run, and returns what Wait returns
	// after Wake.
	waitThrough := func(seen int, change func(*store.Run) (*store.Run, []store.TimelineEntry)) *store.Run {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan *store.Run, 1)
		go func() {
			got, err := e.m.Wait(ctx, r.ID, api.StateRunning, seen)
			if err != nil {
				t.Errorf("Wait: %v", err)
			}
			done <- got
		}()
		<-reads // Wait has read the run unchanged and waits for a wake-up
		next, entries := change(e.stored(t, r.ID))
		if err := e.db.Store.UpdateRun(next, entries...); err != nil { // another replica's write
			t.Fatal(err)
		}
		select {
		case got := <-done:
			t.Fatalf("Wait returned before Wake: %+v", got)
		default:
		}
		e.m.Wake()
		select {
		case got := <-done:
			for len(reads) > 0 { // Wait's reads after the wake-up, all sent before it returned
				<-reads
			}
			return got
		case <-time.After(hangGuard):
			t.Fatal("Wait did not return after Wake")
			return nil
		}
	}

	// r2 records a measurement: the run stays active, supervised by r2,
	// though the record does not say so.
	at := t0.Add(30 * time.Second)
	got := waitThrough(1, func(run *store.Run) (*store.Run, []store.TimelineEntry) {
		return run, []store.TimelineEntry{{At: at, Hypothesis: "checkout-steady", Probe: "error-rate", Verdict: "pass"}}
	})
	if got.State != api.StateRunning || len(got.Timeline) != 2 || !got.Timeline[1].At.Equal(at) || got.Supervisor != "r2" {
		t.Errorf("Wait after a measurement and Wake: %s, %d entries, supervisor %q; want running, 2 entries, r2", got.State, len(got.Timeline), got.Supervisor)
	}

	// r2 aborts it.
	at = t0.Add(time.Minute)
	got = waitThrough(2, func(run *store.Run) (*store.Run, []store.TimelineEntry) {
		run.State, run.Reason, run.EndedAt, run.Supervisor = api.StateAborted, failedReason, &at, "r2"
		return run, []store.TimelineEntry{{At: at, Verdict: "aborted", Message: failedReason}}
	})
	if got.State != api.StateAborted || got.Reason != failedReason || len(got.Timeline) != 3 || got.Supervisor != "r2" {
		t.Errorf("Wait after an abort and Wake: %s %q, %d entries, supervisor %q; want aborted, 3 entries, r2", got.State, got.Reason, len(got.Timeline), got.Supervisor)
	}
}
