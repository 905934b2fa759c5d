package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Check reads the whole database as the API and the evaluator read it, so
// that damage is found by an operator and not by a visitor: every page of
// every bucket (bbolt checks that each is the page its parent names), keys
// in ascending order, every byte of every value, every run record and
// timeline entry decoded as reads decode them and validated as writes
// validate them, and the indexes against the runs. It returns nil for a
// sound database, a *CheckError matching ErrDamaged and naming the file for
// damage, ctx.Err() when ctx ends first, or another error.
//
// bbolt's tx.Check is not used: it walks in a goroutine of its own, out of
// reach of recover and SetPanicOnFault, so the damage it is meant to find
// (a page that is not the one its parent names, an offset out of the file)
// kills the process. A later bbolt recovers the panics there
// (etcd-io/bbolt#1164), never the faults. This walk runs guarded on the
// caller's goroutine; what it cannot see is what only tx.Check would (a page
// neither reachable nor free, referenced twice, or free and in use), which
// no read trips over but a later write can spread.
//
// The walk is a series of short read transactions, about checkBatch keys
// each, resumed after the last key: a read transaction does not block
// writers, but it holds bbolt's remap lock, which a write that grows the
// file waits for, and every transaction begun after that write waits too.
// Each transaction is consistent in itself: a run written between two is
// checked whole or not at all.
func (s *Store) Check(ctx context.Context) error { return s.check(ctx, checkBatch) }

// check is Check with batches of batchCost.
func (s *Store) check(ctx context.Context, batchCost int) error {
	w := &walk{s: s, ctx: ctx, batchCost: batchCost}
	err := guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			for _, name := range [][]byte{bucketMeta, bucketRuns, bucketByStart, bucketActive, bucketSnapshots} {
				if tx.Bucket(name) == nil {
					w.found("bucket %s is missing", name)
				}
			}
			return nil
		})
	})
	switch {
	case errors.Is(err, ErrDamaged):
		w.damage(nil, nil, err)
	case err != nil:
		return s.wrap("check", err)
	case w.total == 0:
		for _, b := range []struct {
			name  []byte
			visit func(tx *bolt.Tx, k, v []byte) int
		}{
			{bucketRuns, w.run},
			{bucketByStart, w.startIndex},
			{bucketActive, w.activeIndex},
			{bucketSnapshots, w.snapshot},
		} {
			if err := w.scan(b.name, b.visit); err != nil {
				if w.ctx.Err() == nil {
					err = s.wrap("check", err)
				}
				return err
			}
		}
	}
	if w.total == 0 {
		return nil
	}
	return s.wrap("check", &CheckError{Problems: w.problems, Total: w.total})
}

// checkBatch is about how many keys (run records, timeline entries, index
// entries, snapshots) a read transaction of Check reads: milliseconds of
// work. A run is read whole, however long its timeline.
const checkBatch = 4096

// maxProblems is how many problems a CheckError lists; it counts them all.
const maxProblems = 5

// CheckError is the damage Check found.
type CheckError struct {
	Problems []string // the first few, in the order found
	Total    int      // all of them
}

func (e *CheckError) Error() string {
	msg := fmt.Sprintf("%s: %d problem", ErrDamaged, e.Total)
	if e.Total != 1 {
		msg += "s"
	}
	msg += ": " + strings.Join(e.Problems, "; ")
	if more := e.Total - len(e.Problems); more > 0 {
		msg += fmt.Sprintf("; and %d more", more)
	}
	return msg
}

func (e *CheckError) Unwrap() error { return ErrDamaged }

// walk is the state of one Check.
type walk struct {
	s         *Store
	ctx       context.Context
	batchCost int
	problems  []string
	total     int
}

func (w *walk) found(format string, args ...any) {
	w.total++
	if len(w.problems) < maxProblems {
		w.problems = append(w.problems, fmt.Sprintf(format, args...))
	}
}

// damage records an error that ended a read transaction of bucket: bbolt
// panicked or faulted at key (nil: while moving between keys).
func (w *walk) damage(bucket, key []byte, err error) {
	var where string
	switch {
	case bucket == nil:
		where = "root"
	case key == nil:
		where = fmt.Sprintf("bucket %s", bucket)
	default:
		where = fmt.Sprintf("bucket %s, key %s", bucket, printable(key))
	}
	w.found("%s: %s", where, strings.TrimPrefix(err.Error(), ErrDamaged.Error()+": "))
}

// scan calls visit for each key of a top-level bucket in order, in batches
// of one read transaction each. A batch that bbolt ends in a panic or fault
// is reported; the scan goes on after the key being visited, or stops if
// bbolt failed between keys, where nothing tells how to step over the
// damage.
func (w *walk) scan(bucket []byte, visit func(tx *bolt.Tx, k, v []byte) int) error {
	var after []byte // resume after this key; nil: from the first
	for {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		last, cur, done, err := w.batch(bucket, after, visit)
		switch {
		case err == nil && done:
			return nil
		case err == nil:
			after = last
		case !errors.Is(err, ErrDamaged):
			return err
		case cur == nil:
			w.damage(bucket, nil, err)
			return nil
		default:
			w.damage(bucket, cur, err)
			after = cur
		}
	}
}

