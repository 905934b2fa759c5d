package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/slogate/slogate/api"
)

// fillStore writes runs named run-<from> to run-<to-1> with ten timeline
// entries each, every third one aborted, and a snapshot larger than a page:
// a file that is the same byte for byte at every test run.
func fillStore(t *testing.T, s *Store, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		at := time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC)
		r := newRun(fmt.Sprintf("exp-%d", i), at)
		r.ID = fmt.Sprintf("run-%02d", i)
		if err := s.CreateRun(r); err != nil {
			t.Fatal(err)
		}
		for j := range 10 {
			if err := s.AppendTimeline(r.ID, entry(at.Add(time.Duration(j)*time.Second), "pass", "ok", 0.001)); err != nil {
				t.Fatal(err)
			}
		}
		if i%3 == 0 {
			r.State = api.StateAborted
			if err := s.UpdateRun(r, entry(at.Add(time.Minute), "aborted", "", 0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.PutSnapshot("evaluator", bytes.Repeat([]byte("snapshot "), 2000)); err != nil {
		t.Fatal(err)
	}
}

// startChecker runs a Checker of s on a clock the test moves: each check
// ends in a wait that the test sees on the returned channel (the wait's
// duration) and ends by sending on tick.
func startChecker(t *testing.T, s *Store, logger *zap.Logger, now *atomic.Int64) (reg *prometheus.Registry, waits <-chan time.Duration, tick chan<- time.Time) {
	t.Helper()
	reg = prometheus.NewRegistry()
	w, tk := make(chan time.Duration), make(chan time.Time)
	c, err := NewChecker(CheckerOptions{
		Store: s, Registerer: reg, Logger: logger,
		Now:   func() time.Time { return time.Unix(now.Load(), 0) },
		After: func(d time.Duration) <-chan time.Time { w <- d; return tk },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return reg, w, tk
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestCheckerReportsTheLastCheck: the gauges follow the checks, at start
// and every interval: a sound store, then a damaged one, then sound again.
func TestCheckerReportsTheLastCheck(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "data"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fillStore(t, s, 0, 30)
	for _, batch := range []int{checkBatch, 1, 7} {
		if err := s.check(context.Background(), batch); err != nil {
			t.Fatalf("Check of a sound store in batches of %d: %v", batch, err)
		}
	}

	var now atomic.Int64
	now.Store(time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC).Unix())
	reg, waits, tick := startChecker(t, s, nil, &now)
	expect := func(when string, damaged float64) {
		t.Helper()
		if d := <-waits; d != DefaultCheckInterval {
			t.Errorf("%s: next check in %s, want %s", when, d, DefaultCheckInterval)
		}
		if v := gauge(t, reg, "slogate_store_damaged"); v != damaged {
			t.Errorf("%s: slogate_store_damaged = %v, want %v", when, v, damaged)
		}
		if v := gauge(t, reg, "slogate_store_healthy"); v != 1-damaged {
			t.Errorf("%s: slogate_store_healthy = %v, want %v", when, v, 1-damaged)
		}
		if v, want := gauge(t, reg, "slogate_store_last_check_timestamp_seconds"), float64(now.Load()); v != want {
			t.Errorf("%s: slogate_store_last_check_timestamp_seconds = %v, want %v", when, v, want)
		}
	}
	next := func() {
		now.Add(int64(DefaultCheckInterval / time.Second))
		tick <- time.Unix(now.Load(), 0)
	}
	expect("check at start of a sound store", 0)

	var record []byte
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns).Bucket([]byte("run-07"))
		record = bytes.Clone(b.Get(keyRecord))
		return b.Put(keyRecord, record[:len(record)/2])
	})
	if err != nil {
		t.Fatal(err)
	}
	next()
	expect("check after a record was cut in half", 1)

	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRuns).Bucket([]byte("run-07")).Put(keyRecord, record)
	})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, s, 30, 40)
	next()
	expect("check after the record was put back and more runs written", 0)
}

