package store

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/slogate/slogate/api"
)

var t0 = time.Date(2026, 11, 28, 5, 33, 0, 0, time.UTC)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, dir
}

func newRun(exp string, started time.Time) *Run {
	return &Run{
		Experiment: exp,
		State:      api.StateRunning,
		StartedAt:  started,
		Baseline:   map[string]Counts{"checkout-availability": {Bad: 12, Total: 100000}},
	}
}

func entry(at time.Time, verdict, msg string, v float64) TimelineEntry {
	return TimelineEntry{At: at, Hypothesis: "checkout-steady", Probe: "error-rate", Value: FloatPtr(v), Verdict: verdict, Message: msg}
}

func TestNewID(t *testing.T) {
	re := regexp.MustCompile(`^20261128T053300\.000Z-[0-9a-f]{8}$`)
	seen := map[string]bool{}
	for range 100 {
		id := NewID(t0.In(time.FixedZone("CET", 3600)))
		if !re.MatchString(id) {
			t.Fatalf("NewID = %q, want UTC time and 8 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
	}
	if a, b := NewID(t0), NewID(t0.Add(time.Millisecond)); a >= b {
		t.Errorf("IDs do not sort by time: %q >= %q", a, b)
	}
}

func TestFloatPtr(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if p := FloatPtr(v); p != nil {
			t.Errorf("FloatPtr(%v) = %v, want nil", v, *p)
		}
	}
	if p := FloatPtr(0.25); p == nil || *p != 0.25 {
		t.Errorf("FloatPtr(0.25) = %v", p)
	}
}

func TestCreateGetUpdate(t *testing.T) {
	s, _ := openTemp(t)
	r := newRun("kill-checkout-pod", t0)
	r.Timeline = []TimelineEntry{{At: t0, Verdict: "running", Message: "started"}}
	if err := s.CreateRun(r); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	if !strings.HasPrefix(r.ID, "20261128T053300.000Z-") {
		t.Fatalf("CreateRun set ID %q, want one from NewID(StartedAt)", r.ID)
	}

	got, err := s.GetRun(r.ID)
	if err != nil {
		t.Fatalf("GetRun: %v", err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("GetRun =\n%+v\nwant\n%+v", got, r)
	}

	// Finish: recovering, with the timeline entry in the same transaction.
	fin := t0.Add(5 * time.Minute)
	r.State, r.FinishedAt, r.BudgetSpent, r.UnknownStreak = api.StateRecovering, &fin, 0.012, 1
	if err := s.UpdateRun(r, entry(fin, "pass", "", 0.001)); err != nil {
		t.Fatalf("UpdateRun: %v", err)
	}
	// Pass: terminal; the run leaves the active set.
	end := fin.Add(2 * time.Minute)
	r.State, r.EndedAt, r.Reason = api.StatePassed, &end, "hypotheses held after recovery"
	r.Timeline = nil // ignored by UpdateRun
	if err := s.UpdateRun(r); err != nil {
		t.Fatalf("UpdateRun: %v", err)
	}
	got, err = s.GetRun(r.ID)
	if err != nil {
		t.Fatalf("GetRun: %v", err)
	}
	want := *r
	want.Timeline = []TimelineEntry{{At: t0, Verdict: "running", Message: "started"}, entry(fin, "pass", "", 0.001)}
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("GetRun =\n%+v\nwant\n%+v", got, &want)
	}
	active, err := s.ActiveRuns()
	if err != nil || len(active) != 0 {
		t.Errorf("ActiveRuns = %v, %v; want none", active, err)
	}
	// Another run of the experiment may start now.
	if err := s.CreateRun(newRun("kill-checkout-pod", end)); err != nil {
		t.Errorf("CreateRun after the first ended: %v", err)
	}
}

func TestCreateRunErrors(t *testing.T) {
	tests := []struct {
		name    string
		modify  func(*Run)
		wantErr error
		wantMsg string
	}{
		{name: "duplicate ID", modify: func(r *Run) { r.ID = "fixed"; r.Experiment = "other" }, wantErr: ErrExists},
		{name: "experiment already active", modify: func(r *Run) {}, wantErr: ErrRunActive, wantMsg: "experiment already has an active run (fixed)"},
		{name: "terminal run of an active experiment", modify: func(r *Run) { r.State = api.StateAborted }},
		{name: "no experiment", modify: func(r *Run) { r.Experiment = "" }, wantErr: ErrInvalidRun},
		{name: "unknown state", modify: func(r *Run) { r.State = "done" }, wantErr: ErrInvalidRun},
		{name: "no start time", modify: func(r *Run) { r.StartedAt = time.Time{} }, wantErr: ErrInvalidRun},
		{name: "NaN budget", modify: func(r *Run) { r.BudgetSpent = math.NaN() }, wantErr: ErrInvalidRun},
		{name: "negative unknown streak", modify: func(r *Run) { r.UnknownStreak = -1 }, wantErr: ErrInvalidRun},
		{name: "Inf baseline", modify: func(r *Run) { r.Baseline = map[string]Counts{"a": {Total: math.Inf(1)}} }, wantErr: ErrInvalidRun},
		{name: "ID with a slash", modify: func(r *Run) { r.ID = "a/b" }, wantErr: ErrInvalidRun},
		{name: "timeline entry without time", modify: func(r *Run) { r.Timeline = []TimelineEntry{{Verdict: "pass"}} }, wantErr: ErrInvalidRun},
	}
	s, _ := openTemp(t)
	first := newRun("kill-checkout-pod", t0)
	first.ID = "fixed"
	if err := s.CreateRun(first); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRun("kill-checkout-pod", t0.Add(time.Minute))
			tt.modify(r)
			id := r.ID
			err := s.CreateRun(r)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("CreateRun = %v, want %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q lacks %q", err, tt.wantMsg)
			}
			if err != nil && r.ID != id {
				t.Errorf("failed CreateRun changed the ID to %q", r.ID)
			}
		})
	}
}

