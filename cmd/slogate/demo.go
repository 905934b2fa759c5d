package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/prometheus/tsdb"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/slogate/slogate/app"
	"github.com/slogate/slogate/client"
	"github.com/slogate/slogate/config"
	"github.com/slogate/slogate/evaluator/embedded"
	"github.com/slogate/slogate/examples"
	"github.com/slogate/slogate/internal/demo"
	"github.com/slogate/slogate/slo"
)

func newDemoCmd() *cobra.Command {
	cfg := config.Default()
	var storagePath string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run slogate on an embedded Prometheus with a simulated shop and scripted chaos",
		Long: `demo runs the whole of slogate with nothing else installed: Prometheus's own
TSDB and PromQL engine embedded, a simulated shop (checkout, catalog, payments)
with 30 days of history, the definitions of examples/demo/shop.yaml, and a
scripted chaos experiment that goes through the real run API every few
minutes: one round the system absorbs it and the run passes, the next it
breaks checkout and slogate aborts the run.

Open the printed URL for the UI; /metrics, /api/v1/... and the gate work as
with slogate serve. Alerts are logged, and sent to --alertmanager.urls if set.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(cfg.Log)
			if err != nil {
				return exitWith(1, err)
			}
			defer func() { _ = logger.Sync() }()
			if storagePath == "" {
				dir, err := os.MkdirTemp("", "slogate-demo-")
				if err != nil {
					return exitWith(1, err)
				}
				defer os.RemoveAll(dir)
				storagePath = dir
			}
			cfg.Storage.Path = storagePath
			cfg.Definitions = []string{"examples/demo"}
			if err := cfg.Validate(); err != nil {
				return exitWith(1, fmt.Errorf("configuration:\n%w", err))
			}
			return runDemo(cmd.Context(), cfg, logger)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Web.ListenAddress, "web.listen-address", ":8080", "Address of the UI, API and /metrics.")
	f.StringSliceVar(&cfg.Alertmanager.URLs, "alertmanager.urls", nil, "Alertmanager base URLs to send the demo's alerts to (they are logged anyway).")
	f.StringVar(&storagePath, "storage.path", "", "Where the demo keeps its TSDB and runs (default: a temporary directory, removed at exit).")
	f.DurationVar(&cfg.Evaluation.Interval, "evaluation.interval", 5*time.Second, "How often the demo evaluates.")
	f.StringVar(&cfg.Log.Level, "log.level", "info", "debug, info, warn or error.")
	f.StringVar(&cfg.Log.Format, "log.format", "console", "console or json.")
	return cmd
}

// demoStep is how often the simulator samples the shop.
const demoStep = 5 * time.Second

func runDemo(ctx context.Context, cfg *config.Config, logger *zap.Logger) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg.Evaluation.MinRange = 4 * demoStep
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = int64(35 * 24 * time.Hour / time.Millisecond)
	db, err := tsdb.Open(filepath.Join(cfg.Storage.Path, "tsdb"), nil, nil, opts, nil)
	if err != nil {
		return exitWith(1, fmt.Errorf("demo: opening the embedded TSDB: %w", err))
	}
	defer db.Close()

	sim := demo.NewSimulator(db, demoStep)
	now := time.Now()
	start := time.Now()
	logger.Info("writing 30 days of simulated history into the embedded TSDB")
	// Minute resolution for the month, then the live resolution for the
	// hours that the short windows read (rate() over evaluation.min-range
	// needs samples as dense as the live ones).
	recent := now.Add(-9 * time.Hour).Truncate(time.Minute)
	if err := sim.Backfill(ctx, now.Add(-30*24*time.Hour-2*time.Hour), recent, time.Minute); err != nil {
		return exitWith(1, err)
	}
	if err := sim.Backfill(ctx, recent, now, demoStep); err != nil {
		return exitWith(1, err)
	}
	logger.Info("history written", zap.Duration("took", time.Since(start)))

	q, err := embedded.New(embedded.Options{Storage: db, Timeout: 30 * time.Second})
	if err != nil {
		return exitWith(1, err)
	}
	a, err := app.New(app.Options{
		Config: cfg, Logger: logger, Registry: newRegistry(), Querier: q,
		Load: func() (*slo.Set, slo.Diagnostics) { return slo.LoadFS(examples.Demo, "demo") },
	})
	if err != nil {
		return exitWith(1, err)
	}
	signalActor(a, logger)
	simCtx, simCancel := context.WithCancel(ctx)
	a.Add(func() error { return sim.Run(simCtx) }, func(error) { simCancel() })
	c, err := client.New(client.Options{Server: a.BaseURL()})
	if err != nil {
		logger.Error("demo: no API client; the chaos script does not run", zap.Error(err))
	} else {
		script := &demo.Script{Client: c, Sim: sim, Logger: logger, Experiment: "checkout-pod-kill", Pause: 45 * time.Second, ChaosFor: 30 * time.Second}
		scriptCtx, scriptCancel := context.WithCancel(ctx)
		a.Add(func() error { return script.Run(scriptCtx) }, func(error) { scriptCancel() })
		fmt.Fprintf(os.Stderr, "\nslogate demo is running:\n  UI        %s/\n  gate      %s/api/v1/experiments/checkout-pod-kill/gate\n  SLOs      %s/api/v1/slos\n  metrics   %s/metrics\nA scripted chaos run starts in about 10 seconds. Ctrl-C stops the demo.\n\n",
			a.BaseURL(), a.BaseURL(), a.BaseURL(), a.BaseURL())
	}
	return a.Run(ctx)
}
