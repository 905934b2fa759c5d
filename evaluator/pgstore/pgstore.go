// Package pgstore keeps runs, their timelines, evaluator snapshots, leases
// and the SLO statuses shards publish in PostgreSQL (storage.url), so that
// several slogate replicas share them: any replica answers any gate and
// run call, one replica at a time supervises the active runs under a
// lease, and a shard reads the statuses of the others' SLOs.
//
// It implements the same contract as the embedded bbolt store
// (evaluator/store), with the same sentinel errors, and the conformance
// tests run against both. The rules of runs are enforced by the database,
// not by timing: a partial unique index allows one active run per
// experiment, a row lock orders the state changes of a run, and a write
// under a lease checks the lease's fence in the same transaction.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/evaluator/store"
)

// Options configure Open.
type Options struct {
	// URL is storage.url: postgres://user@host:port/db?sslmode=...; the
	// standard PG* environment variables fill in what it leaves out.
	URL string
	// PasswordFile, when set, holds the password (storage.password-file);
	// it wins over the URL and PGPASSWORD.
	PasswordFile string
	// Timeout bounds each statement; zero means DefaultTimeout.
	Timeout time.Duration
	Logger  *zap.Logger
	// MaxConns bounds the pool; zero means pgxpool's default.
	MaxConns int32
}

// defaultMaxConns is the pool's size unless storage.url sets
// pool_max_conns: three replicas stay well under PostgreSQL's default
// max_connections of 100.
const defaultMaxConns = 16

// defaultMinConns are kept open unless storage.url sets pool_min_conns:
// all of them. With 8 of 16 the pool still grew under a burst and the
// gate's p99 at 1,000 requests/s was 5–48 ms instead of 3–4 ms.
const defaultMinConns = defaultMaxConns

// DefaultTimeout bounds a statement: a gate answer waits for at most this
// long on a database that does not answer.
const DefaultTimeout = 5 * time.Second

// notifyChannel carries the ID of every run that changed, to wake the
// long polls of every replica.
const notifyChannel = "slogate_runs"

// Store is the PostgreSQL store. Its methods are safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	where   string // user@host:port/db, for messages: never the password
	timeout time.Duration
	logger  *zap.Logger
}

// Open connects, applies the embedded migrations and returns the store.
// Errors name storage.url without its password.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.URL == "" {
		return nil, errors.New("storage.url is empty")
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	cfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		// pgx's message quotes the URL with its password masked.
		return nil, fmt.Errorf("storage.url: %w (expected postgres://user@host:port/database?sslmode=verify-full)", err)
	}
	if o.PasswordFile != "" {
		b, err := os.ReadFile(o.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("storage.password-file: %w", err)
		}
		cfg.ConnConfig.Password = strings.TrimRight(string(b), "\r\n")
	}
	switch {
	case o.MaxConns > 0:
		cfg.MaxConns = o.MaxConns
	case !strings.Contains(o.URL, "pool_max_conns"):
		// pgxpool's default, 4 on 2 cores, queues the gate calls of a
		// busy pipeline behind each other; pool_max_conns in the URL wins.
		cfg.MaxConns = defaultMaxConns
	}
	if !strings.Contains(o.URL, "pool_min_conns") {
		// Connections kept open: a gate call that has to wait for a new
		// one (a backend forked, authenticated) waits tens of
		// milliseconds; measured, it was the p99 (BENCHMARKS.md).
		cfg.MinConns = min(defaultMinConns, cfg.MaxConns)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = o.Timeout
	}
	cc := cfg.ConnConfig
	s := &Store{
		where:   fmt.Sprintf("postgres://%s@%s:%d/%s", cc.User, cc.Host, cc.Port, cc.Database),
		timeout: o.Timeout,
		logger:  o.Logger.With(zap.String("component", "store")),
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("storage.url %s: %w", s.where, err)
	}
	mctx, cancel := context.WithTimeout(ctx, 4*o.Timeout)
	defer cancel()
	applied, err := migrate(mctx, s.pool)
	if err != nil {
		s.pool.Close()
		if errors.Is(err, store.ErrSchema) {
			return nil, fmt.Errorf("storage.url %s: %w", s.where, err)
		}
		return nil, fmt.Errorf("storage.url %s: cannot prepare the schema: %w", s.where, hint(err))
	}
	if applied > 0 {
		s.logger.Info("database schema migrated", zap.String("database", s.where), zap.Int("applied", applied), zap.Int("version", SchemaVersion()))
	}
	return s, nil
}

// Path names the database for logs, without its password.
func (s *Store) Path() string { return s.where }

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.wrap("ping", s.pool.Ping(ctx))
}

