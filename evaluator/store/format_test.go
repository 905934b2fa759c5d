package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/slogate/slogate/api"
)

// Records as slogate wrote them before the API got its own wire types
// (package api): a database written then must load, and records must
// still be written byte for byte the same.
const (
	oldAborted = `{"id":"20261128T053300.000Z-1a2b3c4d","experiment":"kill-checkout-pod","state":"aborted","reason":"hypothesis failed: checkout-steady: error-rate value 0.05 not within tolerance \u003c 0.01 (verdict fail)","startedAt":"2026-11-28T05:33:00Z","finishedAt":"2026-11-28T05:38:00Z","endedAt":"2026-11-28T05:40:00Z","budgetSpent":0.0125,"baseline":{"checkout-availability":{"bad":12,"total":100000}},"timeline":null}`
	oldRunning = `{"id":"20261128T053400.000Z-00000001","experiment":"drain","state":"running","startedAt":"2026-11-28T05:34:00Z","budgetSpent":0,"timeline":null}`
)

var oldEntries = []string{
	`{"at":"2026-11-28T05:33:00Z","value":null,"verdict":"running","message":"run started: gate open"}`,
	`{"at":"2026-11-28T05:33:30Z","hypothesis":"checkout-steady","probe":"error-rate","value":0.05,"verdict":"fail"}`,
	`{"at":"2026-11-28T05:33:30Z","hypothesis":"checkout-steady","probe":"latency","value":null,"verdict":"unknown","message":"query timed out"}`,
	`{"at":"2026-11-28T05:33:30Z","slo":"checkout-availability","value":0.0125,"verdict":"pass","message":"share of the error budget spent since the start"}`,
}

