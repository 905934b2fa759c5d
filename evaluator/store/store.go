// Package store persists chaos experiment runs, their verdict timelines and
// evaluator snapshots in an embedded bbolt database under storage.path, so
// that they survive a restart, kill -9 included.
//
// Every write is one bbolt transaction, committed and fsync'ed before the
// method returns: the API acknowledges a state change only after the store
// did, so an acknowledged change is never lost.
//
// Layout (bucket names are part of the on-disk format):
//
//	meta            version → schema version
//	runs            <id> → bucket{ "run" → Run as JSON without timeline,
//	                                 "timeline" → bucket{ seq (uint64 BE) → TimelineEntry as JSON } }
//	runs-by-start   startedAt (unix ns, uint64 BE) + <id> → nothing: newest-first listing
//	runs-active     <id> → experiment, for non-terminal runs
//	snapshots       key → evaluator state
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FileName is the database file inside storage.path.
const FileName = "slogate.db"

// DefaultLockTimeout is how long Open waits for another process to let go
// of the database: long enough to ride out a restart where the old process
// is still shutting down, short enough to fail visibly instead of hanging.
const DefaultLockTimeout = 3 * time.Second

// schemaVersion is the layout this code reads and writes.
const schemaVersion = 1

// Errors callers can test with errors.Is.
var (
	ErrNotFound          = errors.New("not found")
	ErrExists            = errors.New("already exists")
	ErrRunActive         = errors.New("experiment already has an active run")
	ErrInvalidTransition = errors.New("invalid state transition")
	ErrInvalidRun        = errors.New("invalid run")
	ErrLocked            = errors.New("database is locked")
	ErrSchema            = errors.New("unsupported database schema")
	// ErrUnavailable marks an error of a shared store that did not answer
	// (down, unreachable, read-only, too slow): worth retrying, and
	// answered 503 by the API.
	ErrUnavailable = errors.New("store unavailable")
)

var (
	bucketMeta      = []byte("meta")
	bucketRuns      = []byte("runs")
	bucketByStart   = []byte("runs-by-start")
	bucketActive    = []byte("runs-active")
	bucketSnapshots = []byte("snapshots")
	keyVersion      = []byte("version")
	keyRecord       = []byte("run")
	keyTimeline     = []byte("timeline")
)

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for the file lock held by another
	// process; zero means DefaultLockTimeout. bbolt would wait forever.
	LockTimeout time.Duration
}

// Store is the run database. Its methods are safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string // storage.path
	file string // the database file
}

// Open opens (creating it and its directory if needed) the database in
// directory path.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("storage.path is empty")
	}
	if opts.LockTimeout < 0 {
		return nil, fmt.Errorf("store options: negative lock timeout %s", opts.LockTimeout)
	}
	timeout := opts.LockTimeout
	if timeout == 0 {
		timeout = DefaultLockTimeout
	}
	if err := os.MkdirAll(path, 0o750); err != nil {
		return nil, fmt.Errorf("storage.path %s: create directory: %w", path, hint(err))
	}
	file := filepath.Join(path, FileName)
	var db *bolt.DB
	// Guarded like every transaction: a file cut short faults (SIGBUS) when
	// bbolt reads its freelist past the end.
	err := guard(func() (err error) {
		db, err = bolt.Open(file, 0o600, &bolt.Options{Timeout: timeout})
		return err
	})
	if err != nil && strings.Contains(err.Error(), "file size too small") {
		err = fmt.Errorf("%w: %v", ErrDamaged, err) // bbolt has no sentinel for it
	}
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("storage.path %s is locked by another slogate process (gave up after %s): %w", path, timeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("storage.path %s: open %s: %w", path, file, hint(err))
	}
	if err := guard(func() error { return db.Update(initSchema) }); err != nil {
		_ = guard(db.Close)
		return nil, fmt.Errorf("storage.path %s: initialize %s: %w", path, file, hint(err))
	}
	return &Store{db: db, path: path, file: file}, nil
}