func TestUpdateRunErrors(t *testing.T) {
	s, _ := openTemp(t)
	r := newRun("kill-checkout-pod", t0)
	if err := s.CreateRun(r); err != nil {
		t.Fatal(err)
	}
	aborted := *r
	aborted.State = api.StateAborted
	if err := s.UpdateRun(&aborted); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		modify  func(*Run)
		wantErr error
		wantMsg string
	}{
		{name: "unknown run", modify: func(r *Run) { r.ID = "nope" }, wantErr: ErrNotFound},
		{name: "terminal is final", modify: func(r *Run) { r.State = api.StateRecovering }, wantErr: ErrInvalidTransition, wantMsg: "aborted → recovering"},
		{name: "experiment cannot change", modify: func(r *Run) { r.State = api.StateAborted; r.Experiment = "other" }, wantErr: ErrInvalidRun},
		{name: "start cannot change", modify: func(r *Run) { r.State = api.StateAborted; r.StartedAt = t0.Add(time.Second) }, wantErr: ErrInvalidRun},
		{name: "same terminal state, other fields", modify: func(r *Run) { r.State = api.StateAborted; r.Reason = "budget" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := *r
			tt.modify(&u)
			err := s.UpdateRun(&u)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("UpdateRun = %v, want %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q lacks %q", err, tt.wantMsg)
			}
		})
	}
	// The start time compares as an instant, not by its location.
	same := aborted
	same.StartedAt = t0.In(time.FixedZone("CET", 3600))
	if err := s.UpdateRun(&same); err != nil {
		t.Errorf("UpdateRun with the start in another zone: %v", err)
	}
}

func TestTimelineOrder(t *testing.T) {
	s, _ := openTemp(t)
	r := newRun("kill-checkout-pod", t0)
	if err := s.CreateRun(r); err != nil {
		t.Fatal(err)
	}
	var want []TimelineEntry
	for i := range 300 {
		// Several calls, some with several entries; entry i is later than
		// i-1 so that order by key and by content agree.
		batch := []TimelineEntry{entry(t0.Add(time.Duration(i)*time.Second), "pass", fmt.Sprint(i), float64(i))}
		if i%3 == 0 {
			batch = append(batch, entry(t0.Add(time.Duration(i)*time.Second), "unknown", fmt.Sprint(i, "b"), math.NaN()))
		}
		if err := s.AppendTimeline(r.ID, batch...); err != nil {
			t.Fatalf("AppendTimeline: %v", err)
		}
		for _, e := range batch {
			e.Value = FloatPtr(valueOr(e.Value))
			want = append(want, e)
		}
	}
	got, err := s.GetRun(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Timeline, want) {
		t.Fatalf("timeline has %d entries, want %d in order", len(got.Timeline), len(want))
	}
	if got.Timeline[1].Value != nil {
		t.Errorf("a NaN value was stored as %v, want null", *got.Timeline[1].Value)
	}
	// A NaN put straight into Value (not through FloatPtr) is nulled too.
	nan := math.NaN()
	if err := s.AppendTimeline(r.ID, TimelineEntry{At: t0, Value: &nan, Verdict: "unknown"}); err != nil {
		t.Fatalf("AppendTimeline with a raw NaN: %v", err)
	}
	got, _ = s.GetRun(r.ID)
	if last := got.Timeline[len(got.Timeline)-1]; last.Value != nil {
		t.Errorf("raw NaN stored as %v", *last.Value)
	}

	if err := s.AppendTimeline("nope", entry(t0, "pass", "", 1)); !errors.Is(err, ErrNotFound) {
		t.Errorf("AppendTimeline to an unknown run = %v, want ErrNotFound", err)
	}
}

