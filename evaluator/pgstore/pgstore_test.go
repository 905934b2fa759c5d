package pgstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/evaluator/store/storetest"
	"github.com/slogate/slogate/internal/testenv"
)

func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{URL: url})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	pg := testenv.StartPostgres(t)
	storetest.Run(t, func(t *testing.T) storetest.Store { return open(t, pg.NewDatabase(t)) })
}

// TestStartsAcrossReplicas is 20 starts of one experiment spread over
// three stores (three replicas' pools) on one database: the unique index
// lets exactly one win.
func TestStartsAcrossReplicas(t *testing.T) {
	pg := testenv.StartPostgres(t)
	url := pg.NewDatabase(t)
	var stores []storetest.Store
	for range 3 {
		stores = append(stores, open(t, url))
	}
	for i := range 5 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			storetest.ConcurrentStarts(t, stores)
			active, _ := stores[1].ListRuns(store.ListFilter{Active: true})
			for _, r := range active {
				r.State = api.StateAborted
				if err := stores[2].UpdateRun(r); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestActiveStatesMatchAPI(t *testing.T) {
	for _, s := range []api.RunState{api.StateRunning, api.StateRecovering, api.StatePassed, api.StateFailed, api.StateAborted} {
		in := false
		for _, a := range activeStates {
			in = in || a == string(s)
		}
		if in == s.Terminal() {
			t.Errorf("state %s: in the active index %v, terminal %v", s, in, s.Terminal())
		}
	}
}

func TestMigrations(t *testing.T) {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		t.Fatalf("migrations: %v, %d", err, len(ms))
	}
	pg := testenv.StartPostgres(t)
	url := pg.NewDatabase(t)
	// Replicas starting together migrate once; none fails.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), Options{URL: url})
			if err == nil {
				_ = s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	s := open(t, url)
	var n int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM slogate_schema_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Errorf("versions recorded: %d, %v; want %d", n, err, len(ms))
	}
	// A schema newer than this binary: refused, and it says what to do.
	if _, err := s.pool.Exec(context.Background(), `INSERT INTO slogate_schema_migrations (version, name) VALUES ($1, 'future.sql')`, len(ms)+1); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), Options{URL: url})
	if !errors.Is(err, store.ErrSchema) || !strings.Contains(err.Error(), fmt.Sprintf("schema version %d", len(ms)+1)) || !strings.Contains(err.Error(), "newer slogate") {
		t.Errorf("Open of a newer schema: %v", err)
	}
}

func TestLeaseAndFence(t *testing.T) {
	pg := testenv.StartPostgres(t)
	url := pg.NewDatabase(t)
	a, b := open(t, url), open(t, url)
	ctx := context.Background()

	la, held, err := a.AcquireLease(ctx, SupervisorLease, "a", time.Hour)
	if err != nil || !held || la.Fence != 1 {
		t.Fatalf("a acquires: %+v %v %v", la, held, err)
	}
	if other, held, err := b.AcquireLease(ctx, SupervisorLease, "b", time.Hour); err != nil || held || other.Holder != "a" {
		t.Fatalf("b while a holds: %+v %v %v", other, held, err)
	}
	if again, held, _ := a.AcquireLease(ctx, SupervisorLease, "a", time.Hour); !held || again.Fence != la.Fence {
		t.Errorf("a renews: %+v %v, want the same fence", again, held)
	}

	r := &store.Run{Experiment: "e", State: api.StateRunning, StartedAt: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)}
	if err := a.CreateRun(r); err != nil {
		t.Fatal(err)
	}
	at := r.StartedAt.Add(time.Minute)
	if err := a.UpdateRunLeased(la, r, store.TimelineEntry{At: at, Verdict: "pass"}); err != nil {
		t.Fatalf("write under a's lease: %v", err)
	}
	// a's renewal with no time left: the lease expires at once, as if a
	// had stopped renewing, and b takes it with a new fence.
	if _, held, _ := a.AcquireLease(ctx, SupervisorLease, "a", 0); !held {
		t.Fatal("a cannot shorten its own lease")
	}
	lb, held, err := b.AcquireLease(ctx, SupervisorLease, "b", time.Hour)
	if err != nil || !held || lb.Fence != la.Fence+1 {
		t.Fatalf("b takes the expired lease: %+v %v %v", lb, held, err)
	}
	// a wakes up from a pause and writes under its old lease: refused,
	// nothing changes.
	aborted := *r
	aborted.State = api.StateAborted
	if err := a.UpdateRunLeased(la, &aborted, store.TimelineEntry{At: at, Verdict: "aborted"}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("write under a lost lease: %v, want ErrLeaseLost", err)
	}
	if err := b.UpdateRunLeased(lb, r, store.TimelineEntry{At: at.Add(time.Minute), Verdict: "pass"}); err != nil {
		t.Fatalf("write under b's lease: %v", err)
	}
	got, err := a.GetRun(r.ID)
	if err != nil || got.State != api.StateRunning || len(got.Timeline) != 2 || got.Supervisor != "b" {
		t.Errorf("run after the takeover: %+v, %v; want running, 2 entries, supervised by b", got, err)
	}
	// b releases on an orderly stop: a takes over at once.
	if err := b.ReleaseLease(ctx, lb); err != nil {
		t.Fatal(err)
	}
	if l, held, _ := a.AcquireLease(ctx, SupervisorLease, "a", time.Hour); !held || l.Fence <= lb.Fence {
		t.Errorf("a after b released: %+v %v", l, held)
	}
}

