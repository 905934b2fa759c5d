package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/oklog/run"
	"go.uber.org/zap"
)

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
