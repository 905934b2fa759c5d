package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/slogate/slogate/app"
	"github.com/slogate/slogate/config"
	"github.com/slogate/slogate/evaluator/promapi"
	"github.com/slogate/slogate/slo"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the service: evaluate definitions continuously, serve metrics, the API and the UI",
		Long: `serve evaluates the definitions against Prometheus every evaluation.interval,
exports the verdicts as metrics, sends alerts to Alertmanager, and serves the
gate and run API and the web UI on web.listen-address.

Configuration comes from --config (YAML), SLOGATE_* environment variables and
flags, flags winning. SIGHUP, POST /-/reload and a change of a definitions file
reload the definitions; a set with errors is rejected and the old one stays, and
so is a set that defines nothing unless reload.allow-empty is set. At start an
empty set is accepted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(config.LoadOptions{Flags: cmd.Flags()})
			if err != nil {
				return exitWith(1, fmt.Errorf("configuration:\n%w", err))
			}
			logger, err := newLogger(cfg.Log)
			if err != nil {
				return exitWith(1, err)
			}
			defer func() { _ = logger.Sync() }()
			reg := newRegistry()
			q, err := promapi.New(promapi.Options{
				URL: cfg.Prometheus.URL, Timeout: cfg.Prometheus.Timeout, Headers: cfg.Prometheus.Headers,
				MaxResponseBytes: cfg.Prometheus.MaxResponseBytes,
				HTTP:             cfg.Prometheus.HTTP, Logger: logger.With(zap.String("component", "prometheus")),
			})
			if err != nil {
				return exitWith(1, err)
			}
			a, err := app.New(app.Options{
				Config: cfg, Logger: logger, Registry: reg, Querier: q,
				Load: func() (*slo.Set, slo.Diagnostics) {
					return slo.LoadWith(slo.LoadOptions{SlothPeriod: cfg.Sloth.DefaultPeriod}, cfg.Definitions...)
				},
				Watch: cfg.Definitions,
			})
			if err != nil {
				return exitWith(1, err)
			}
			signalActor(a, logger)
			return a.Run(cmd.Context())
		},
	}
	config.RegisterFlags(cmd.Flags())
	return cmd
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("slogate"),
	)
	return reg
}

func newLogger(c config.Log) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level %q: %w", c.Level, err)
	}
	var zc zap.Config
	if c.Format == "json" {
		zc = zap.NewProductionConfig()
	} else {
		zc = zap.NewDevelopmentConfig()
		zc.Development = false
		zc.DisableStacktrace = true
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
	}
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.EncoderConfig.TimeKey = "ts"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	zc.OutputPaths = []string{"stderr"}
	return zc.Build()
}
