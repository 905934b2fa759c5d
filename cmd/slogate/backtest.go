package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/slogate/slogate/backtest"
	"github.com/slogate/slogate/evaluator/promapi"
	"github.com/slogate/slogate/slo"
)

// envPrometheusURL is read when --prometheus.url is not given, the same
// variable slogate serve reads.
const envPrometheusURL = "SLOGATE_PROMETHEUS_URL"

func newBacktestCmd() *cobra.Command {
	var (
		from, to, output, promURL string
		step, timeout             time.Duration
	)
	var lf loadFlags
	cmd := &cobra.Command{
		Use:   "backtest PATH... --from TIME [--to TIME]",
		Short: "Replay definitions over history: alerts that would have fired, verdict timelines",
		Long: `backtest loads definitions like slogate check and evaluates them over a stretch
of history with range queries against Prometheus, one point per --step:

  - for each SLO, the burn rates of its alert windows and the budget remaining
    over its window; when each alert severity (page, ticket) would have fired
    and resolved, and the budget left at the end;
  - for each hypothesis, every probe judged with its tolerance, series policy
    and onNoData (no data and NaN) at every step, debounced with failAfter and
    passAfter; printed as a timeline of verdict changes. A relative tolerance
    trails: the baseline of each step is the window before it (less its
    offset), and a mann-whitney test takes the samples of the compare window
    before it;
  - where a low-traffic guard is set (alerting.minEvents, a probe's
    minEvents), everything it guards is replayed a second time without it:
    the report says how many alerts (pages) and verdict changes the guard
    removed, and when. A window's events are summed from the SLO's events of
    each step, one more range query per guarded SLO (none for calendar and
    time-slice SLOs, which have them already).

Times are "now", a duration before now ("-7d", "-36h", "now-90m"), an RFC 3339
time ("2026-11-20T14:00:00Z") or a date ("2026-11-20", midnight UTC). --from
is rounded down to a multiple of --step. Alert times have the resolution of
the step. A failing query ends the backtest with an error: an error now says
nothing about the past, so onError is not applied.

Each series asks at most 10,000 points per range query (Prometheus allows
11,000); longer ranges are split. Windows as long as the SLO's (30d) make
Prometheus read a month of samples per point: a long range at a fine step
takes a while, which a progress bar on stderr shows when it is a terminal
(plain log lines otherwise).`,
		Example: `  slogate backtest examples/definitions --from -7d
  slogate backtest slos/ --from 2026-11-01 --to 2026-11-15 --step 1m --output json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output: unknown format %q; use text or json", output)
			}
			now := time.Now()
			start, err := backtest.ParseTime(from, now)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			end, err := backtest.ParseTime(to, now)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			if step <= 0 {
				return fmt.Errorf("--step %s: must be positive", step)
			}
			if !cmd.Flags().Changed("prometheus.url") {
				if v := os.Getenv(envPrometheusURL); v != "" {
					promURL = v
				}
			}
			q, err := promapi.New(promapi.Options{URL: promURL, Timeout: timeout})
			if err != nil {
				return err
			}

			stderr := cmd.ErrOrStderr()
			set, diags := lf.load(args)
			if _, err := io.WriteString(stderr, diags.String()); err != nil {
				return fmt.Errorf("writing diagnostics: %w", err)
			}
			if diags.HasErrors() {
				fmt.Fprintln(stderr, slo.Summarize(set, diags))
				return exitWith(1, nil) // the diagnostics said it all
			}

			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			progress, finish := newProgress(stderr)
			rep, err := backtest.Run(ctx, set, backtest.Options{Querier: q, From: start, To: end, Step: step, Progress: progress})
			finish()
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("backtest interrupted: %w", context.Cause(ctx))
				}
				return fmt.Errorf("backtest: %w", err)
			}
			if output == "json" {
				return backtest.WriteJSON(cmd.OutOrStdout(), rep)
			}
			return backtest.WriteText(cmd.OutOrStdout(), rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "start of the backtest (required): now, -7d, RFC 3339 or a date")
	f.StringVar(&to, "to", "now", "end of the backtest: now, -1d, RFC 3339 or a date")
	f.DurationVar(&step, "step", backtest.DefaultStep, "resolution: one evaluation per step")
	f.StringVar(&promURL, "prometheus.url", "http://localhost:9090", "Prometheus (or compatible) API to query (env "+envPrometheusURL+")")
	f.DurationVar(&timeout, "prometheus.timeout", 2*time.Minute, "time limit of each range query")
	f.StringVarP(&output, "output", "o", "text", "report format: text or json")
	_ = cmd.MarkFlagRequired("from")
	lf.register(cmd.Flags())
	return cmd
}

// newProgress reports the range queries as a progress bar when w is a
// terminal, and as one log line per query otherwise, so that CI logs and
// redirected output stay readable. finish ends the bar.
func newProgress(w io.Writer) (progress func(done, total int, what string), finish func()) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func(done, total int, what string) {
			fmt.Fprintf(w, "backtest: %d/%d range queries done (%s)\n", done, total, what)
		}, func() {}
	}
	var bar *progressbar.ProgressBar
	progress = func(done, total int, what string) {
		if bar == nil {
			bar = progressbar.NewOptions(total,
				progressbar.OptionSetWriter(w),
				progressbar.OptionSetDescription("range queries"),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionSetElapsedTime(true),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
			)
		}
		bar.Describe(what)
		_ = bar.Set(done)
	}
	return progress, func() {
		if bar != nil {
			_ = bar.Finish()
		}
	}
}
