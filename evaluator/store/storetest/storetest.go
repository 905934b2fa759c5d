// Package storetest is the contract every run store keeps, as tests: the
// embedded bbolt store and the PostgreSQL store both run it, so that the
// run manager can rely on the same answers from either.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator/store"
)

// Store is what the contract covers.
type Store interface {
	CreateRun(r *store.Run) error
	UpdateRun(r *store.Run, entries ...store.TimelineEntry) error
	AppendTimeline(id string, entries ...store.TimelineEntry) error
	GetRun(id string) (*store.Run, error)
	ListRuns(f store.ListFilter) ([]*store.Run, error)
	PutSnapshot(key string, data []byte) error
	GetSnapshot(key string) ([]byte, error)
	PutSnapshots(data map[string][]byte) error
	GetSnapshots(keys []string) (map[string][]byte, error)
	DeleteSnapshot(key string) error
	CheckWritable() error
}

// Open returns an empty store, closed at the test's cleanup.
type Open func(t *testing.T) Store

var t0 = time.Date(2026, 11, 28, 5, 33, 0, 0, time.UTC)

func newRun(exp string, started time.Time) *store.Run {
	return &store.Run{
		Experiment: exp, State: api.StateRunning, StartedAt: started,
		Baseline: map[string]store.Counts{"checkout": {Bad: 12, Total: 100000}},
		Timeline: []store.TimelineEntry{{At: started, Verdict: "running", Message: "run started"}},
	}
}

func entry(at time.Time, verdict string, v float64) store.TimelineEntry {
	return store.TimelineEntry{At: at, Hypothesis: "steady", Probe: "errors", Value: store.FloatPtr(v), Verdict: verdict}
}

// Run runs the whole contract against stores made by open.
func Run(t *testing.T, open Open) {
	t.Run("lifecycle", func(t *testing.T) { lifecycle(t, open(t)) })
	t.Run("refusals", func(t *testing.T) { refusals(t, open(t)) })
	t.Run("list", func(t *testing.T) { list(t, open(t)) })
	t.Run("snapshots", func(t *testing.T) { snapshots(t, open(t)) })
	t.Run("concurrent starts", func(t *testing.T) { ConcurrentStarts(t, []Store{open(t)}) })
	t.Run("racing decisions", func(t *testing.T) { racingDecisions(t, open(t)) })
}

func lifecycle(t *testing.T, s Store) {
	r := newRun("kill-pod", t0)
	if err := s.CreateRun(r); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	if r.ID == "" {
		t.Fatal("CreateRun left the ID empty")
	}
	fin := t0.Add(5 * time.Minute)
	r.State, r.FinishedAt, r.BudgetSpent, r.UnknownStreak = api.StateRecovering, &fin, 0.012, 1
	r.Repeats = map[string]int{"steady/errors/": 3}
	if err := s.UpdateRun(r, entry(fin, "pass", 0.001)); err != nil {
		t.Fatalf("UpdateRun: %v", err)
	}
	if err := s.AppendTimeline(r.ID, entry(fin.Add(time.Minute), "pass", 0.002), entry(fin.Add(2*time.Minute), "fail", 0.2)); err != nil {
		t.Fatalf("AppendTimeline: %v", err)
	}
	end := fin.Add(3 * time.Minute)
	r.State, r.EndedAt, r.Reason = api.StateFailed, &end, "not recovered"
	r.Timeline = nil // ignored by UpdateRun
	if err := s.UpdateRun(r); err != nil {
		t.Fatalf("UpdateRun to failed: %v", err)
	}
	got, err := s.GetRun(r.ID)
	if err != nil {
		t.Fatalf("GetRun: %v", err)
	}
	want := *r
	want.Timeline = []store.TimelineEntry{
		{At: t0, Verdict: "running", Message: "run started"},
		entry(fin, "pass", 0.001), entry(fin.Add(time.Minute), "pass", 0.002), entry(fin.Add(2*time.Minute), "fail", 0.2),
	}
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("GetRun =\n%+v\nwant\n%+v", got, &want)
	}
	active, err := s.ListRuns(store.ListFilter{Active: true})
	if err != nil || len(active) != 0 {
		t.Errorf("active runs = %v, %v; want none", active, err)
	}
	if err := s.CreateRun(newRun("kill-pod", end)); err != nil {
		t.Errorf("CreateRun after the first ended: %v", err)
	}
}