// activeStates is the predicate of the runs_one_active index: the states
// that are not terminal (TestActiveStatesMatchAPI).
var activeStates = []string{string(api.StateRunning), string(api.StateRecovering)}

// CreateRun stores a new run with its initial timeline; an empty r.ID is
// filled in. It fails with store.ErrExists if the ID is taken and with
// store.ErrRunActive if the experiment has a non-terminal run, which the
// unique index decides however many replicas race.
func (s *Store) CreateRun(r *store.Run) error {
	run := *r
	if run.ID == "" {
		run.ID = store.NewID(run.StartedAt)
	}
	op := "create run " + run.ID
	if err := store.Validate(&run); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	record, entries, err := encode(&run, run.Timeline)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	err = s.tx(op, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO runs (id, experiment, state, started_ns, record, supervisor) VALUES ($1, $2, $3, $4, $5, $6)`,
			run.ID, run.Experiment, string(run.State), run.StartedAt.UnixNano(), record, run.Supervisor)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
			if pgErr.ConstraintName == "runs_one_active" {
				var other string
				_ = tx.Conn().QueryRow(ctx, `SELECT id FROM runs WHERE experiment = $1 AND state = ANY($2)`, run.Experiment, activeStates).Scan(&other)
				return fmt.Errorf("%w (%s)", store.ErrRunActive, other)
			}
			return store.ErrExists
		}
		if err != nil {
			return err
		}
		return appendEntries(ctx, tx, run.ID, entries)
	})
	if err != nil {
		return err
	}
	r.ID = run.ID
	return nil
}

// UpdateRun replaces the record of a run (not its timeline) and appends
// entries, in one transaction that holds the run's row lock: two racing
// decisions are ordered, and the second is checked against the first
// (api.RunState.CanBecome).
func (s *Store) UpdateRun(r *store.Run, entries ...store.TimelineEntry) error {
	return s.updateRun(nil, r, entries)
}

// UpdateRunLeased is UpdateRun under lease l: it fails with ErrLeaseLost,
// and changes nothing, unless l is still held with the same fence when the
// transaction commits. The supervisor writes this way, so that a replica
// that lost its lease while it was deciding (a long pause, a network
// partition) cannot add a second abort or a duplicate timeline.
func (s *Store) UpdateRunLeased(l Lease, r *store.Run, entries ...store.TimelineEntry) error {
	return s.updateRun(&l, r, entries)
}

func (s *Store) updateRun(l *Lease, r *store.Run, entries []store.TimelineEntry) error {
	op := "update run " + r.ID
	if err := store.Validate(r); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	next := *r
	if l != nil {
		next.Supervisor = l.Holder
	}
	record, encoded, err := encode(&next, entries)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.tx(op, func(ctx context.Context, tx pgx.Tx) error {
		if l != nil {
			if err := checkLease(ctx, tx, *l); err != nil {
				return err
			}
		}
		var raw []byte
		err := tx.QueryRow(ctx, `SELECT record FROM runs WHERE id = $1 FOR UPDATE`, r.ID).Scan(&raw)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		old, err := decodeRecord(r.ID, raw)
		if err != nil {
			return err
		}
		if old.Experiment != r.Experiment || !old.StartedAt.Equal(r.StartedAt) {
			return fmt.Errorf("%w: experiment and startedAt cannot change (stored %s at %s)", store.ErrInvalidRun, old.Experiment, old.StartedAt.Format(time.RFC3339Nano))
		}
		if !old.State.CanBecome(r.State) {
			return fmt.Errorf("%w: %s → %s", store.ErrInvalidTransition, old.State, r.State)
		}
		supervisor := old.Supervisor
		if l != nil {
			supervisor = l.Holder
		}
		if _, err := tx.Exec(ctx, `UPDATE runs SET state = $2, record = $3, supervisor = $4, updated_at = now() WHERE id = $1`,
			r.ID, string(r.State), record, supervisor); err != nil {
			return err
		}
		return appendEntries(ctx, tx, r.ID, encoded)
	})
}

// AppendTimeline adds entries to the end of a run's timeline.
func (s *Store) AppendTimeline(id string, entries ...store.TimelineEntry) error {
	if len(entries) == 0 {
		return nil
	}
	op := "append to timeline of run " + id
	_, encoded, err := encode(nil, entries)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.tx(op, func(ctx context.Context, tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM runs WHERE id = $1 FOR UPDATE`, id).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		} else if err != nil {
			return err
		}
		return appendEntries(ctx, tx, id, encoded)
	})
}

// GetRun returns a run with its whole timeline, or an error matching
// store.ErrNotFound.
func (s *Store) GetRun(id string) (*store.Run, error) {
	runs, err := s.query("run "+id, true, `SELECT id, record, supervisor FROM runs WHERE id = $1`, id)
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("run %s: %w", id, store.ErrNotFound)
	}
	return runs[0], nil
}

