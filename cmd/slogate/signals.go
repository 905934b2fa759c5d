package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/slogate/slogate/app"
)

// signalActor stops the group on SIGTERM/SIGINT and reloads on SIGHUP.
func signalActor(a *app.App, logger *zap.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	a.Add(func() error {
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGHUP {
					if err := a.Reload(ctx); err != nil {
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
		signal.Stop(sigs)
	})
}

// shutdownTimeout bounds the whole shutdown.
const shutdownTimeout = 15 * time.Second