func TestOldRecordsLoad(t *testing.T) {
	s, _ := openTemp(t)
	fin, end := t0.Add(5*time.Minute), t0.Add(7*time.Minute)
	aborted := &Run{
		ID: "20261128T053300.000Z-1a2b3c4d", Experiment: "kill-checkout-pod", State: api.StateAborted,
		Reason:    "hypothesis failed: checkout-steady: error-rate value 0.05 not within tolerance < 0.01 (verdict fail)",
		StartedAt: t0, FinishedAt: &fin, EndedAt: &end, BudgetSpent: 0.0125,
		Baseline: map[string]Counts{"checkout-availability": {Bad: 12, Total: 100000}},
		Timeline: []TimelineEntry{
			{At: t0, Verdict: "running", Message: "run started: gate open"},
			{At: t0.Add(30 * time.Second), Hypothesis: "checkout-steady", Probe: "error-rate", Value: FloatPtr(0.05), Verdict: "fail"},
			{At: t0.Add(30 * time.Second), Hypothesis: "checkout-steady", Probe: "latency", Verdict: "unknown", Message: "query timed out"},
			{At: t0.Add(30 * time.Second), SLO: "checkout-availability", Value: FloatPtr(0.0125), Verdict: "pass", Message: "share of the error budget spent since the start"},
		},
	}
	running := &Run{ID: "20261128T053400.000Z-00000001", Experiment: "drain", State: api.StateRunning, StartedAt: t0.Add(time.Minute), Timeline: []TimelineEntry{}}

	// Write the old bytes in the old layout, bypassing the encoder.
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, w := range []struct {
			run     *Run
			record  string
			entries []string
		}{{aborted, oldAborted, oldEntries}, {running, oldRunning, nil}} {
			b, err := tx.Bucket(bucketRuns).CreateBucket([]byte(w.run.ID))
			if err != nil {
				return err
			}
			if err := b.Put(keyRecord, []byte(w.record)); err != nil {
				return err
			}
			tl, err := b.CreateBucket(keyTimeline)
			if err != nil {
				return err
			}
			for i, e := range w.entries {
				if err := tl.Put(binary.BigEndian.AppendUint64(nil, uint64(i+1)), []byte(e)); err != nil {
					return err
				}
			}
			if err := tx.Bucket(bucketByStart).Put(startKey(w.run), nil); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketActive).Put([]byte(running.ID), []byte(running.Experiment))
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, want := range []*Run{aborted, running} {
		got, err := s.GetRun(want.ID)
		if err != nil {
			t.Fatalf("GetRun %s: %v", want.ID, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetRun %s =\n%+v\nwant\n%+v", want.ID, got, want)
		}
	}
	active, err := s.ActiveRuns()
	if err != nil || len(active) != 1 || active[0].ID != running.ID {
		t.Errorf("ActiveRuns = %v, %v; want %s", active, err, running.ID)
	}

	// The same records encode to the same bytes.
	for _, tt := range []struct {
		run  *Run
		want string
	}{{aborted, oldAborted}, {running, oldRunning}} {
		b, err := encodeRecord(tt.run)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("record encodes as\n%s\nwant\n%s", b, tt.want)
		}
	}
	// A field added since is left out where it is zero (above), and
	// written where it is not.
	streak := *running
	streak.UnknownStreak = 2
	if b, _ := encodeRecord(&streak); string(b) != strings.Replace(oldRunning, `,"timeline"`, `,"unknownStreak":2,"timeline"`, 1) {
		t.Errorf("record with a streak encodes as %s", b)
	}
	encoded, err := encodeEntries(aborted.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range encoded {
		if string(b) != oldEntries[i] {
			t.Errorf("timeline entry %d encodes as\n%s\nwant\n%s", i, b, oldEntries[i])
		}
	}
}

// TestAPI checks the one conversion from the record to the wire type: the
// API serves what it served when it sent the record itself, without what
// only the store keeps.
func TestAPI(t *testing.T) {
	fin := t0.Add(5 * time.Minute)
	r := &Run{
		ID: "r1", Experiment: "kill-checkout-pod", State: api.StateRecovering, Reason: "chaos finished; checking recovery",
		StartedAt: t0, FinishedAt: &fin, BudgetSpent: 0.0125,
		Baseline: map[string]Counts{"checkout-availability": {Bad: 12, Total: 100000}},
		Timeline: []TimelineEntry{
			{At: t0.Add(30 * time.Second), Hypothesis: "checkout-steady", Probe: "error-rate", Value: FloatPtr(0.05), Verdict: "fail", Message: "m"},
			{At: t0.Add(30 * time.Second), SLO: "checkout-availability", Verdict: "unknown"},
		},
	}
	b, err := json.Marshal(r.API())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"r1","experiment":"kill-checkout-pod","state":"recovering","reason":"chaos finished; checking recovery","startedAt":"2026-11-28T05:33:00Z","finishedAt":"2026-11-28T05:38:00Z","budgetSpent":0.0125,"timeline":[` +
		`{"at":"2026-11-28T05:33:30Z","hypothesis":"checkout-steady","probe":"error-rate","value":0.05,"verdict":"fail","message":"m"},` +
		`{"at":"2026-11-28T05:33:30Z","slo":"checkout-availability","value":null,"verdict":"unknown"}]}`
	if string(b) != want {
		t.Errorf("API() encodes as\n%s\nwant\n%s", b, want)
	}
	// A listing leaves the timeline out: null, as before; an empty one is [].
	r.Timeline = nil
	if got := r.API().Timeline; got != nil {
		t.Errorf("nil timeline became %#v", got)
	}
	r.Timeline = []TimelineEntry{}
	if got := r.API().Timeline; got == nil || len(got) != 0 {
		t.Errorf("empty timeline became %#v", got)
	}
}

func TestCheckWritable(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.CheckWritable(); err != nil {
		t.Fatalf("CheckWritable: %v", err)
	}
	if _, err := s.GetSnapshot(checkKey); !errors.Is(err, ErrNotFound) {
		t.Errorf("the check left its snapshot behind: %v", err)
	}
}