// ListRuns returns the runs matching f, newest first.
func (s *Store) ListRuns(f store.ListFilter) ([]*store.Run, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("list runs: negative limit %d", f.Limit)
	}
	q := `SELECT id, record, supervisor FROM runs WHERE ($1 = '' OR experiment = $1) AND (NOT $2 OR state = ANY($3))
		ORDER BY started_ns DESC, id DESC`
	args := []any{f.Experiment, f.Active, activeStates}
	if f.Limit > 0 {
		q += ` LIMIT $4`
		args = append(args, f.Limit)
	}
	return s.query("list runs", f.Timeline, q, args...)
}

// ActiveRuns returns the runs not in a terminal state, with their
// timelines, newest first.
func (s *Store) ActiveRuns() ([]*store.Run, error) {
	return s.ListRuns(store.ListFilter{Active: true, Timeline: true})
}

// query reads runs (id, record, supervisor) and, with timeline, their
// timelines, in one read-only transaction so that they agree.
//
// Without timelines it is one statement outside a transaction (one round
// trip instead of three): the gate asks this on every call.
func (s *Store) query(op string, timeline bool, q string, args ...any) ([]*store.Run, error) {
	if !timeline {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		defer cancel()
		out, _, err := scanRuns(ctx, s.pool, q, args...)
		return out, s.wrap(op, err)
	}
	var out []*store.Run
	err := s.readTx(op, func(ctx context.Context, tx pgx.Tx) error {
		var byID map[string]*store.Run
		var err error
		if out, byID, err = scanRuns(ctx, tx, q, args...); err != nil {
			return err
		}
		if len(out) == 0 {
			return nil
		}
		ids := make([]string, 0, len(out))
		for _, r := range out {
			r.Timeline = []store.TimelineEntry{} // [] in the API, not null
			ids = append(ids, r.ID)
		}
		rows, err := tx.Query(ctx, `SELECT run_id, seq, entry FROM run_timeline WHERE run_id = ANY($1) ORDER BY run_id, seq`, ids)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var seq int64
			var raw []byte
			if err := rows.Scan(&id, &seq, &raw); err != nil {
				return err
			}
			var e store.TimelineEntry
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("decode timeline entry %d of run %s: %w", seq, id, err)
			}
			byID[id].Timeline = append(byID[id].Timeline, e)
		}
		return rows.Err()
	})
	return out, err
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// scanRuns runs q, which selects id, record and supervisor, and decodes
// the runs, also by ID.
func scanRuns(ctx context.Context, db querier, q string, args ...any) ([]*store.Run, map[string]*store.Run, error) {
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var out []*store.Run
	byID := map[string]*store.Run{}
	for rows.Next() {
		var id, supervisor string
		var raw []byte
		if err := rows.Scan(&id, &raw, &supervisor); err != nil {
			return nil, nil, err
		}
		r, err := decodeRecord(id, raw)
		if err != nil {
			return nil, nil, err
		}
		r.Supervisor = supervisor
		out = append(out, r)
		byID[id] = r
	}
	return out, byID, rows.Err()
}

// PutSnapshot stores data under key, replacing what was there. Replicas
// of one shard write the same keys: the last one wins, and they hold the
// same slices.
func (s *Store) PutSnapshot(key string, data []byte) error {
	if key == "" {
		return fmt.Errorf("put snapshot: empty key")
	}
	return s.exec("put snapshot "+key, `INSERT INTO snapshots (key, data) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET data = excluded.data, updated_at = now()`, key, data)
}

// GetSnapshot returns the data stored under key, or an error matching
// store.ErrNotFound.
func (s *Store) GetSnapshot(key string) ([]byte, error) {
	var data []byte
	err := s.readTx("snapshot "+key, func(ctx context.Context, tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT data FROM snapshots WHERE key = $1`, key).Scan(&data)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	return data, err
}

// PutSnapshots stores every key's data in one transaction.
func (s *Store) PutSnapshots(data map[string][]byte) error {
	return s.tx(fmt.Sprintf("put %d snapshots", len(data)), func(ctx context.Context, tx pgx.Tx) error {
		b := &pgx.Batch{}
		for key, v := range data {
			if key == "" {
				return errors.New("empty key")
			}
			b.Queue(`INSERT INTO snapshots (key, data) VALUES ($1, $2)
				ON CONFLICT (key) DO UPDATE SET data = excluded.data, updated_at = now()`, key, v)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// GetSnapshots returns the data of the keys that have some, in one query.
func (s *Store) GetSnapshots(keys []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	err := s.readTx(fmt.Sprintf("%d snapshots", len(keys)), func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT key, data FROM snapshots WHERE key = ANY($1)`, keys)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var key string
			var data []byte
			if err := rows.Scan(&key, &data); err != nil {
				return err
			}
			out[key] = data
		}
		return rows.Err()
	})
	return out, err
}