// TestCheckFindsInconsistentRecords writes what reads would trip over
// behind the store's back, one problem at a time.
func TestCheckFindsInconsistentRecords(t *testing.T) {
	tests := []struct {
		name   string
		damage func(tx *bolt.Tx) error
		want   []string // a part of each problem found
	}{
		{"record is not JSON", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRuns).Bucket([]byte("run-04")).Put(keyRecord, []byte(`{"id":"run-04",`))
		}, []string{"decode run run-04: unexpected end of JSON input"}},
		{"record of another run", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRuns).Bucket([]byte("run-04"))
			return b.Put(keyRecord, bytes.Replace(b.Get(keyRecord), []byte("run-04"), []byte("run-05"), 1))
		}, []string{`run run-04: its record is that of run "run-05"`}},
		{"record fails validation", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRuns).Bucket([]byte("run-04"))
			return b.Put(keyRecord, bytes.Replace(b.Get(keyRecord), []byte(`"running"`), []byte(`"runnin"`), 1))
		}, []string{`run run-04: invalid run: unknown state "runnin"`}},
		{"timeline entry is not JSON", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRuns).Bucket([]byte("run-04")).Bucket(keyTimeline).Put(binary.BigEndian.AppendUint64(nil, 3), []byte(`{"at":`))
		}, []string{"decode timeline entry 0000000000000003 of run run-04"}},
		{"timeline entry without a time", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRuns).Bucket([]byte("run-04")).Bucket(keyTimeline).Put(binary.BigEndian.AppendUint64(nil, 3), []byte(`{"verdict":"pass"}`))
		}, []string{"timeline entry 0000000000000003 of run run-04 has no time"}},
		{"run without a timeline", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRuns).Bucket([]byte("run-04")).DeleteBucket(keyTimeline)
		}, []string{"run run-04 has no timeline"}},
		{"run missing behind the indexes", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketRuns).DeleteBucket([]byte("run-04"))
		}, []string{"start-time index names run run-04, which is missing", "index of active runs names run run-04, which is missing"}},
		{"run missing from the start-time index", func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketByStart).Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if string(k[8:]) == "run-04" {
					return c.Delete()
				}
			}
			return errors.New("run-04 not in the index")
		}, []string{"run run-04 is missing from the start-time index"}},
		{"start-time index at another time", func(tx *bolt.Tx) error {
			at := time.Date(2026, 1, 1, 0, 4, 1, 0, time.UTC)
			return tx.Bucket(bucketByStart).Put(append(binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano())), "run-04"...), nil)
		}, []string{"start-time index lists run run-04 at 2026-01-01T00:04:01Z, its record at 2026-01-01T00:04:00Z"}},
		{"active run missing from the active index", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketActive).Delete([]byte("run-04"))
		}, []string{`run run-04 is running but not listed as an active run of experiment "exp-4"`}},
		{"ended run in the active index", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketActive).Put([]byte("run-03"), []byte("exp-3"))
		}, []string{"index of active runs names run run-03, which is aborted"}},
		{"bucket missing", func(tx *bolt.Tx) error {
			return tx.DeleteBucket(bucketSnapshots)
		}, []string{"bucket snapshots is missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(filepath.Join(t.TempDir(), "data"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			fillStore(t, s, 0, 8)
			if err := s.db.Update(tt.damage); err != nil {
				t.Fatal(err)
			}
			err = s.Check(context.Background())
			var ce *CheckError
			if !errors.Is(err, ErrDamaged) || !errors.As(err, &ce) {
				t.Fatalf("Check = %v, want a CheckError matching ErrDamaged", err)
			}
			// Batches of one key each find the same.
			if small := s.check(context.Background(), 1); small == nil || small.Error() != err.Error() {
				t.Errorf("Check in batches of one key = %v, want %v", small, err)
			}
			ok := ce.Total == len(tt.want) && len(ce.Problems) == len(tt.want)
			for i := 0; ok && i < len(tt.want); i++ {
				ok = strings.Contains(ce.Problems[i], tt.want[i])
			}
			if !ok {
				t.Errorf("Check found %d: %q, want problems containing %q", ce.Total, ce.Problems, tt.want)
			}
			for _, want := range []string{s.Path(), "move it aside"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// TestCheckListsTheFirstProblems: a badly damaged file makes an error of
// bounded size that still counts every problem.
func TestCheckListsTheFirstProblems(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "data"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fillStore(t, s, 0, 8)
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRuns).ForEachBucket(func(id []byte) error {
			return tx.Bucket(bucketRuns).Bucket(id).Put(keyRecord, []byte("{"))
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check(context.Background())
	var ce *CheckError
	if !errors.As(err, &ce) {
		t.Fatalf("Check = %v, want a CheckError", err)
	}
	if ce.Total != 8 || len(ce.Problems) != maxProblems {
		t.Errorf("Check counted %d problems and listed %d, want 8 and %d", ce.Total, len(ce.Problems), maxProblems)
	}
	for _, want := range []string{"damaged database: 8 problems: decode run run-00: unexpected end of JSON input; decode run run-01", "decode run run-04: unexpected end of JSON input; and 3 more"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestCheckFindsFlippedBytes: damage in the data pages of a file that opens
// is found by the check, reported on the gauge and named in the error,
// without a crash: flipped bytes in a leaf page's header make bbolt assert,
// in a timeline entry they reach the decoder.
func TestCheckFindsFlippedBytes(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, data []byte, pageSize int)
		want   string
	}{
		{"leaf page header overwritten", func(t *testing.T, data []byte, pageSize int) {
			// A leaf page (flag 0x02 at offset 8) holding timeline
			// entries, which opening the file does not read.
			for off := 2 * pageSize; off < len(data); off += pageSize {
				if binary.LittleEndian.Uint16(data[off+8:]) == 0x02 && bytes.Contains(data[off:off+pageSize], []byte(`"verdict"`)) {
					overwrite(t, data, off, 16)
					return
				}
			}
			t.Fatal("no leaf page with timeline entries")
		}, "bucket runs, key run-01: assertion failed: Page expected to be: 2"},
		{"timeline entry bytes flipped", func(t *testing.T, data []byte, _ int) {
			i := bytes.LastIndex(data, []byte(`"verdict":"pass"`))
			if i < 0 {
				t.Fatal("no timeline entry in the file")
			}
			data[i] ^= 0xFF
		}, "decode timeline entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			fillStore(t, s, 0, 30)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, FileName)
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(t, data, int(binary.LittleEndian.Uint32(data[16+8:16+12])))
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if s, err = Open(dir, Options{}); err != nil {
				t.Fatalf("Open refused the file, so the check is not tested: %v", err)
			}
			defer s.Close()

			err = s.Check(context.Background())
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("Check = %v, want ErrDamaged", err)
			}
			for _, want := range []string{tt.want, file, "move it aside"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}

			var now atomic.Int64
			now.Store(time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC).Unix())
			core, logs := observer.New(zap.InfoLevel)
			reg, waits, _ := startChecker(t, s, zap.New(core), &now)
			<-waits
			if v := gauge(t, reg, "slogate_store_damaged"); v != 1 {
				t.Errorf("slogate_store_damaged = %v, want 1", v)
			}
			if v, want := gauge(t, reg, "slogate_store_last_check_timestamp_seconds"), float64(now.Load()); v != want {
				t.Errorf("slogate_store_last_check_timestamp_seconds = %v, want %v", v, want)
			}
			entries := logs.All()
			if len(entries) != 1 || entries[0].Level != zap.ErrorLevel || !strings.Contains(entries[0].Message, "move the file aside") {
				t.Fatalf("log %v, want one error saying to move the file aside", entries)
			}
			fields := entries[0].ContextMap()
			if fields["storage.path"] != dir || fields["file"] != file || fields["problems"] != int64(1) {
				t.Errorf("log fields %v, want storage.path %s, file %s and 1 problem", fields, dir, file)
			}
			if first, _ := fields["first"].([]any); len(first) != 1 || !strings.Contains(fmt.Sprint(first[0]), tt.want) {
				t.Errorf("log names the problems %v, want one containing %q", fields["first"], tt.want)
			}
		})
	}
}

// TestCheckStopsWithItsContext: a check cut short by shutdown says so and
// is no verdict.
func TestCheckStopsWithItsContext(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "data"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fillStore(t, s, 0, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Check(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Check with an ended context = %v, want context.Canceled", err)
	}
}
