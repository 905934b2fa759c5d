package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/slogate/slogate/evaluator/store"
)

// ErrLeaseLost is store.ErrLeaseLost.
var ErrLeaseLost = store.ErrLeaseLost

// Lease is store.Lease.
type Lease = store.Lease

// AcquireLease takes lease name for holder for ttl, or renews it if holder
// has it. It returns held false, and the current holder in the lease, when
// another replica holds it and it has not expired. Expiry is judged by the
// database's clock, so the replicas' clocks do not matter.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	l := Lease{Name: name, Holder: holder}
	err := s.pool.QueryRow(ctx, `INSERT INTO leases (name, holder, fence, expires_at) VALUES ($1, $2, 1, now() + make_interval(secs => $3))
		ON CONFLICT (name) DO UPDATE SET
			holder = excluded.holder,
			fence = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > now() THEN leases.fence ELSE leases.fence + 1 END,
			expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= now()
		RETURNING fence`, name, holder, ttl.Seconds()).Scan(&l.Fence)
	if err == nil {
		return l, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return l, false, s.wrap("acquire lease "+name, err)
	}
	var other Lease
	other.Name = name
	err = s.pool.QueryRow(ctx, `SELECT holder, fence FROM leases WHERE name = $1`, name).Scan(&other.Holder, &other.Fence)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return l, false, s.wrap("read lease "+name, err)
	}
	return other, false, nil
}

// ReleaseLease gives lease l up, if it is still l: on an orderly stop, so
// that another replica takes over at once instead of after the expiry. The
// row stays, expired, so that the fence keeps growing.
func (s *Store) ReleaseLease(ctx context.Context, l Lease) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.pool.Exec(ctx, `UPDATE leases SET expires_at = now() WHERE name = $1 AND holder = $2 AND fence = $3`, l.Name, l.Holder, l.Fence)
	return s.wrap("release lease "+l.Name, err)
}

// check fails with ErrLeaseLost unless l is held, unexpired, with its
// fence; it locks the lease's row until the transaction ends, so that a
// takeover waits for the write made under it.
func checkLease(ctx context.Context, tx pgx.Tx, l Lease) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM leases WHERE name = $1 AND holder = $2 AND fence = $3 AND expires_at > now() FOR SHARE`,
		l.Name, l.Holder, l.Fence).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w (lease %s, fence %d)", ErrLeaseLost, l.Name, l.Fence)
	}
	return err
}

// SupervisorLease is the name of the lease that lets one replica supervise
// every active run.
const SupervisorLease = "run-supervisor"

// KeeperOptions configure a Keeper.
type KeeperOptions struct {
	Store  *Store
	Name   string // the lease; default SupervisorLease
	Holder string // this replica
	// TTL is how long the lease lasts without a renewal: how long runs go
	// unsupervised after the holder dies. It is renewed every TTL/3.
	TTL    time.Duration
	Logger *zap.Logger
	// After is the clock the renewals wait on (default time.After).
	After func(time.Duration) <-chan time.Time
	// Registerer gets slogate_store_healthy and
	// slogate_supervisor_lease_held; nil for none.
	Registerer prometheus.Registerer
}

// Keeper holds a lease for this replica while it can: it tries to take it
// every TTL/3, renews it while held, and releases it when it stops.
type Keeper struct {
	o      KeeperOptions
	logger *zap.Logger

	mu    sync.Mutex
	lease Lease
	held  bool
	// other is the holder seen when not held, for /api/v1/runs.
	other string

	healthy, heldGauge prometheus.Gauge
}

// NewKeeper returns a Keeper; it holds nothing until Run.
func NewKeeper(o KeeperOptions) (*Keeper, error) {
	if o.Store == nil || o.Holder == "" || o.TTL <= 0 {
		return nil, errors.New("lease keeper: a store, a holder and a positive TTL are required")
	}
	if o.Name == "" {
		o.Name = SupervisorLease
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.After == nil {
		o.After = time.After
	}
	f := promauto.With(o.Registerer)
	return &Keeper{
		o: o, logger: o.Logger.With(zap.String("component", "lease"), zap.String("lease", o.Name), zap.String("replica", o.Holder)),
		healthy: f.NewGauge(prometheus.GaugeOpts{
			Name: "slogate_store_healthy",
			Help: "1 if the last write to the run store (the lease renewal on storage.url) succeeded, 0 if it failed: runs cannot start, end or be supervised while it is 0.",
		}),
		heldGauge: f.NewGauge(prometheus.GaugeOpts{
			Name: "slogate_supervisor_lease_held",
			Help: "1 if this replica holds the lease that makes it supervise the active runs, else 0. Exactly one replica of a deployment should show 1.",
		}),
	}, nil
}

// Held returns the lease to write under, and whether this replica holds it
// as far as it knows: a write under it checks it again.
func (k *Keeper) Held() (Lease, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lease, k.held
}

// Holder is the replica that held the lease at the last attempt: this one
// or another; "" when unknown.
func (k *Keeper) Holder() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.held {
		return k.lease.Holder
	}
	return k.other
}

// Renew tries to take or renew the lease once.
func (k *Keeper) Renew(ctx context.Context) {
	l, held, err := k.o.Store.AcquireLease(ctx, k.o.Name, k.o.Holder, k.o.TTL)
	k.mu.Lock()
	defer func() {
		k.heldGauge.Set(b2f(k.held))
		k.mu.Unlock()
	}()
	if ctx.Err() == nil {
		k.healthy.Set(b2f(err == nil))
	}
	switch {
	case err != nil:
		if k.held {
			k.logger.Warn("cannot renew the lease; another replica takes over if it expires", zap.Error(err))
		}
		// Held stays as it was: the lease may still be valid, and every
		// write under it is checked by the database.
	case held && (!k.held || k.lease.Fence != l.Fence):
		k.logger.Info("lease taken: this replica supervises the runs", zap.Int64("fence", l.Fence))
		k.lease, k.held = l, true
	case held:
		k.lease = l
	case !held:
		if k.held {
			k.logger.Warn("lease lost to another replica", zap.String("holder", l.Holder))
		}
		k.held, k.other = false, l.Holder
	}
}

// Run keeps the lease until ctx ends, then releases it.
func (k *Keeper) Run(ctx context.Context) error {
	for {
		k.Renew(ctx)
		select {
		case <-ctx.Done():
			if l, held := k.Held(); held {
				k.mu.Lock()
				k.held = false
				k.heldGauge.Set(0)
				k.mu.Unlock()
				if err := k.o.Store.ReleaseLease(context.Background(), l); err != nil {
					k.logger.Warn("cannot release the lease; another replica takes over when it expires", zap.Error(err))
				}
			}
			return nil
		case <-k.o.After(k.o.TTL / 3):
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
