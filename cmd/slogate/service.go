package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/slogate/slogate/api"
	"github.com/slogate/slogate/config"
	"github.com/slogate/slogate/evaluator"
	"github.com/slogate/slogate/evaluator/alerts"
	"github.com/slogate/slogate/evaluator/chaos"
	"github.com/slogate/slogate/evaluator/notifier"
	"github.com/slogate/slogate/evaluator/store"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/web"
)

// serviceOptions is what `serve` and `demo` have in common: the demo brings
// its own querier, definitions and extra actors.
type serviceOptions struct {
	cfg      *config.Config
	logger   *zap.Logger
	registry *prometheus.Registry
	querier  evaluator.Querier
	load     func() (*slo.Set, slo.Diagnostics)
	// watch lists files and directories whose changes trigger a reload.
	watch []string
	// listener, when set, is used instead of web.listen-address (tests).
	listener net.Listener
	// actors are added to the run group (the demo's simulator and script).
	actors []func(g *run.Group, svc *service)
	// onTransition is called after every stored run state change.
	onTransition func(r *store.Run, from api.RunState)
}

// service is the running whole, handed to extra actors.
type service struct {
	evaluator *evaluator.Evaluator
	runs      *chaos.Manager
	server    *web.Server
	baseURL   string
	reload    func(context.Context) error
}

func definitionsLoader(paths []string) func() (*slo.Set, slo.Diagnostics) {
	return func() (*slo.Set, slo.Diagnostics) { return slo.Load(paths...) }
}

func runService(ctx context.Context, o serviceOptions) error {
	cfg, logger := o.cfg, o.logger
	if ctx == nil {
		ctx = context.Background()
	}
	reloadOK := promauto.With(o.registry).NewGauge(prometheus.GaugeOpts{
		Name: "slogate_config_last_reload_successful",
		Help: "1 if the last reload of the definitions succeeded, 0 if it was rejected (the previous definitions stay in force).",
	})
	reloadTime := promauto.With(o.registry).NewGauge(prometheus.GaugeOpts{
		Name: "slogate_config_last_reload_success_timestamp_seconds",
		Help: "Time of the last successful reload of the definitions.",
	})

	set, diags := o.load()
	for _, d := range diags.Warnings() {
		logger.Warn("definition warning", zap.String("problem", d.Error()))
	}
	if diags.HasErrors() {
		return exitWith(1, fmt.Errorf("definitions rejected:\n%s", diags.Errors().String()))
	}

	st, err := store.Open(cfg.Storage.Path, store.Options{})
	if err != nil {
		return exitWith(1, err) // it names storage.path and the directory
	}
	defer st.Close()

	ev, err := evaluator.New(evaluator.Options{
		Querier: o.querier, Logger: logger, Registerer: o.registry,
		Interval: cfg.Evaluation.Interval, MaxConcurrency: cfg.Evaluation.MaxConcurrency,
		MinRange: cfg.Evaluation.MinRange, Spread: 0.25,
		ShardIndex: cfg.Shard.Index, ShardCount: cfg.Shard.Count,
		Snapshots: st,
	})
	if err != nil {
		return exitWith(1, err)
	}
	if err := ev.SetDefinitions(set); err != nil {
		return exitWith(1, fmt.Errorf("definitions: %w", err))
	}
	reloadOK.Set(1)
	reloadTime.SetToCurrentTime()
	logger.Info("definitions loaded", zap.Int("slos", len(set.SLOs)), zap.Int("hypotheses", len(set.Hypotheses)), zap.Int("experiments", len(set.Experiments)))

	listener := o.listener
	if listener == nil {
		if listener, err = net.Listen("tcp", cfg.Web.ListenAddress); err != nil {
			return exitWith(1, fmt.Errorf("web.listen-address %s: %w", cfg.Web.ListenAddress, err))
		}
	}
	defer listener.Close()
	// A web config file may configure basic auth only: https only with a
	// certificate.
	servesTLS, err := web.ServesTLS(cfg.Web.ConfigFile)
	if err != nil {
		return exitWith(1, err)
	}
	externalURL := cfg.Web.ExternalURL
	if externalURL == "" {
		externalURL = baseURL(listener, servesTLS)
	}
	nf, err := notifier.New(notifier.Options{
		URLs:    cfg.Alertmanager.URLs, // none: alerts are only logged
		Timeout: cfg.Alertmanager.Timeout, ResendDelay: cfg.Alertmanager.ResendDelay,
		QueueCapacity: cfg.Alertmanager.QueueCapacity, EvaluationInterval: cfg.Evaluation.Interval,
		Logger: logger, Registerer: o.registry,
	})
	if err != nil {
		return exitWith(1, fmt.Errorf("alertmanager: %w", err))
	}
	alertOpts := alerts.Options{ExternalURL: externalURL, DashboardURL: cfg.Web.DashboardURL, StaleAfter: 2 * cfg.Evaluation.Interval}
	runs, err := chaos.New(chaos.Options{
		Store: st, Snapshots: func() chaos.Statuses { return ev.Snapshot() }, Logger: logger, Registerer: o.registry,
		OnTransition: func(r *store.Run, from api.RunState) {
			if r.State == api.StateAborted {
				nf.Send(alerts.RunAborted(r, ev.Definitions().Experiment(r.Experiment), alertOpts))
			}
			if o.onTransition != nil {
				o.onTransition(r, from)
			}
		},
	})
	if err != nil {
		return exitWith(1, err)
	}
	// Runs first, so that an abort of this cycle is in the alerts built next.
	ev.OnCycle(func(ctx context.Context, snap *evaluator.Snapshot) { runs.OnCycle(ctx, snap) })
	ev.OnCycle(func(_ context.Context, snap *evaluator.Snapshot) { nf.Update(alerts.Build(snap, alertOpts)) })

	var reloadMu sync.Mutex
	reload := func(context.Context) error {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		set, diags := o.load()
		if diags.HasErrors() {
			reloadOK.Set(0)
			logger.Error("reload rejected; keeping the previous definitions", zap.String("problems", diags.Errors().String()))
			return diags.Err()
		}
		if err := ev.SetDefinitions(set); err != nil {
			reloadOK.Set(0)
			logger.Error("reload rejected; keeping the previous definitions", zap.Error(err))
			return err
		}
		reloadOK.Set(1)
		reloadTime.SetToCurrentTime()
		logger.Info("definitions reloaded", zap.Int("slos", len(set.SLOs)), zap.Int("hypotheses", len(set.Hypotheses)), zap.Int("experiments", len(set.Experiments)))
		return nil
	}

	token, err := cfg.Web.APIToken()
	if err != nil {
		return exitWith(1, fmt.Errorf("web.api-token-file: %w", err))
	}
	srv, err := web.New(web.Options{
		Evaluator: ev, Runs: runs, Gatherer: o.registry, Logger: logger, Reload: reload,
		Listener: listener, WebConfigFile: cfg.Web.ConfigFile, APIToken: token,
		MaxBodyBytes: cfg.Web.MaxBodyBytes, ExternalURL: cfg.Web.ExternalURL,
	})
	if err != nil {
		return exitWith(1, err)
	}
	svc := &service{evaluator: ev, runs: runs, server: srv, baseURL: baseURL(listener, servesTLS), reload: reload}

	var g run.Group
	{
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return ev.Run(ctx) }, func(error) { cancel() })
	}
	{
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return srv.Run(ctx) }, func(error) { cancel() })
	}
	{
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return nf.Run(ctx) }, func(error) { cancel() })
	}
	{
		// The caller's context ends the service too (tests, the demo).
		stop := make(chan struct{})
		g.Add(func() error {
			select {
			case <-ctx.Done():
			case <-stop:
			}
			return nil
		}, func(error) { close(stop) })
	}
	signalActor(&g, logger, reload)
	if len(o.watch) > 0 {
		if err := watchActor(&g, logger, o.watch, reload); err != nil {
			logger.Warn("cannot watch definition files; reload with SIGHUP or POST /-/reload", zap.Error(err))
		}
	}
	for _, add := range o.actors {
		add(&g, svc)
	}
	logger.Info("slogate started", zap.String("url", svc.baseURL), zap.Duration("interval", cfg.Evaluation.Interval))

	done := make(chan error, 1)
	go func() { done <- g.Run() }()
	err = <-done
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

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

