package evaluator

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
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

// snapshotVersion changes when the encoding or the slice geometry does.
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

func snapRing(r *ring) ringSnapshot {
	s := ringSnapshot{Step: r.step}
	r.each(func(k int64, c slo.Counts) {
		s.Index = append(s.Index, k)
		s.Bad = append(s.Bad, c.Bad)
		s.Total = append(s.Total, c.Total)
	})
	return s
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

// snapshot encodes the tracker's buffers.
func (t *sloTracker) snapshot() ([]byte, error) {
	t.mu.Lock()
	s := trackerSnapshot{
		Version: snapshotVersion, Queries: t.events.Key(), MinRange: t.minRange,
		Fine: snapRing(t.fine), Coarse: snapRing(t.coarse), Tails: map[time.Duration]ringSnapshot{},
	}
	for w, r := range t.tails {
		s.Tails[w] = snapRing(r)
	}
	t.mu.Unlock()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// restore loads buffers from a snapshot of the same measurement; a
// snapshot of other queries or geometry is ignored.
func (t *sloTracker) restore(data []byte) (bool, error) {
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

// SaveSnapshots writes the buffers of every SLO to the snapshot store.
func (e *Evaluator) SaveSnapshots() error {
	if e.opts.Snapshots == nil {
		return nil
	}
	var errs []error
	for name, entry := range e.snap.Load().slos {
		data, err := entry.tracker.snapshot()
		if err == nil {
			err = e.opts.Snapshots.PutSnapshot(snapshotKey(name), data)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("slo %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// restoreSnapshots fills new trackers from the store; called before they
// are published.
func (e *Evaluator) restoreSnapshots(trackers map[string]*sloTracker) {
	if e.opts.Snapshots == nil {
		return
	}
	restored := 0
	for name, t := range trackers {
		data, err := e.opts.Snapshots.GetSnapshot(snapshotKey(name))
		if err != nil {
			continue
		}
		ok, err := t.restore(data)
		if err != nil {
			e.logger.Warn("ignoring an unreadable snapshot", zap.String("slo", name), zap.Error(err))
			continue
		}
		if ok {
			restored++
		}
	}
	if restored > 0 {
		e.logger.Info("restored SLO windows from the snapshot; only the slices since are fetched", zap.Int("slos", restored))
	}
}