// batch visits the keys of bucket after after (all from the first if nil)
// in one guarded read transaction, until the visits cost batchCost (visit
// returns its cost: 1 plus the timeline entries it read). It returns the
// last key visited, the key being visited when bbolt failed (nil if it
// failed between keys), and whether the scan is done.
func (w *walk) batch(bucket, after []byte, visit func(tx *bolt.Tx, k, v []byte) int) (last, cur []byte, done bool, err error) {
	last = after
	err = guard(func() error {
		return w.s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			var k, v []byte
			if after == nil {
				k, v = c.First()
			} else if k, v = c.Seek(after); bytes.Equal(k, after) {
				k, v = c.Next()
			}
			for cost := 0; ; k, v = c.Next() {
				if k == nil {
					done = true
					return nil
				}
				if last != nil && bytes.Compare(k, last) <= 0 {
					w.found("bucket %s: key %s after %s: keys out of order", bucket, printable(k), printable(last))
					done = true // going on could loop
					return nil
				}
				cur = bytes.Clone(k)
				cost += visit(tx, k, v)
				last, cur = cur, nil
				if cost >= w.batchCost {
					return nil
				}
			}
		})
	})
	return last, cur, done, err
}

// run checks a run: its record as GetRun decodes it and as writes validate
// it, its timeline entry by entry, and that both indexes list it as they
// should.
func (w *walk) run(tx *bolt.Tx, id, _ []byte) int {
	name := printable(id)
	b := tx.Bucket(bucketRuns).Bucket(id)
	if b == nil {
		w.found("runs: key %s is not a run", name)
		return 1
	}
	r, err := decodeRecord(id, b.Get(keyRecord))
	if err != nil {
		w.found("%v", err)
		return 1
	}
	cost := 1
	if r.ID != string(id) {
		w.found("run %s: its record is that of run %q", name, r.ID)
		r.ID = string(id) // the indexes name the run by its key
	} else if err := r.validate(); err != nil {
		w.found("run %s: %v", name, err)
	}
	if tl := b.Bucket(keyTimeline); tl == nil {
		w.found("run %s has no timeline", name)
	} else {
		var prev []byte
		_ = tl.ForEach(func(k, v []byte) error {
			cost++
			if len(k) != 8 || bytes.Compare(k, prev) <= 0 {
				w.found("run %s: timeline key %x after %x: not an ascending sequence number", name, k, prev)
			}
			prev = k
			if e, err := decodeEntry(id, k, v); err != nil {
				w.found("%v", err)
			} else if e.At.IsZero() {
				w.found("timeline entry %x of run %s has no time", k, name)
			}
			return nil
		})
	}
	if k, _ := tx.Bucket(bucketByStart).Cursor().Seek(startKey(r)); !bytes.Equal(k, startKey(r)) {
		w.found("run %s is missing from the start-time index", name)
	}
	if !r.State.Terminal() {
		if exp := tx.Bucket(bucketActive).Get(id); string(exp) != r.Experiment {
			w.found("run %s is %s but not listed as an active run of experiment %q", name, r.State, r.Experiment)
		}
	}
	return cost
}

// startIndex checks an entry of the start-time index (what ListRuns
// follows): the run it names exists and started then. A record that does
// not decode is reported by run.
func (w *walk) startIndex(tx *bolt.Tx, k, _ []byte) int {
	if len(k) <= 8 {
		w.found("start-time index: corrupt key %x", k)
		return 1
	}
	id := k[8:]
	b := tx.Bucket(bucketRuns).Bucket(id)
	if b == nil {
		w.found("start-time index names run %s, which is missing", printable(id))
		return 1
	}
	if r, err := decodeRecord(id, b.Get(keyRecord)); err == nil {
		if r.ID = string(id); !bytes.Equal(startKey(r), k) {
			at := time.Unix(0, int64(binary.BigEndian.Uint64(k))).UTC()
			w.found("start-time index lists run %s at %s, its record at %s", printable(id), at.Format(time.RFC3339Nano), r.StartedAt.Format(time.RFC3339Nano))
		}
	}
	return 1
}

// activeIndex checks an entry of the index of active runs (what the gate
// and ActiveRuns read): the run exists, is active and is of that
// experiment. A record that does not decode is reported by run.
func (w *walk) activeIndex(tx *bolt.Tx, id, exp []byte) int {
	b := tx.Bucket(bucketRuns).Bucket(id)
	if b == nil {
		w.found("index of active runs names run %s, which is missing", printable(id))
		return 1
	}
	r, err := decodeRecord(id, b.Get(keyRecord))
	switch {
	case err != nil:
	case r.State.Terminal():
		w.found("index of active runs names run %s, which is %s", printable(id), r.State)
	case r.Experiment != string(exp):
		w.found("index of active runs lists run %s under experiment %q, its record under %q", printable(id), exp, r.Experiment)
	}
	return 1
}

// snapshot reads every byte of an evaluator snapshot, which only the
// evaluator can decode: a value pointing out of the file faults here, in a
// guarded transaction, rather than at the next start.
func (w *walk) snapshot(_ *bolt.Tx, _, v []byte) int {
	_ = crc32.ChecksumIEEE(v)
	return 1 + len(v)/(64<<10)
}

// printable names a key that may be damaged: as it is if it is a valid
// run ID, else quoted and bounded.
func printable(k []byte) string {
	switch {
	case idRe.Match(k):
		return string(k)
	case len(k) > 64:
		return fmt.Sprintf("%q…", k[:64])
	default:
		return fmt.Sprintf("%q", k)
	}
}