// signalActor stops the group on SIGTERM/SIGINT and reloads on SIGHUP.
func signalActor(g *run.Group, logger *zap.Logger, reload func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	g.Add(func() error {
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGHUP {
					if err := reload(ctx); err != nil {
						logger.Error("reload on SIGHUP rejected", zap.Error(err))
					}
					continue
				}
				logger.Info("shutting down", zap.String("signal", s.String()))
				// A second signal, or a shutdown that hangs, ends the
				// process anyway: every shutdown step has a time limit.
				go func() {
					select {
					case <-sigs:
					case <-time.After(shutdownTimeout):
					}
					logger.Error("shutdown took too long; exiting")
					os.Exit(1)
				}()
				return nil
			case <-ctx.Done():
				return nil
			}
		}
	}, func(error) {
		cancel()
	})
}

// shutdownTimeout bounds the whole shutdown.
const shutdownTimeout = 15 * time.Second

// watchActor reloads when a definition file or directory changes. Editors
// replace files by renaming, so directories are watched, and events are
// debounced so that a burst of writes reloads once.
func watchActor(g *run.Group, logger *zap.Logger, paths []string, reload func(context.Context) error) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	dirs := map[string]bool{}
	for _, p := range paths {
		base := p
		if strings.ContainsAny(p, "*?[") {
			base = filepath.Dir(p)
			for strings.ContainsAny(base, "*?[") {
				base = filepath.Dir(base)
			}
		}
		fi, err := os.Stat(base)
		if err != nil {
			continue
		}
		if !fi.IsDir() {
			dirs[filepath.Dir(base)] = true
			continue
		}
		_ = filepath.WalkDir(base, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs[path] = true
			}
			return nil
		})
	}
	for d := range dirs {
		if err := w.Add(d); err != nil {
			w.Close()
			return fmt.Errorf("watching %s: %w", d, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error {
		var timer <-chan time.Time
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return nil
				}
				if !strings.HasSuffix(ev.Name, ".yaml") && !strings.HasSuffix(ev.Name, ".yml") {
					continue
				}
				timer = time.After(500 * time.Millisecond)
			case err, ok := <-w.Errors:
				if !ok {
					return nil
				}
				logger.Warn("watching definition files", zap.Error(err))
			case <-timer:
				timer = nil
				logger.Info("definition files changed; reloading")
				_ = reload(ctx)
			case <-ctx.Done():
				return nil
			}
		}
	}, func(error) {
		cancel()
		w.Close()
	})
	return nil
}