// ErrDamaged is a database file bbolt cannot read: it panics on some damaged
// pages (a freelist or branch page overwritten), which must end in a clear
// error, never in a crash.
var ErrDamaged = errors.New("damaged database")

// recoverDamage runs fn, turning a panic of bbolt on a damaged file into
// ErrDamaged.
func recoverDamage(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrDamaged, p)
		}
	}()
	return fn()
}

func initSchema(tx *bolt.Tx) error {
	if meta := tx.Bucket(bucketMeta); meta != nil {
		v := string(meta.Get(keyVersion))
		if n, err := strconv.Atoi(v); err != nil || n != schemaVersion {
			return fmt.Errorf("%w: version %q, this slogate reads %d (written by another version?)", ErrSchema, v, schemaVersion)
		}
	}
	for _, name := range [][]byte{bucketMeta, bucketRuns, bucketByStart, bucketActive, bucketSnapshots} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return tx.Bucket(bucketMeta).Put(keyVersion, []byte(strconv.Itoa(schemaVersion)))
}

// Path is the database file, for logs.
func (s *Store) Path() string { return s.file }

// Close releases the database and its lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.file, err)
	}
	return nil
}

// CreateRun stores a new run with its initial timeline. An empty r.ID is
// filled in with NewID(r.StartedAt). It fails with ErrExists if the ID is
// taken and with ErrRunActive if the experiment already has a non-terminal
// run: checking and inserting in one transaction is what makes "one active
// run per experiment" hold when two start requests race.
func (s *Store) CreateRun(r *Run) error {
	run := *r
	if run.ID == "" {
		run.ID = NewID(run.StartedAt)
	}
	op := "create run " + run.ID
	if err := run.validate(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	entries, err := encodeEntries(run.Timeline)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	record, err := encodeRecord(&run)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	id := []byte(run.ID)
	err = s.update(op, func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		if runs.Bucket(id) != nil {
			return ErrExists
		}
		if !run.State.Terminal() {
			var other []byte
			_ = tx.Bucket(bucketActive).ForEach(func(k, v []byte) error {
				if string(v) == run.Experiment && other == nil {
					other = slices.Clone(k)
				}
				return nil
			})
			if other != nil {
				return fmt.Errorf("%w (%s)", ErrRunActive, other)
			}
			if err := tx.Bucket(bucketActive).Put(id, []byte(run.Experiment)); err != nil {
				return err
			}
		}
		b, err := runs.CreateBucket(id)
		if err != nil {
			return err
		}
		if err := b.Put(keyRecord, record); err != nil {
			return err
		}
		tl, err := b.CreateBucket(keyTimeline)
		if err != nil {
			return err
		}
		if err := appendEntries(tl, entries); err != nil {
			return err
		}
		return tx.Bucket(bucketByStart).Put(startKey(&run), nil)
	})
	if err != nil {
		return err
	}
	r.ID = run.ID
	return nil
}

// UpdateRun replaces the record of an existing run (everything but its
// timeline: r.Timeline is ignored) and appends entries to the timeline, in
// one transaction. The state may only move forward (api.RunState.CanBecome),
// so that two racing decisions (a finish request and an abort by the
// supervisor) cannot both win; the experiment and start time cannot change.
func (s *Store) UpdateRun(r *Run, entries ...TimelineEntry) error {
	op := "update run " + r.ID
	if err := r.validate(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	encoded, err := encodeEntries(entries)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	record, err := encodeRecord(r)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.update(op, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns).Bucket([]byte(r.ID))
		if b == nil {
			return ErrNotFound
		}
		var old Run
		if err := json.Unmarshal(b.Get(keyRecord), &old); err != nil {
			return fmt.Errorf("decode stored run: %w", err)
		}
		if old.Experiment != r.Experiment || !old.StartedAt.Equal(r.StartedAt) {
			return fmt.Errorf("%w: experiment and startedAt cannot change (stored %s at %s)", ErrInvalidRun, old.Experiment, old.StartedAt.Format(time.RFC3339Nano))
		}
		if !old.State.CanBecome(r.State) {
			return fmt.Errorf("%w: %s → %s", ErrInvalidTransition, old.State, r.State)
		}
		if err := b.Put(keyRecord, record); err != nil {
			return err
		}
		if err := appendEntries(b.Bucket(keyTimeline), encoded); err != nil {
			return err
		}
		if r.State.Terminal() {
			return tx.Bucket(bucketActive).Delete([]byte(r.ID))
		}
		return nil
	})
}

