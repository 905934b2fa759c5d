package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// StatusRow is the status of one SLO as the shard that evaluates it
// published it; Status is opaque to the store.
type StatusRow struct {
	Name        string
	ShardIndex  int
	ShardCount  int
	Replica     string
	Status      []byte
	EvaluatedAt time.Time
}

// statusRetention is how long a row nobody publishes any more (an SLO
// deleted, or moved to a shard that has not published it yet) stays:
// readers judge it stale long before.
const statusRetention = 24 * time.Hour

// PublishStatuses writes rows, each replacing an older evaluation of its
// SLO: the replicas of one shard publish the same SLOs, and the newest
// evaluation wins whatever order they write in.
func (s *Store) PublishStatuses(ctx context.Context, rows []StatusRow) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		for _, r := range rows {
			batch.Queue(`INSERT INTO slo_statuses (name, shard_index, shard_count, replica, status, evaluated_at) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (name) DO UPDATE SET shard_index = excluded.shard_index, shard_count = excluded.shard_count,
					replica = excluded.replica, status = excluded.status, evaluated_at = excluded.evaluated_at, published_at = now()
				WHERE slo_statuses.evaluated_at <= excluded.evaluated_at`,
				r.Name, r.ShardIndex, r.ShardCount, r.Replica, r.Status, r.EvaluatedAt)
		}
		batch.Queue(`DELETE FROM slo_statuses WHERE published_at < now() - make_interval(secs => $1)`, statusRetention.Seconds())
		return tx.SendBatch(ctx, batch).Close()
	})
	return s.wrap("publish SLO statuses", err)
}

// ReadStatuses returns every published status but those of shard
// (shardIndex of shardCount): the others' SLOs.
func (s *Store) ReadStatuses(ctx context.Context, shardIndex, shardCount int) ([]StatusRow, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT name, shard_index, shard_count, replica, status, evaluated_at FROM slo_statuses
		WHERE NOT (shard_index = $1 AND shard_count = $2) ORDER BY name`, shardIndex, shardCount)
	if err != nil {
		return nil, s.wrap("read SLO statuses", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (StatusRow, error) {
		var r StatusRow
		err := row.Scan(&r.Name, &r.ShardIndex, &r.ShardCount, &r.Replica, &r.Status, &r.EvaluatedAt)
		return r, err
	})
	return out, s.wrap("read SLO statuses", err)
}