func refusals(t *testing.T, s Store) {
	r := newRun("kill-pod", t0)
	r.ID = "run-1"
	if err := s.CreateRun(r); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	dup := newRun("other", t0)
	dup.ID = "run-1"
	if err := s.CreateRun(dup); !errors.Is(err, store.ErrExists) {
		t.Errorf("CreateRun with a taken ID: %v, want ErrExists", err)
	}
	if err := s.CreateRun(newRun("kill-pod", t0.Add(time.Minute))); !errors.Is(err, store.ErrRunActive) {
		t.Errorf("second active run: %v, want ErrRunActive", err)
	}
	bad := newRun("", t0)
	if err := s.CreateRun(bad); !errors.Is(err, store.ErrInvalidRun) {
		t.Errorf("run without experiment: %v, want ErrInvalidRun", err)
	}
	back := *r
	back.State = api.StatePassed // running → passed skips recovering
	if err := s.UpdateRun(&back); !errors.Is(err, store.ErrInvalidTransition) {
		t.Errorf("running → passed: %v, want ErrInvalidTransition", err)
	}
	moved := *r
	moved.StartedAt = t0.Add(time.Hour)
	if err := s.UpdateRun(&moved); !errors.Is(err, store.ErrInvalidRun) {
		t.Errorf("changed startedAt: %v, want ErrInvalidRun", err)
	}
	ghost := newRun("kill-pod", t0)
	ghost.ID = "no-such-run"
	if err := s.UpdateRun(ghost); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateRun of a missing run: %v, want ErrNotFound", err)
	}
	if _, err := s.GetRun("no-such-run"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRun of a missing run: %v, want ErrNotFound", err)
	}
	if err := s.AppendTimeline("no-such-run", entry(t0, "pass", 1)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AppendTimeline of a missing run: %v, want ErrNotFound", err)
	}
	// Nothing refused changed the stored run.
	got, err := s.GetRun("run-1")
	if err != nil || got.State != api.StateRunning || len(got.Timeline) != 1 {
		t.Errorf("after refusals: %+v, %v", got, err)
	}
}

func list(t *testing.T, s Store) {
	specs := []struct {
		id, exp string
		start   time.Duration
		state   api.RunState
	}{
		{"r3", "a", 3 * time.Minute, api.StatePassed},
		{"r1", "a", 1 * time.Minute, api.StateAborted},
		{"r5", "b", 5 * time.Minute, api.StateRunning},
		{"r2", "b", 2 * time.Minute, api.StateFailed},
		{"r4a", "c", 4 * time.Minute, api.StateAborted},
		{"r4b", "c", 4 * time.Minute, api.StateRecovering},
		{"r6", "a", 6 * time.Minute, api.StateRunning},
	}
	for _, sp := range specs {
		r := newRun(sp.exp, t0.Add(sp.start))
		r.ID, r.State = sp.id, sp.state
		if err := s.CreateRun(r); err != nil {
			t.Fatalf("CreateRun %s: %v", sp.id, err)
		}
	}
	tests := []struct {
		filter store.ListFilter
		want   []string
	}{
		{store.ListFilter{}, []string{"r6", "r5", "r4b", "r4a", "r3", "r2", "r1"}},
		{store.ListFilter{Experiment: "a"}, []string{"r6", "r3", "r1"}},
		{store.ListFilter{Active: true}, []string{"r6", "r5", "r4b"}},
		{store.ListFilter{Active: true, Experiment: "c"}, []string{"r4b"}},
		{store.ListFilter{Limit: 2}, []string{"r6", "r5"}},
		{store.ListFilter{Experiment: "none"}, nil},
	}
	for _, tt := range tests {
		runs, err := s.ListRuns(tt.filter)
		if err != nil {
			t.Fatalf("ListRuns(%+v): %v", tt.filter, err)
		}
		var ids []string
		for _, r := range runs {
			ids = append(ids, r.ID)
			if (r.Timeline != nil) != tt.filter.Timeline {
				t.Errorf("ListRuns(%+v): run %s has timeline %v", tt.filter, r.ID, r.Timeline)
			}
		}
		if !reflect.DeepEqual(ids, tt.want) {
			t.Errorf("ListRuns(%+v) = %v, want %v", tt.filter, ids, tt.want)
		}
	}
	runs, err := s.ListRuns(store.ListFilter{Active: true, Timeline: true})
	if err != nil || len(runs) != 3 || len(runs[0].Timeline) != 1 {
		t.Errorf("active runs with timelines = %+v, %v", runs, err)
	}
	if _, err := s.ListRuns(store.ListFilter{Limit: -1}); err == nil {
		t.Error("ListRuns with a negative limit: no error")
	}
}