// AppendTimeline adds entries to the end of a run's timeline. Entries live
// in their own bucket keyed by a sequence number, so appending costs the
// same whatever the length of the timeline. Values that are NaN or
// infinite are stored as null.
func (s *Store) AppendTimeline(id string, entries ...TimelineEntry) error {
	op := "append to timeline of run " + id
	if len(entries) == 0 {
		return nil
	}
	encoded, err := encodeEntries(entries)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.update(op, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns).Bucket([]byte(id))
		if b == nil {
			return ErrNotFound
		}
		return appendEntries(b.Bucket(keyTimeline), encoded)
	})
}

// GetRun returns a run with its whole timeline, or an error matching
// ErrNotFound.
func (s *Store) GetRun(id string) (*Run, error) {
	op := "run " + id
	var r *Run
	err := s.view(op, func(tx *bolt.Tx) error {
		var err error
		r, err = loadRun(tx, []byte(id), true)
		return err
	})
	return r, err
}

// ListFilter selects runs for ListRuns.
type ListFilter struct {
	Experiment string // only this experiment's runs; "" for all
	Active     bool   // only runs in a non-terminal state
	Limit      int    // at most this many; 0 for no limit
	// Timeline includes each run's timeline; without it Timeline is nil,
	// which keeps listings cheap when runs have long timelines.
	Timeline bool
}

// ListRuns returns the runs matching f, newest (by StartedAt, then ID)
// first.
func (s *Store) ListRuns(f ListFilter) ([]*Run, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("list runs: negative limit %d", f.Limit)
	}
	var out []*Run
	err := s.view("list runs", func(tx *bolt.Tx) error {
		keep := func(r *Run) bool {
			return (f.Experiment == "" || r.Experiment == f.Experiment) && (!f.Active || !r.State.Terminal())
		}
		if f.Active {
			// Few runs are active: read them all, then order.
			err := tx.Bucket(bucketActive).ForEach(func(k, _ []byte) error {
				r, err := loadRun(tx, k, f.Timeline)
				if err != nil {
					return indexError(k, err)
				}
				if keep(r) {
					out = append(out, r)
				}
				return nil
			})
			if err != nil {
				return err
			}
			slices.SortFunc(out, newestFirst)
			if f.Limit > 0 && len(out) > f.Limit {
				out = out[:f.Limit]
			}
			return nil
		}
		c := tx.Bucket(bucketByStart).Cursor()
		for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
			if len(k) <= 8 {
				return fmt.Errorf("corrupt index key %x", k)
			}
			r, err := loadRun(tx, k[8:], f.Timeline)
			if err != nil {
				return indexError(k[8:], err)
			}
			if !keep(r) {
				continue
			}
			out = append(out, r)
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ActiveRuns returns the runs not in a terminal state, with their
// timelines, newest first: what the evaluator resumes after a restart.
func (s *Store) ActiveRuns() ([]*Run, error) {
	return s.ListRuns(ListFilter{Active: true, Timeline: true})
}

// PutSnapshot stores data under key, replacing what was there.
func (s *Store) PutSnapshot(key string, data []byte) error {
	op := "put snapshot " + strconv.Quote(key)
	if key == "" {
		return fmt.Errorf("%s: empty key", op)
	}
	return s.update(op, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSnapshots).Put([]byte(key), data)
	})
}

