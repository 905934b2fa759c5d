package evaluator

import (
	"bytes"
	"encoding/gob"
	"testing"
	"time"

	"github.com/slogate/slogate/slo"
)

// filledTracker is a tracker of a 30d SLO with every slice of its rings
// held, counts that differ slice by slice.
func filledTracker(t *testing.T) *sloTracker {
	t.Helper()
	tr, err := newSLOTracker(jobSLO("shop"), 30*time.Second, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	fill := func(r *ring, head int64) {
		for k := head - int64(len(r.slots)) + 1; k <= head; k++ {
			r.put(k, slo.Counts{Bad: float64(k % 7), Total: float64(k%1000) + 0.5})
		}
	}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	fill(tr.fine, tr.fine.sliceOf(now))
	fill(tr.coarse, tr.coarse.sliceOf(now))
	for _, r := range tr.tails {
		fill(r, r.sliceOf(now.Add(-time.Hour)))
	}
	return tr
}

// snapRing is a ring in the gob encoding of earlier versions.
func snapRing(r *ring) ringSnapshot {
	s := ringSnapshot{Step: r.step}
	r.each(func(k int64, c slo.Counts) {
		s.Index = append(s.Index, k)
		s.Bad = append(s.Bad, c.Bad)
		s.Total = append(s.Total, c.Total)
	})
	return s
}

// ringSlices lists what a ring holds.
func ringSlices(r *ring) map[int64]slo.Counts {
	out := map[int64]slo.Counts{}
	r.each(func(k int64, c slo.Counts) { out[k] = c })
	return out
}

func sameRings(t *testing.T, got, want *sloTracker) {
	t.Helper()
	pairs := map[string][2]*ring{"fine": {got.fine, want.fine}, "coarse": {got.coarse, want.coarse}}
	for w, r := range want.tails {
		pairs["tail "+w.String()] = [2]*ring{got.tails[w], r}
	}
	for name, p := range pairs {
		g, w := ringSlices(p[0]), ringSlices(p[1])
		if len(g) != len(w) || len(w) == 0 {
			t.Errorf("%s ring: %d slices restored, want %d", name, len(g), len(w))
			continue
		}
		for k, c := range w {
			if g[k] != c {
				t.Errorf("%s ring slice %d: %v, want %v", name, k, g[k], c)
				break
			}
		}
	}
}

// TestSnapshotEncoding: the binary snapshot gives back every slice exactly,
// about 9 bytes a slice; a snapshot of other queries is not restored; a
// truncated one is an error that leaves the tracker as it was; and a gob
// snapshot of an earlier version is still read.
func TestSnapshotEncoding(t *testing.T) {
	src := filledTracker(t)
	data, err := src.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	slices := len(src.fine.slots) + len(src.coarse.slots)
	for _, r := range src.tails {
		slices += len(r.slots)
	}
	if len(data) > 10*slices {
		t.Errorf("%d bytes for %d slices, want at most 10 a slice", len(data), slices)
	}
	dst := filledTracker(t)
	dst.fine.reset()
	dst.coarse.reset()
	for _, r := range dst.tails {
		r.reset()
	}
	if ok, err := dst.restore(data); !ok || err != nil {
		t.Fatalf("restore: %v, %v", ok, err)
	}
	sameRings(t, dst, src)

	other, err := newSLOTracker(jobSLO("cart"), 30*time.Second, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := other.restore(data); ok || err != nil || other.fine.head != 0 {
		t.Errorf("another SLO's snapshot: restored %v, %v", ok, err)
	}

	for _, cut := range []int{len(snapshotMagic) + 3, len(data) / 2, len(data) - 1} {
		tr, _ := newSLOTracker(jobSLO("shop"), 30*time.Second, 2*time.Minute)
		if ok, err := tr.restore(data[:cut]); ok || err == nil || tr.fine.head != 0 || tr.coarse.head != 0 {
			t.Errorf("snapshot cut at %d of %d bytes: restored %v, %v, fine head %d; want an error and nothing restored", cut, len(data), ok, err, tr.fine.head)
		}
	}

	var old bytes.Buffer
	s := trackerSnapshot{Version: snapshotVersion, Queries: src.events.Key(), MinRange: src.minRange,
		Fine: snapRing(src.fine), Coarse: snapRing(src.coarse), Tails: map[time.Duration]ringSnapshot{}}
	for w, r := range src.tails {
		s.Tails[w] = snapRing(r)
	}
	if err := gob.NewEncoder(&old).Encode(s); err != nil {
		t.Fatal(err)
	}
	fromGob, _ := newSLOTracker(jobSLO("shop"), 30*time.Second, 2*time.Minute)
	if ok, err := fromGob.restore(old.Bytes()); !ok || err != nil {
		t.Fatalf("restore of a gob snapshot: %v, %v", ok, err)
	}
	sameRings(t, fromGob, src)
}
