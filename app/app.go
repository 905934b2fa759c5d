// Package app is slogate's composition root: it builds the evaluator, the
// run manager, the notifier, the reload coordinator and the web server from
// a configuration, wires them together, and runs them as one group. The
// commands `serve` and `demo` are thin layers over it, and tests start it
// in process.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/config"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/alerts"
	"github.com/slogate/slogate/evaluator/chaos"
	"github.com/slogate/slogate/evaluator/notifier"
	"github.com/slogate/slogate/evaluator/pgstore"
	"github.com/slogate/slogate/evaluator/shared"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/query"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/web"
)

// Options configure an App.
type Options struct {
	Config   *config.Config
	Logger   *zap.Logger
	Registry *prometheus.Registry
	Querier  query.Querier
	// Load reads the definitions, at start and at every reload.
	Load func() (*slo.Set, slo.Diagnostics)
	// Watch lists files and directories whose changes trigger a reload.
	Watch []string
	// Listener, when set, is used instead of web.listen-address.
	Listener net.Listener
	// Now and After are the clock (default time.Now and time.After): the
	// evaluation loop waits on it and /health judges the loop's heartbeat
	// by it. Tests set a fake clock.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

// App is a running slogate service.
type App struct {
	opts     Options
	logger   *zap.Logger
	store    *store.Store   // the embedded store, or nil
	pg       *pgstore.Store // the shared store (storage.url), or nil
	lease    *pgstore.Keeper
	shared   *shared.Statuses
	checker  *store.Checker
	ev       *evaluator.Evaluator
	runs     *chaos.Manager
	notifier *notifier.Notifier
	server   *web.Server
	reloader *reloader
	liveness *liveness
	baseURL  string
	listener net.Listener

	group    run.Group
	stopOnce sync.Once
	stop     chan struct{}
}

// New loads the definitions, opens the store and builds every part. Nothing
// runs until Run. Its errors name the setting or file at fault.
func New(o Options) (_ *App, err error) {
	if o.Config == nil || o.Querier == nil || o.Load == nil {
		return nil, errors.New("app: a configuration, a querier and a definitions loader are required")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	cfg := o.Config
	a := &App{opts: o, logger: o.Logger, stop: make(chan struct{})}

	a.reloader = newReloader(o.Load, o.Logger, o.Registry, o.Now, cfg.Reload.AllowEmpty)
	set, err := a.reloader.initial()
	if err != nil {
		return nil, err
	}

	var runStore chaos.Store
	var snapshots evaluator.SnapshotStore
	if cfg.Storage.URL != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		a.pg, err = pgstore.Open(ctx, pgstore.Options{URL: cfg.Storage.URL, PasswordFile: cfg.Storage.PasswordFile, Logger: o.Logger})
		cancel()
		if err != nil {
			return nil, err // it names storage.url, without the password
		}
		runStore, snapshots = a.pg, a.pg
	} else {
		if a.store, err = store.Open(cfg.Storage.Path, store.Options{}); err != nil {
			return nil, err // it names storage.path and the directory
		}
		runStore, snapshots = a.store, a.store
	}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if a.store != nil {
		// The store check waits for its next hour on the real clock: tests
		// count the evaluation loop's waits on After.
		a.checker, err = store.NewChecker(store.CheckerOptions{Store: a.store, Logger: o.Logger, Registerer: o.Registry, Now: o.Now})
		if err != nil {
			return nil, err
		}
	}
	stale := staleAfter(cfg.Evaluation.Interval, cfg.Prometheus.Timeout)
	var remote func(time.Time) map[string]evaluator.SLOStatus
	if a.pg != nil {
		replica := cfg.Storage.Replica
		if replica == "" {
			replica = defaultReplica()
		}
		a.lease, err = pgstore.NewKeeper(pgstore.KeeperOptions{Store: a.pg, Holder: replica, TTL: leaseTTL(cfg.Evaluation.Interval), Logger: o.Logger, Registerer: o.Registry})
		if err != nil {
			return nil, err
		}
		if cfg.Shard.Count > 1 {
			a.shared = shared.New(shared.Options{Store: a.pg, ShardIndex: cfg.Shard.Index, ShardCount: cfg.Shard.Count,
				Replica: replica, StaleAfter: stale, Logger: o.Logger})
			remote = a.shared.Remote
		}
	}

	a.ev, err = evaluator.New(evaluator.Options{
		Querier: o.Querier, Logger: o.Logger, Registerer: o.Registry,
		Interval: cfg.Evaluation.Interval, MaxConcurrency: cfg.Evaluation.MaxConcurrency,
		MinRange: cfg.Evaluation.MinRange, Spread: spread,
		StaleAfter:     stale,
		ForecastWindow: cfg.Evaluation.ForecastWindow,
		ShardIndex:     cfg.Shard.Index, ShardCount: cfg.Shard.Count,
		Snapshots: snapshots, RemoteSLOs: remote, Now: o.Now, After: o.After,
		// a.runs is set below, before the evaluator's loop starts.
		RunStarts: func() map[string]time.Time {
			if a.runs == nil {
				return nil
			}
			return a.runs.RunStarts()
		},
	})
	if err != nil {
		return nil, err
	}
	a.reloader.apply = a.ev.SetDefinitions
	if err := a.reloader.commit(set); err != nil {
		return nil, fmt.Errorf("definitions: %w", err)
	}
	a.liveness = newLiveness(a.ev.Heartbeat, o.Now, cfg.Evaluation.Interval, cfg.Prometheus.Timeout)

	a.listener = o.Listener
	if a.listener == nil {
		if a.listener, err = net.Listen("tcp", cfg.Web.ListenAddress); err != nil {
			return nil, fmt.Errorf("web.listen-address %s: %w", cfg.Web.ListenAddress, err)
		}
	}
	// A web config file may configure basic auth only: https only with a
	// certificate.
	servesTLS, err := web.ServesTLS(cfg.Web.ConfigFile)
	if err != nil {
		return nil, err
	}
	a.baseURL = baseURL(a.listener, servesTLS)
	externalURL := cfg.Web.ExternalURL
	if externalURL == "" {
		externalURL = a.baseURL
	}

	a.notifier, err = notifier.New(notifier.Options{
		URLs:    cfg.Alertmanager.URLs, // none: alerts are only logged
		Timeout: cfg.Alertmanager.Timeout, ResendDelay: cfg.Alertmanager.ResendDelay,
		QueueCapacity: cfg.Alertmanager.QueueCapacity, EvaluationInterval: cfg.Evaluation.Interval,
		Logger: o.Logger, Registerer: o.Registry, Now: o.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("alertmanager: %w", err)
	}
	alertOpts := alerts.Options{ExternalURL: externalURL, DashboardURL: cfg.Web.DashboardURL, StaleAfter: 2 * cfg.Evaluation.Interval}
	statuses := func() chaos.Statuses { return a.ev.Snapshot() }
	if a.shared != nil {
		statuses = func() chaos.Statuses { return a.shared.View(a.ev.Snapshot()) }
	}
	var lease chaos.Lease
	if a.lease != nil {
		lease = a.lease
	}
	a.runs, err = chaos.New(chaos.Options{
		Store: runStore, Snapshots: statuses, Lease: lease,
		Logger: o.Logger, Registerer: o.Registry, Now: o.Now,
		OnTransition: func(r *store.Run, _ api.RunState) {
			if r.State == api.StateAborted {
				a.notifier.Send(alerts.RunAborted(r, a.ev.Definitions().Experiment(r.Experiment), alertOpts))
			}
		},
	})
	if err != nil {
		return nil, err
	}
	// Other shards' statuses first, then the runs, so that an abort of this
	// cycle is in the alerts built next.
	if a.shared != nil {
		a.ev.OnCycle(a.shared.OnCycle)
	}
	a.ev.OnCycle(func(ctx context.Context, snap *evaluator.Snapshot) { a.runs.OnCycle(ctx, statuses()) })
	a.ev.OnCycle(func(_ context.Context, snap *evaluator.Snapshot) { a.notifier.Update(alerts.Build(snap, alertOpts)) })

	token, err := cfg.Web.APIToken()
	if err != nil {
		return nil, fmt.Errorf("web.api-token-file: %w", err)
	}
	a.server, err = web.New(web.Options{
		Evaluator: a.ev, Runs: a.runs, Gatherer: o.Registry, Logger: o.Logger, Reload: a.Reload,
		Listener: a.listener, WebConfigFile: cfg.Web.ConfigFile, APIToken: token,
		MaxBodyBytes: cfg.Web.MaxBodyBytes, ExternalURL: cfg.Web.ExternalURL, EnablePprof: cfg.Web.EnablePprof,
		Alive: a.liveness.alive, Now: o.Now,
	})
	if err != nil {
		return nil, err
	}
	a.addActors()
	return a, nil
}

func (a *App) addActors() {
	ctx, cancel := context.WithCancel(context.Background())
	a.group.Add(func() error { return a.ev.Run(ctx) }, func(error) { cancel() })
	srvCtx, srvCancel := context.WithCancel(context.Background())
	a.group.Add(func() error { return a.server.Run(srvCtx) }, func(error) { srvCancel() })
	nfCtx, nfCancel := context.WithCancel(context.Background())
	a.group.Add(func() error { return a.notifier.Run(nfCtx) }, func(error) { nfCancel() })
	if a.checker != nil {
		ckCtx, ckCancel := context.WithCancel(context.Background())
		a.group.Add(func() error { return a.checker.Run(ckCtx) }, func(error) { ckCancel() })
	}
	if a.lease != nil {
		lCtx, lCancel := context.WithCancel(context.Background())
		a.group.Add(func() error { return a.lease.Run(lCtx) }, func(error) { lCancel() })
		nCtx, nCancel := context.WithCancel(context.Background())
		a.group.Add(func() error { return a.pg.Listen(nCtx, a.runs.Wake, time.Second, nil) }, func(error) { nCancel() })
	}
	a.group.Add(func() error {
		<-a.stop
		return nil
	}, func(error) { a.Stop() })
	if len(a.opts.Watch) > 0 {
		if err := watchActor(&a.group, a.logger, a.opts.Watch, a.Reload); err != nil {
			a.logger.Warn("cannot watch definition files; reload with SIGHUP or POST /-/reload", zap.Error(err))
		}
	}
}

// Add adds an actor to the group (the demo's simulator and script, the
// signal handler of `serve`); call it before Run. Like every actor, it
// ends the service when execute returns.
func (a *App) Add(execute func() error, interrupt func(error)) {
	a.group.Add(execute, interrupt)
}

// Run runs every part until ctx ends, Stop is called or a part fails, and
// then stops them all and closes the store. It returns nil after an
// orderly stop.
func (a *App) Run(ctx context.Context) error {
	defer a.close()
	if ctx != nil {
		go func() {
			select {
			case <-ctx.Done():
				a.Stop()
			case <-a.stop:
			}
		}()
	}
	a.logger.Info("slogate started", zap.String("url", a.baseURL), zap.Duration("interval", a.opts.Config.Evaluation.Interval))
	err := a.group.Run()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Stop ends Run; it may be called more than once, and before Run.
func (a *App) Stop() { a.stopOnce.Do(func() { close(a.stop) }) }

func (a *App) close() {
	if a.listener != nil {
		_ = a.listener.Close()
	}
	if a.store != nil {
		_ = a.store.Close()
	}
	if a.pg != nil {
		_ = a.pg.Close()
	}
}

// leaseTTL is how long the supervision lease lasts without renewal: half
// an interval, renewed every sixth. After its holder dies, the runs wait
// at most the lease, one renewal period of the replica that takes over,
// and that replica's next cycle: 1⅔ intervals. Half a second at least, so
// that a busy database does not make it change hands for nothing.
func leaseTTL(interval time.Duration) time.Duration {
	return max(interval/2, 500*time.Millisecond)
}

// defaultReplica names this process in leases: the host name (a pod's
// name) and the process ID, so that two processes on one host differ.
func defaultReplica() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "slogate"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// BaseURL is where the service listens, as a URL (http or https).
func (a *App) BaseURL() string { return a.baseURL }

// Evaluator is the evaluation loop.
func (a *App) Evaluator() *evaluator.Evaluator { return a.ev }

// Runs is the gate and run supervisor.
func (a *App) Runs() *chaos.Manager { return a.runs }

// Reload re-reads the definitions; a set with errors, or one that defines
// nothing while reload.allow-empty is off (ErrNothingDefined), is rejected
// and the previous one stays in force.
func (a *App) Reload(ctx context.Context) error { return a.reloader.reload(ctx) }

// Alive is what /health answers: whether the evaluation loop shows signs
// of life, whatever Prometheus answers.
func (a *App) Alive() bool { return a.liveness.alive() }

func baseURL(l net.Listener, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		return scheme + "://" + l.Addr().String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// spread is the share of the interval over which the SLOs' own queries are
// spread (evaluator.Options.Spread).
const spread = 0.25

// staleAfter is how old the newest good data behind a verdict may be before
// the gate reads it as unknown: one interval to the next cycle, the delay
// the spread adds to an SLO's queries, and one query timeout for the
// answer. A silent Prometheus turns gates unknown after that long, whatever
// the cycle is waiting for; never later than the two and a half intervals
// of before (a short interval with a long timeout).
func staleAfter(interval, timeout time.Duration) time.Duration {
	return min(interval*2+interval/2, interval+time.Duration(float64(interval)*spread)+timeout)
}