// GetSnapshot returns a copy of the data stored under key, or an error
// matching ErrNotFound.
func (s *Store) GetSnapshot(key string) ([]byte, error) {
	var data []byte
	err := s.view("snapshot "+strconv.Quote(key), func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSnapshots).Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		// bbolt's memory is only valid inside the transaction.
		data = bytes.Clone(v)
		return nil
	})
	return data, err
}

// PutSnapshots stores every key's data in one transaction.
func (s *Store) PutSnapshots(data map[string][]byte) error {
	return s.update(fmt.Sprintf("put %d snapshots", len(data)), func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots)
		for key, v := range data {
			if key == "" {
				return errors.New("empty key")
			}
			if err := b.Put([]byte(key), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetSnapshots returns copies of the data of the keys that have some, read
// in one transaction.
func (s *Store) GetSnapshots(keys []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	err := s.view(fmt.Sprintf("%d snapshots", len(keys)), func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots)
		for _, key := range keys {
			if v := b.Get([]byte(key)); v != nil {
				out[key] = bytes.Clone(v) // valid only inside the transaction
			}
		}
		return nil
	})
	return out, err
}

// DeleteSnapshot removes key; a missing key is not an error.
func (s *Store) DeleteSnapshot(key string) error {
	if key == "" {
		return nil
	}
	return s.update("delete snapshot "+strconv.Quote(key), func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSnapshots).Delete([]byte(key))
	})
}

// While the store refuses writes, CheckWritable writes (and removes)
// checkSize bytes under checkKey to notice when it takes them again. The
// check is far larger than a run start: a small write can succeed on a full
// disk by reusing the database's free pages, and the gate must not open
// again before a run really fits.
const (
	checkKey  = "chaos/store-check"
	checkSize = 64 << 10
)

// CheckWritable reports whether the database takes a write as large as a
// run's now, by writing and removing a snapshot of that size.
func (s *Store) CheckWritable() error {
	if err := s.PutSnapshot(checkKey, make([]byte, checkSize)); err != nil {
		return err
	}
	return s.DeleteSnapshot(checkKey)
}

func (s *Store) update(op string, fn func(*bolt.Tx) error) error {
	if err := guard(func() error { return s.db.Update(fn) }); err != nil {
		return s.wrap(op, err)
	}
	return nil
}

func (s *Store) view(op string, fn func(*bolt.Tx) error) error {
	if err := guard(func() error { return s.db.View(fn) }); err != nil {
		return s.wrap(op, err)
	}
	return nil
}

// guard runs a transaction so that a damaged file ends in ErrDamaged: bbolt
// does not checksum data pages, and on flipped bytes it panics (its
// assertions) or reads outside its map (a fault, which SetPanicOnFault
// turns into a panic on this goroutine). bbolt rolls the transaction back
// before the panic leaves it, so the database stays usable for what is
// not damaged.
func guard(fn func() error) error {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return recoverDamage(fn)
}

// wrap names the operation, and for I/O and database errors also the file
// and a hint (disk full, read-only): those are the ones an operator fixes.
func (s *Store) wrap(op string, err error) error {
	for _, domain := range []error{ErrNotFound, ErrExists, ErrRunActive, ErrInvalidTransition, ErrInvalidRun} {
		if errors.Is(err, domain) {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return fmt.Errorf("%s: %s: %w", op, s.file, hint(err))
}

// hint explains the errors an operator meets with storage.path.
func hint(err error) error {
	var h string
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		h = "the disk is full"
	case errors.Is(err, syscall.EROFS):
		h = "the file system is read-only"
	case errors.Is(err, fs.ErrPermission):
		h = "permission denied: storage.path must be writable by this user"
	case errors.Is(err, syscall.ENOTDIR):
		h = "part of the path is a file, not a directory"
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, ErrDamaged):
		h = "the file is not a slogate database, or it is damaged: move it aside (runs it held are lost to slogate) and start again with an empty store"
	default:
		return err
	}
	return fmt.Errorf("%w (%s)", err, h)
}