func snapshots(t *testing.T, s Store) {
	if _, err := s.GetSnapshot("slo/a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSnapshot of nothing: %v, want ErrNotFound", err)
	}
	for _, data := range [][]byte{{1, 2, 3}, {4}} {
		if err := s.PutSnapshot("slo/a", data); err != nil {
			t.Fatalf("PutSnapshot: %v", err)
		}
		got, err := s.GetSnapshot("slo/a")
		if err != nil || !reflect.DeepEqual(got, data) {
			t.Errorf("GetSnapshot = %v, %v; want %v", got, err, data)
		}
	}
	if err := s.DeleteSnapshot("slo/a"); err != nil {
		t.Fatalf("DeleteSnapshot: %v", err)
	}
	if _, err := s.GetSnapshot("slo/a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSnapshot after delete: %v, want ErrNotFound", err)
	}
	// In batches: what one batch writes, one read gives back, and keys
	// with nothing are left out.
	batch := map[string][]byte{"slo/b": {5, 6}, "slo/c": {7}, "slo/d": bytes.Repeat([]byte{8}, 20000)}
	if err := s.PutSnapshots(batch); err != nil {
		t.Fatalf("PutSnapshots: %v", err)
	}
	if err := s.PutSnapshots(map[string][]byte{"slo/c": {9}}); err != nil {
		t.Fatalf("PutSnapshots replacing one: %v", err)
	}
	batch["slo/c"] = []byte{9}
	got, err := s.GetSnapshots([]string{"slo/b", "slo/c", "slo/d", "slo/none"})
	if err != nil || !reflect.DeepEqual(got, batch) {
		t.Errorf("GetSnapshots = %v, %v; want %v", len(got), err, len(batch))
	}
	if one, err := s.GetSnapshot("slo/d"); err != nil || !bytes.Equal(one, batch["slo/d"]) {
		t.Errorf("GetSnapshot of a batch's key: %d bytes, %v", len(one), err)
	}
	if err := s.PutSnapshots(map[string][]byte{"": {1}}); err == nil {
		t.Error("PutSnapshots took an empty key")
	}
	if err := s.CheckWritable(); err != nil {
		t.Errorf("CheckWritable: %v", err)
	}
}

// ConcurrentStarts starts one experiment 20 times at once, spread over
// stores (replicas sharing one database, or one store): exactly one start
// wins, the others get ErrRunActive, and one run is active.
func ConcurrentStarts(t *testing.T, stores []Store) {
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = stores[i%len(stores)].CreateRun(newRun("race", t0.Add(time.Duration(i)*time.Millisecond)))
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrRunActive):
			t.Errorf("start %d: %v, want nil or ErrRunActive", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d starts won, want exactly 1", won)
	}
	active, err := stores[0].ListRuns(store.ListFilter{Active: true, Experiment: "race"})
	if err != nil || len(active) != 1 {
		t.Errorf("active runs = %d, %v; want 1", len(active), err)
	}
}

// racingDecisions finishes and aborts one run at once, many times: exactly
// one of the two wins each time, and the timeline has the winner's entry
// only.
func racingDecisions(t *testing.T, s Store) {
	for i := range 10 {
		r := newRun(fmt.Sprintf("exp-%d", i), t0)
		if err := s.CreateRun(r); err != nil {
			t.Fatalf("CreateRun: %v", err)
		}
		at := t0.Add(time.Minute)
		finish, abort := *r, *r
		finish.State, finish.FinishedAt = api.StateRecovering, &at
		abort.State, abort.EndedAt = api.StateAborted, &at
		var wg sync.WaitGroup
		var errFinish, errAbort error
		wg.Add(2)
		go func() {
			defer wg.Done()
			errFinish = s.UpdateRun(&finish, store.TimelineEntry{At: at, Verdict: "recovering"})
		}()
		go func() {
			defer wg.Done()
			errAbort = s.UpdateRun(&abort, store.TimelineEntry{At: at, Verdict: "aborted"})
		}()
		wg.Wait()
		got, err := s.GetRun(r.ID)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case errFinish != nil && errAbort != nil:
			t.Fatalf("both failed: %v; %v", errFinish, errAbort)
		case errAbort == nil:
			// An abort after the finish is a valid transition too
			// (recovering → aborted), so both may win in that order.
			if got.State != api.StateAborted {
				t.Errorf("abort won but the run is %s", got.State)
			}
		default:
			if !errors.Is(errAbort, store.ErrInvalidTransition) {
				t.Errorf("abort lost with %v, want ErrInvalidTransition", errAbort)
			}
			if got.State != api.StateRecovering || len(got.Timeline) != 2 {
				t.Errorf("finish won: run %s with %d entries, want recovering with 2", got.State, len(got.Timeline))
			}
		}
	}
}