// DeleteSnapshot removes key; a missing key is not an error.
func (s *Store) DeleteSnapshot(key string) error {
	return s.exec("delete snapshot "+key, `DELETE FROM snapshots WHERE key = $1`, key)
}

// CheckWritable reports whether the database takes a write now.
func (s *Store) CheckWritable() error {
	return s.tx("check that runs can be stored", func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO snapshots (key, data) VALUES ('chaos/store-check', ''::bytea)
			ON CONFLICT (key) DO UPDATE SET updated_at = now()`)
		return err
	})
}

func (s *Store) exec(op, q string, args ...any) error {
	return s.tx(op, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, q, args...)
		return err
	})
}

// tx runs fn in a read-write transaction bounded by the timeout, and tells
// the other replicas' long polls that runs may have changed.
func (s *Store) tx(op string, fn func(context.Context, pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := fn(ctx, tx); err != nil {
			return err
		}
		if strings.Contains(op, "run") {
			_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, notifyChannel)
			return err
		}
		return nil
	})
	return s.wrap(op, err)
}

func (s *Store) readTx(op string, fn func(context.Context, pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		return fn(ctx, tx)
	})
	return s.wrap(op, err)
}

// wrap names the operation, and for the database's own trouble the
// database and a hint.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	for _, domain := range []error{store.ErrNotFound, store.ErrExists, store.ErrRunActive, store.ErrInvalidTransition, store.ErrInvalidRun, ErrLeaseLost} {
		if errors.Is(err, domain) {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return fmt.Errorf("%s: %s: %w", op, s.where, hint(err))
}

// hint explains the errors an operator meets with storage.url.
func hint(err error) error {
	var pgErr *pgconn.PgError
	var h string
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "28P01", errors.As(err, &pgErr) && pgErr.Code == "28000":
		h = "authentication failed: check the user in storage.url and the password (storage.password-file or PGPASSWORD)"
	case errors.As(err, &pgErr) && pgErr.Code == "3D000":
		h = "the database does not exist: create it (CREATE DATABASE) or fix storage.url"
	case errors.As(err, &pgErr) && pgErr.Code == "42501":
		h = "permission denied: the user needs to own the database's schema"
	case errors.As(err, &pgErr) && (pgErr.Code == "25006" || pgErr.Code == "57P01" || pgErr.Code == "57P03"):
		return unavailable{fmt.Errorf("%w (the server is read-only or shutting down: storage.url must point at the primary)", err)}
	case errors.As(err, &pgErr):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return unavailable{fmt.Errorf("%w (PostgreSQL did not answer in time)", err)}
	case pgconn.Timeout(err) || isConnError(err):
		return unavailable{fmt.Errorf("%w (PostgreSQL is unreachable)", err)}
	default:
		return err
	}
	return fmt.Errorf("%w (%s)", err, h)
}

// unavailable is an error of a database that did not answer: it is also
// store.ErrUnavailable.
type unavailable struct{ error }

func (u unavailable) Unwrap() error { return u.error }

func (u unavailable) Is(target error) bool { return target == store.ErrUnavailable }

func isConnError(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || strings.Contains(err.Error(), "connect") || strings.Contains(err.Error(), "conn closed")
}

// encode marshals a record (without its timeline) and timeline entries
// outside the transaction.
func encode(r *store.Run, entries []store.TimelineEntry) (record []byte, encoded [][]byte, err error) {
	if r != nil {
		rec := *r
		rec.Timeline = nil
		rec.Supervisor = "" // a column of its own
		if record, err = json.Marshal(&rec); err != nil {
			return nil, nil, fmt.Errorf("encode run: %w", err)
		}
	}
	encoded, err = store.EncodeEntries(entries)
	return record, encoded, err
}

func appendEntries(ctx context.Context, tx pgx.Tx, id string, entries [][]byte) error {
	if len(entries) == 0 {
		return nil
	}
	rows := make([][]any, len(entries))
	for i, e := range entries {
		rows[i] = []any{id, e}
	}
	// One statement whatever the count; seq keeps their order.
	batch := &pgx.Batch{}
	for _, row := range rows {
		batch.Queue(`INSERT INTO run_timeline (run_id, entry) VALUES ($1, $2)`, row...)
	}
	return tx.SendBatch(ctx, batch).Close()
}

func decodeRecord(id string, raw []byte) (*store.Run, error) {
	r := &store.Run{}
	if err := json.Unmarshal(raw, r); err != nil {
		return nil, fmt.Errorf("decode run %s: %w", id, err)
	}
	r.Timeline = nil
	return r, nil
}
