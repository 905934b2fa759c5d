package bench

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// blockSeries is one series written by writeBlocks: its labels and the
// value its next sample takes (fill sets it).
type blockSeries struct {
	lbls labels.Labels
	v    float64
	ref  storage.SeriesRef // valid in block gen only
	gen  int
}

// writeBlocks writes history into dir as TSDB blocks, directly with the
// tsdb package (the OpenMetrics text and promtool that testenv.Backfill uses
// take about an hour for a third of a billion samples). It calls fill for
// every step from first to last (Unix seconds, last included) in order,
// with add, which appends series s's current value at t. The blocks span
// blockSpan and are aligned the way Prometheus aligns them, so that it finds
// nothing to compact at start. It returns the samples and blocks written.
func writeBlocks(tb testing.TB, dir string, first, last, step int64, fill func(t int64, add func(s *blockSeries))) (samples, blocks int) {
	tb.Helper()
	spanMs := blockSpan.Milliseconds()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	for blockStart := first * 1000 / spanMs * spanMs; blockStart <= last*1000; blockStart += spanMs {
		blocks++
		w, err := tsdb.NewBlockWriter(logger, dir, spanMs)
		if err != nil {
			tb.Fatalf("bench: %v", err)
		}
		app := w.Appender(ctx)
		pending := 0
		var at int64
		add := func(s *blockSeries) {
			// Series references belong to one block writer's head.
			if s.gen != blocks {
				s.ref, s.gen = 0, blocks
			}
			ref, err := app.Append(s.ref, s.lbls, at*1000, s.v)
			if err != nil {
				tb.Fatalf("bench: append %s at %d: %v", s.lbls, at, err)
			}
			s.ref = ref
			samples++
			if pending++; pending >= 1<<20 {
				if err := app.Commit(); err != nil {
					tb.Fatalf("bench: %v", err)
				}
				app, pending = w.Appender(ctx), 0
			}
		}
		from, to := max(first, blockStart/1000), min(last, (blockStart+spanMs)/1000-1)
		from += (step - (from-first)%step) % step
		for at = from; at <= to; at += step {
			fill(at, add)
		}
		if err := app.Commit(); err != nil {
			tb.Fatalf("bench: %v", err)
		}
		if _, err := w.Flush(ctx); err != nil {
			tb.Fatalf("bench: writing the block at %s: %v", time.UnixMilli(blockStart).UTC(), err)
		}
		if err := w.Close(); err != nil {
			tb.Fatalf("bench: %v", err)
		}
	}
	return samples, blocks
}