func valueOr(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func TestListRuns(t *testing.T) {
	s, _ := openTemp(t)
	// Created out of start order, with a tie on the start time.
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
		r.Timeline = []TimelineEntry{{At: r.StartedAt, Verdict: string(sp.state)}}
		if err := s.CreateRun(r); err != nil {
			t.Fatalf("CreateRun %s: %v", sp.id, err)
		}
	}
	tests := []struct {
		name   string
		filter ListFilter
		want   []string
	}{
		{"all newest first", ListFilter{}, []string{"r6", "r5", "r4b", "r4a", "r3", "r2", "r1"}},
		{"limit", ListFilter{Limit: 3}, []string{"r6", "r5", "r4b"}},
		{"experiment", ListFilter{Experiment: "a"}, []string{"r6", "r3", "r1"}},
		{"experiment and limit", ListFilter{Experiment: "a", Limit: 2}, []string{"r6", "r3"}},
		{"active", ListFilter{Active: true}, []string{"r6", "r5", "r4b"}},
		{"active with limit", ListFilter{Active: true, Limit: 1}, []string{"r6"}},
		{"active of an experiment", ListFilter{Active: true, Experiment: "c"}, []string{"r4b"}},
		{"unknown experiment", ListFilter{Experiment: "zzz"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, withTimeline := range []bool{false, true} {
				f := tt.filter
				f.Timeline = withTimeline
				runs, err := s.ListRuns(f)
				if err != nil {
					t.Fatalf("ListRuns: %v", err)
				}
				var ids []string
				for _, r := range runs {
					ids = append(ids, r.ID)
					if withTimeline != (len(r.Timeline) == 1) {
						t.Errorf("run %s has %d timeline entries with Timeline=%v", r.ID, len(r.Timeline), withTimeline)
					}
				}
				if !slices.Equal(ids, tt.want) {
					t.Errorf("ListRuns(%+v) = %v, want %v", f, ids, tt.want)
				}
			}
		})
	}
	active, err := s.ActiveRuns()
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 3 || active[0].ID != "r6" || len(active[0].Timeline) != 1 {
		t.Errorf("ActiveRuns = %v", active)
	}
	if _, err := s.ListRuns(ListFilter{Limit: -1}); err == nil {
		t.Error("negative limit accepted")
	}
}

