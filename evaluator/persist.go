package evaluator

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/slogate/slogate/slo"
	"go.uber.org/zap"
)

// Saved snapshots (not to be confused with the published Snapshot of a
// cycle) are the slice buffers on disk.

// SnapshotStore keeps the slice buffers across restarts, so that a restart
// asks Prometheus only for the slices since the snapshot instead of
// backfilling every window again. The run store implements it.
type SnapshotStore interface {
	PutSnapshot(key string, data []byte) error
	GetSnapshot(key string) ([]byte, error)
}

// SnapshotBatchStore is a SnapshotStore that also reads and writes many
// snapshots in one transaction: 10,000 SLOs are 10,000 snapshots, and one
// transaction (and fsync, or round trip) each made saving them take
// seconds. Both run stores implement it.
type SnapshotBatchStore interface {
	SnapshotStore
	// PutSnapshots stores every key's data, replacing what was there.
	PutSnapshots(data map[string][]byte) error
	// GetSnapshots returns the data of the keys that have some.
	GetSnapshots(keys []string) (map[string][]byte, error)
}

// snapshotBatch is how many snapshots go in one transaction.
const snapshotBatch = 1000

// snapshotVersion changes when the gob encoding (snapshots written before
// the binary one, still read) or the slice geometry does.
const snapshotVersion = 1

type ringSnapshot struct {
	Step  time.Duration
	Index []int64
	Bad   []float64
	Total []float64
}

type trackerSnapshot struct {
	Version  int
	Queries  string
	MinRange time.Duration
	Fine     ringSnapshot
	Coarse   ringSnapshot
	Tails    map[time.Duration]ringSnapshot
}

func (s ringSnapshot) restore(r *ring) {
	if s.Step != r.step {
		return
	}
	for i, k := range s.Index {
		if i < len(s.Bad) && i < len(s.Total) {
			r.put(k, slo.Counts{Bad: s.Bad[i], Total: s.Total[i]})
		}
	}
}

func snapshotKey(name string) string { return "slo/" + name }

// snapshotMagic starts a snapshot in the binary encoding; older ones are
// gob (trackerSnapshot).
const snapshotMagic = "slogate-slices-2\n"

// snapshot encodes the tracker's buffers: the measurement they are of
// (queries, min range), then each ring (fine, coarse, the tails by window)
// as its step, its count of slices, and per slice the slice number (as the
// difference from the one before) and the float32 counts the ring holds:
// about 9 bytes a slice, 20 KB for a 30d SLO, encoded and decoded without
// reflection (gob took 2.6 s to save 10,000 SLOs, 1.8 s to restore them,
// and 27 KB an SLO).
func (t *sloTracker) snapshot() ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := make([]byte, 0, 64+9*(len(t.fine.slots)+len(t.coarse.slots)+len(t.tails)*256))
	b = append(b, snapshotMagic...)
	key := t.events.Key()
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendVarint(b, int64(t.minRange))
	b = appendRing(b, t.fine)
	b = appendRing(b, t.coarse)
	b = binary.AppendUvarint(b, uint64(len(t.tails)))
	for _, w := range sortedDurations(t.tails) {
		b = binary.AppendVarint(b, int64(w))
		b = appendRing(b, t.tails[w])
	}
	return b, nil
}

func appendRing(b []byte, r *ring) []byte {
	b = binary.AppendVarint(b, int64(r.step))
	n := 0
	r.each(func(int64, slo.Counts) { n++ })
	b = binary.AppendUvarint(b, uint64(n))
	prev := int64(0)
	r.each(func(k int64, c slo.Counts) {
		b = binary.AppendVarint(b, k-prev)
		prev = k
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(c.Bad)))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(c.Total)))
	})
	return b
}

// snapshotReader decodes the binary encoding; the first error sticks.
type snapshotReader struct {
	b   []byte
	err error
}

func (d *snapshotReader) fail() {
	if d.err == nil {
		d.err = errors.New("truncated or damaged snapshot")
	}
	d.b = nil
}

func (d *snapshotReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *snapshotReader) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *snapshotReader) float32() float64 {
	if len(d.b) < 4 {
		d.fail()
		return 0
	}
	v := math.Float32frombits(binary.LittleEndian.Uint32(d.b))
	d.b = d.b[4:]
	return float64(v)
}