// TestDatabaseDown: a killed PostgreSQL makes calls fail with a reason
// that names the database and not the password; after the restart the
// same store works again and nothing acknowledged is lost.
func TestDatabaseDown(t *testing.T) {
	pg := testenv.StartPostgres(t)
	s := open(t, pg.URL())
	r := &store.Run{Experiment: "e", State: api.StateRunning, StartedAt: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)}
	if err := s.CreateRun(r); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	k, err := NewKeeper(KeeperOptions{Store: s, Holder: "r0", TTL: time.Minute, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	gauges := func(when string, healthy, held float64) {
		t.Helper()
		if v := testutil.ToFloat64(k.healthy); v != healthy {
			t.Errorf("%s: slogate_store_healthy = %v, want %v", when, v, healthy)
		}
		if v := testutil.ToFloat64(k.heldGauge); v != held {
			t.Errorf("%s: slogate_supervisor_lease_held = %v, want %v", when, v, held)
		}
	}
	k.Renew(context.Background())
	gauges("database up", 1, 1)
	pg.Kill()
	k.Renew(context.Background())
	// The lease may still be valid: held stays until the database says
	// otherwise, and every write under it is checked there.
	gauges("database down", 0, 1)
	_, err = s.GetRun(r.ID)
	if err == nil || errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), s.Path()) || !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("GetRun with the database down: %v, want an ErrUnavailable naming the database", err)
	}
	if err := s.CheckWritable(); err == nil {
		t.Error("CheckWritable with the database down: no error")
	}
	pg.Restart(t)
	testenv.Eventually(t, 30*time.Second, "the store reconnects", func() error { return s.Ping(context.Background()) })
	got, err := s.GetRun(r.ID)
	if err != nil || got.State != api.StateRunning {
		t.Errorf("after the restart: %+v, %v", got, err)
	}
	k.Renew(context.Background())
	gauges("database back", 1, 1)
}

func TestPasswordNotInErrors(t *testing.T) {
	port := testenv.FreePort(t)
	url := fmt.Sprintf("postgres://slogate:s3cret-pw@127.0.0.1:%d/slogate?sslmode=disable&connect_timeout=1", port)
	_, err := Open(context.Background(), Options{URL: url, Timeout: time.Second})
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") || !strings.Contains(err.Error(), "storage.url") {
		t.Errorf("Open of a closed port: %v", err)
	}
	_, err = Open(context.Background(), Options{URL: "postgres://slogate:s3cret-pw@127.0.0.1:bad/x"})
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("Open of a bad URL: %v", err)
	}
}

// TestCopyRuns copies runs from bbolt twice: the first copy moves them all
// as they were, the second none.
func TestCopyRuns(t *testing.T) {
	src, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	t0 := time.Date(2026, 11, 28, 5, 0, 0, 0, time.UTC)
	for i, state := range []api.RunState{api.StateAborted, api.StatePassed, api.StateRunning} {
		at := t0.Add(time.Duration(i) * time.Hour)
		r := &store.Run{Experiment: fmt.Sprint("e", i%2), State: state, StartedAt: at, BudgetSpent: 0.1 * float64(i),
			Timeline: []store.TimelineEntry{{At: at, Verdict: "running"}, {At: at.Add(time.Minute), Hypothesis: "h", Probe: "p", Value: store.FloatPtr(0.5), Verdict: "pass"}}}
		if err := src.CreateRun(r); err != nil {
			t.Fatal(err)
		}
	}
	pg := testenv.StartPostgres(t)
	dst := open(t, pg.URL())
	res, err := CopyRuns(src, dst)
	if err != nil || res != (CopyResult{Copied: 3}) {
		t.Fatalf("first copy: %+v, %v", res, err)
	}
	res, err = CopyRuns(src, dst)
	if err != nil || res != (CopyResult{Skipped: 3}) {
		t.Fatalf("second copy: %+v, %v", res, err)
	}
	want, _ := src.ListRuns(store.ListFilter{Timeline: true})
	got, err := dst.ListRuns(store.ListFilter{Timeline: true})
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("copied runs:\n%+v\nwant\n%+v (%v)", got, want, err)
	}
}