func TestGetRunNotFound(t *testing.T) {
	s, _ := openTemp(t)
	_, err := s.GetRun("20261128T053300.000Z-00000000")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetRun = %v, want ErrNotFound", err)
	}
	if want := "run 20261128T053300.000Z-00000000: not found"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestSnapshots(t *testing.T) {
	s, _ := openTemp(t)
	if _, err := s.GetSnapshot("buffers/checkout"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetSnapshot of nothing = %v, want ErrNotFound", err)
	}
	data := []byte("state v1")
	if err := s.PutSnapshot("buffers/checkout", data); err != nil {
		t.Fatal(err)
	}
	data[0] = 'X' // the store must have copied it
	if err := s.PutSnapshot("buffers/other", []byte("other")); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSnapshot("buffers/checkout")
	if err != nil || string(got) != "state v1" {
		t.Fatalf("GetSnapshot = %q, %v", got, err)
	}
	if err := s.PutSnapshot("buffers/checkout", []byte("state v2")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSnapshot("buffers/checkout"); string(got) != "state v2" {
		t.Errorf("after replace: %q", got)
	}
	for range 2 { // deleting twice is fine
		if err := s.DeleteSnapshot("buffers/checkout"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.GetSnapshot("buffers/checkout"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if got, _ := s.GetSnapshot("buffers/other"); string(got) != "other" {
		t.Errorf("other snapshot: %q", got)
	}
	if err := s.PutSnapshot("", nil); err == nil {
		t.Error("empty key accepted")
	}
}

func TestReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := newRun("kill-checkout-pod", t0)
	if err := s.CreateRun(r); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendTimeline(r.ID, entry(t0, "pass", "one", 0.1), entry(t0.Add(time.Second), "fail", "two", 0.2)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSnapshot("k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	before, _ := s.GetRun(r.ID)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	after, err := s.GetRun(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after, before) {
		t.Errorf("after reopen:\n%+v\nwant\n%+v", after, before)
	}
	if active, _ := s.ActiveRuns(); len(active) != 1 || active[0].ID != r.ID {
		t.Errorf("ActiveRuns after reopen = %v", active)
	}
	if v, err := s.GetSnapshot("k"); err != nil || string(v) != "v" {
		t.Errorf("snapshot after reopen = %q, %v", v, err)
	}
	// Appending continues the sequence after a reopen.
	if err := s.AppendTimeline(r.ID, entry(t0.Add(2*time.Second), "pass", "three", 0.3)); err != nil {
		t.Fatal(err)
	}
	after, _ = s.GetRun(r.ID)
	var msgs []string
	for _, e := range after.Timeline {
		msgs = append(msgs, e.Message)
	}
	if !slices.Equal(msgs, []string{"one", "two", "three"}) {
		t.Errorf("timeline after reopen = %v", msgs)
	}
	checkConsistent(t, s)
}

func TestOpenLocked(t *testing.T) {
	s, dir := openTemp(t)
	_ = s
	start := time.Now()
	_, err := Open(dir, Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if want := "storage.path " + dir + " is locked by another slogate process"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("second Open took %s despite a 100ms lock timeout", d)
	}
}

func TestOpenErrors(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(tmp, "corrupt")
	if err := os.MkdirAll(corrupt, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(corrupt, FileName), []byte(strings.Repeat("garbage!", 1024)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		opts Options
		want []string // substrings
	}{
		{
			// Tests run as root, which ignores permissions: a path through
			// a regular file is the portable way to make the directory
			// impossible to create.
			name: "path through a regular file",
			path: filepath.Join(file, "sub"),
			want: []string{"storage.path " + filepath.Join(file, "sub") + ": create directory:", "not a directory", "(part of the path is a file, not a directory)"},
		},
		{
			name: "path is a regular file",
			path: file,
			want: []string{"storage.path " + file + ": ", "not a directory"},
		},
		{
			name: "not a database",
			path: corrupt,
			want: []string{"storage.path " + corrupt + ": open " + filepath.Join(corrupt, FileName) + ": ", "(the file is not a slogate database, or it is damaged"},
		},
		{name: "empty path", path: "", want: []string{"storage.path is empty"}},
		{name: "negative lock timeout", path: tmp, opts: Options{LockTimeout: -1}, want: []string{"negative lock timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.path, tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestSchemaVersion(t *testing.T) {
	s, dir := openTemp(t)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyVersion, []byte("2"))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrSchema) {
		t.Errorf("Open of a newer schema = %v, want ErrSchema", err)
	}
}

func TestHint(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&os.PathError{Op: "write", Path: "/data/slogate.db", Err: syscall.ENOSPC}, "write /data/slogate.db: no space left on device (the disk is full)"},
		{&os.PathError{Op: "open", Path: "/data/slogate.db", Err: syscall.EROFS}, "open /data/slogate.db: read-only file system (the file system is read-only)"},
		{&os.PathError{Op: "open", Path: "/data/slogate.db", Err: syscall.EACCES}, "open /data/slogate.db: permission denied (permission denied: storage.path must be writable by this user)"},
		{errors.New("other"), "other"},
	}
	for _, tt := range tests {
		got := hint(tt.err)
		if got.Error() != tt.want {
			t.Errorf("hint(%v) = %q, want %q", tt.err, got, tt.want)
		}
		if !errors.Is(got, tt.err) {
			t.Errorf("hint(%v) does not wrap the error", tt.err)
		}
	}
	// Write errors name the file as well as the operation.
	s := &Store{file: "/data/slogate.db"}
	err := s.wrap("update run x", &os.PathError{Op: "write", Path: "/data/slogate.db", Err: syscall.ENOSPC})
	if want := "update run x: /data/slogate.db: write /data/slogate.db: no space left on device (the disk is full)"; err.Error() != want {
		t.Errorf("wrap = %q, want %q", err, want)
	}
}

// checkConsistent runs bbolt's own consistency check: page reachability,
// no double-freed pages, key order.
func checkConsistent(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Errorf("database inconsistent: %v", err)
	}
}