func (d *snapshotReader) bytes(n uint64) []byte {
	if uint64(len(d.b)) < n {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// ring reads one ring's slices into r, or only skips them when r is nil
// or of another step.
func (d *snapshotReader) ring(r *ring) {
	step := time.Duration(d.varint())
	n := d.uvarint()
	if n > uint64(len(d.b)) { // every slice takes at least 9 bytes
		d.fail()
		return
	}
	k := int64(0)
	for range n {
		k += d.varint()
		c := slo.Counts{Bad: d.float32(), Total: d.float32()}
		if d.err != nil {
			return
		}
		if r != nil && r.step == step {
			r.put(k, c)
		}
	}
}

// restore loads buffers from a snapshot of the same measurement; a
// snapshot of other queries or geometry is ignored.
func (t *sloTracker) restore(data []byte) (bool, error) {
	if !bytes.HasPrefix(data, []byte(snapshotMagic)) {
		return t.restoreGob(data)
	}
	d := &snapshotReader{b: data[len(snapshotMagic):]}
	key := d.bytes(d.uvarint())
	minRange := time.Duration(d.varint())
	if d.err != nil {
		return false, d.err
	}
	if string(key) != t.events.Key() || minRange != t.minRange {
		return false, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	d.ring(t.fine)
	d.ring(t.coarse)
	for range d.uvarint() {
		w := time.Duration(d.varint())
		d.ring(t.tails[w])
	}
	if d.err != nil {
		// Trackers are restored before they are published and hold
		// nothing yet: a damaged snapshot leaves them empty, as they were.
		t.fine.reset()
		t.coarse.reset()
		for _, r := range t.tails {
			r.reset()
		}
		return false, d.err
	}
	return true, nil
}

// restoreGob loads a snapshot in the gob encoding of earlier versions.
func (t *sloTracker) restoreGob(data []byte) (bool, error) {
	var s trackerSnapshot
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&s); err != nil {
		return false, err
	}
	if s.Version != snapshotVersion || s.Queries != t.events.Key() || s.MinRange != t.minRange || s.Fine.Step != t.fine.step {
		return false, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s.Fine.restore(t.fine)
	s.Coarse.restore(t.coarse)
	for w, r := range t.tails {
		if rs, ok := s.Tails[w]; ok {
			rs.restore(r)
		}
	}
	return true, nil
}

// SaveSnapshots writes the buffers of every SLO to the snapshot store, in
// batches of snapshotBatch per transaction when the store can.
func (e *Evaluator) SaveSnapshots() error {
	if e.opts.Snapshots == nil {
		return nil
	}
	var errs []error
	batchStore, batched := e.opts.Snapshots.(SnapshotBatchStore)
	batch := map[string][]byte{}
	flush := func() {
		if len(batch) > 0 {
			if err := batchStore.PutSnapshots(batch); err != nil {
				errs = append(errs, fmt.Errorf("%d SLOs: %w", len(batch), err))
			}
			batch = map[string][]byte{}
		}
	}
	for name, entry := range e.snap.Load().slos {
		data, err := entry.tracker.snapshot()
		switch {
		case err != nil:
		case batched:
			batch[snapshotKey(name)] = data
			if len(batch) >= snapshotBatch {
				flush()
			}
		default:
			err = e.opts.Snapshots.PutSnapshot(snapshotKey(name), data)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("slo %q: %w", name, err))
		}
	}
	if batched {
		flush()
	}
	return errors.Join(errs...)
}

// restoreSnapshots fills new trackers from the store; called before they
// are published. Snapshots are read snapshotBatch at a time when the store
// can, and decoded by a worker per core.
func (e *Evaluator) restoreSnapshots(trackers map[string]*sloTracker) {
	if e.opts.Snapshots == nil || len(trackers) == 0 {
		return
	}
	names := sortedNames(trackers)
	var restored atomic.Int64
	restore := func(name string, data []byte) {
		ok, err := trackers[name].restore(data)
		if err != nil {
			e.logger.Warn("ignoring an unreadable snapshot", zap.String("slo", name), zap.Error(err))
		} else if ok {
			restored.Add(1)
		}
	}
	batchStore, batched := e.opts.Snapshots.(SnapshotBatchStore)
	for len(names) > 0 {
		chunk := names[:min(snapshotBatch, len(names))]
		names = names[len(chunk):]
		got := map[string][]byte{}
		if batched {
			keys := make([]string, len(chunk))
			for i, name := range chunk {
				keys[i] = snapshotKey(name)
			}
			var err error
			if got, err = batchStore.GetSnapshots(keys); err != nil {
				e.logger.Warn("cannot read the snapshots of SLO windows; backfilling them", zap.Int("slos", len(chunk)), zap.Error(err))
				continue
			}
		} else {
			for _, name := range chunk {
				if data, err := e.opts.Snapshots.GetSnapshot(snapshotKey(name)); err == nil {
					got[snapshotKey(name)] = data
				}
			}
		}
		eachInParallel(len(chunk), func(i int) {
			if data, ok := got[snapshotKey(chunk[i])]; ok {
				restore(chunk[i], data)
			}
		})
	}
	if n := restored.Load(); n > 0 {
		e.logger.Info("restored SLO windows from the snapshot; only the slices since are fetched", zap.Int64("slos", n))
	}
}