// indexError keeps a run missing behind an index entry from reading as
// ErrNotFound of the listing itself.
func indexError(id []byte, err error) error {
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("index names run %s, which is missing", id)
	}
	return err
}

func loadRun(tx *bolt.Tx, id []byte, withTimeline bool) (*Run, error) {
	b := tx.Bucket(bucketRuns).Bucket(id)
	if b == nil {
		return nil, ErrNotFound
	}
	r, err := decodeRecord(id, b.Get(keyRecord))
	if err != nil {
		return nil, err
	}
	if !withTimeline {
		return r, nil
	}
	tl := b.Bucket(keyTimeline)
	if tl == nil {
		return nil, fmt.Errorf("%w: run %s has no timeline", ErrDamaged, id)
	}
	r.Timeline = []TimelineEntry{} // an empty timeline is [] in the API, not null
	err = tl.ForEach(func(k, v []byte) error {
		e, err := decodeEntry(id, k, v)
		if err != nil {
			return err
		}
		r.Timeline = append(r.Timeline, e)
		return nil
	})
	return r, err
}

// decodeRecord decodes the record of run id, without its timeline; Check
// decodes with it too, so that it finds what reads would trip over.
func decodeRecord(id, v []byte) (*Run, error) {
	r := &Run{}
	if err := json.Unmarshal(v, r); err != nil {
		return nil, fmt.Errorf("decode run %s: %w", id, err)
	}
	r.Timeline = nil
	return r, nil
}

// decodeEntry decodes the timeline entry at key k of run id.
func decodeEntry(id, k, v []byte) (TimelineEntry, error) {
	var e TimelineEntry
	if err := json.Unmarshal(v, &e); err != nil {
		return e, fmt.Errorf("decode timeline entry %x of run %s: %w", k, id, err)
	}
	return e, nil
}

func encodeRecord(r *Run) ([]byte, error) {
	rec := *r
	rec.Timeline = nil // stored in its own bucket
	b, err := json.Marshal(&rec)
	if err != nil {
		return nil, fmt.Errorf("encode run: %w", err)
	}
	return b, nil
}

// EncodeEntries is encodeEntries, for the PostgreSQL store: both stores
// keep the same JSON for an entry.
func EncodeEntries(entries []TimelineEntry) ([][]byte, error) { return encodeEntries(entries) }

// encodeEntries marshals outside the transaction, so that the single
// writer holds the lock for as short as possible.
func encodeEntries(entries []TimelineEntry) ([][]byte, error) {
	out := make([][]byte, len(entries))
	for i, e := range entries {
		if e.At.IsZero() {
			return nil, fmt.Errorf("%w: timeline entry %d has no time", ErrInvalidRun, i)
		}
		if e.Value != nil {
			e.Value = FloatPtr(*e.Value)
		}
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode timeline entry %d: %w", i, err)
		}
		out[i] = b
	}
	return out, nil
}

func appendEntries(tl *bolt.Bucket, entries [][]byte) error {
	for _, e := range entries {
		seq, err := tl.NextSequence()
		if err != nil {
			return err
		}
		if err := tl.Put(binary.BigEndian.AppendUint64(nil, seq), e); err != nil {
			return err
		}
	}
	return nil
}

// startKey orders the index by start time; the ID breaks ties and makes
// the key unique.
func startKey(r *Run) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(r.StartedAt.UnixNano())), r.ID...)
}

func newestFirst(a, b *Run) int {
	if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
		return c
	}
	if a.ID > b.ID {
		return -1
	}
	if a.ID < b.ID {
		return 1
	}
	return 0
}
