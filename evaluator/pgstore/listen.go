package pgstore

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// Listen calls changed whenever a replica changes a run (LISTEN on the
// channel every run write notifies), until ctx ends: it wakes the long
// polls of GET /api/v1/runs/{id}/wait on every replica. When the
// connection drops, it calls changed too (a change may have been missed)
// and listens again after retry; after waits on the clock.
func (s *Store) Listen(ctx context.Context, changed func(), retry time.Duration, after func(time.Duration) <-chan time.Time) error {
	if after == nil {
		after = time.After
	}
	for {
		err := s.listen(ctx, changed)
		if ctx.Err() != nil {
			return nil
		}
		s.logger.Warn("lost the notifications of run changes; long polls fall back to their timeouts until it is back", zap.Error(err))
		changed()
		select {
		case <-ctx.Done():
			return nil
		case <-after(retry):
		}
	}
}

func (s *Store) listen(ctx context.Context, changed func()) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.wrap("listen", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		conn.Conn().PgConn().Close(context.Background()) // do not return a listening connection to the pool
		return s.wrap("listen", err)
	}
	defer conn.Conn().PgConn().Close(context.Background())
	changed() // anything that changed before LISTEN took effect
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return s.wrap("listen", err)
		}
		changed()
	}
}
