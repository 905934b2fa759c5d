package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/slogate/slogate/rules"
	"github.com/slogate/slogate/slo"
)

func newRulesCmd() *cobra.Command {
	var style, output string
	var lf loadFlags
	cmd := &cobra.Command{
		Use:   "rules PATH...",
		Short: "Print Prometheus recording and alerting rules equivalent to the SLOs",
		Long: `rules loads definitions like slogate check and prints a Prometheus rule file
that records each SLO's error ratios and budget and fires its multi-window
multi-burn-rate alerts, for Prometheus to evaluate them itself. Hypotheses
and experiments have no rule equivalent and are ignored.

--style picks the layout:

  windows  (default) per SLO a recording group slogate-<slo> and an alerting
           group slogate-<slo>:alerts. Recorded series carry the labels slo,
           service and the SLO's labels:

             slo:sli_error:ratio_rate<window>   error ratio over 5m, 30m, 1h,
                                                2h, 6h, 1d, 3d and the window
             slo:objective:ratio                objective as a ratio (0.999)
             slo:error_budget:ratio             1 - objective
             slo:error_budget_remaining:ratio   1 - window ratio / budget

           Each window comes straight from the indicator queries, with
           slogate's arithmetic (the numbers slogate serve computes); exact,
           but Prometheus reads the whole window (a month of samples for a
           30d SLO) at every evaluation.
  buckets  the same series as windows, computed from
           slo:sli_events:increase5m{type="bad"|"total"}, the events of the
           last 5 minutes, recorded by a group slogate-<slo>:buckets that runs
           every 5m; every window is a sum_over_time of those buckets, in
           groups that run every 30s. Cheap whatever the traffic, 5-minute
           resolution, and a window is only complete once the buckets cover
           it (30 days after loading for a 30d SLO, unless backfilled with
           promtool tsdb create-blocks-from rules).
  sloth    what Sloth generates for the same SLOs, for Sloth's dashboards and
           the alert routes of teams coming from Sloth: the groups
           sloth-slo-sli-recordings-<id>, sloth-slo-meta-recordings-<id> and
           sloth-slo-alerts-<id>, the labels sloth_id (<service>-<name>),
           sloth_service, sloth_slo, sloth_window and sloth_severity, Sloth's
           metadata series (slo:time_period:days, slo:current_burn_rate:ratio,
           slo:period_burn_rate:ratio, slo:period_error_budget_remaining:ratio,
           sloth_slo_info) and its expressions: the queries as written, the
           SLO window's ratio averaged from the 5m ratios.

The windows and sloth groups run at the global evaluation_interval unless
the SLO sets rule intervals (Sloth's rule_intervals plugin,
spec.rules.intervals): the sloth style applies them to its three groups, the
windows style its sliError interval to the recording group and its alert
interval to the alerting group; the bucket style keeps its own. Burn-rate
windows and factors are the SLO's: Sloth AlertWindows of its window, or the
SRE workbook's.

Low-traffic guards (alerting.minEvents, or alerting.page/ticket.minEvents)
hold in every style: each burn-rate condition of a guarded severity is ANDed
with slo:sli_total:increase<long window> >= minEvents, the SLO's total events
over the tier's long window (the total query, or the histogram's _count),
recorded with the ratios for the guarded long windows only. slogate serve
also keeps a firing alert firing while its window has too few events; a
Prometheus rule cannot hold a state, so there the alert resolves instead.
A raw indicator (an error ratio of time) has no events to count: its guard
is refused.

Diagnostics of the definitions go to stderr; with errors nothing is written
and the exit code is 1. The output passes promtool check rules.`,
		Example: `  slogate rules examples/definitions > slogate.rules.yml
  slogate rules slos/ --style buckets --output /etc/prometheus/rules/slogate.yml
  slogate rules sloth-specs/ --style sloth > sloth.rules.yml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st := rules.Style(style)
			if !slices.Contains(rules.Styles, st) {
				return fmt.Errorf("--style: unknown style %q; use %s", style, rules.StyleNames())
			}
			set, diags := lf.load(args)
			stderr := cmd.ErrOrStderr()
			if _, err := io.WriteString(stderr, diags.String()); err != nil {
				return fmt.Errorf("writing diagnostics: %w", err)
			}
			if diags.HasErrors() {
				fmt.Fprintln(stderr, slo.Summarize(set, diags))
				return exitWith(1, nil) // the diagnostics said it all
			}
			if len(set.SLOs) == 0 {
				fmt.Fprintln(stderr, "slogate: warning: the definitions hold no SLO; the rule file has no groups")
			}
			out, err := rules.Render(set, rules.Options{Style: st})
			if err != nil {
				return fmt.Errorf("generating rules: %w", err)
			}
			if output == "" || output == "-" {
				_, err := cmd.OutOrStdout().Write(out)
				return err
			}
			return writeFileAtomic(output, out)
		},
	}
	cmd.Flags().StringVar(&style, "style", string(rules.StyleWindows), "layout of the rules: "+rules.StyleNames())
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the rules to this file instead of stdout (replaced atomically)")
	lf.register(cmd.Flags())
	return cmd
}

// writeFileAtomic replaces path with data through a temporary file in the
// same directory, so that a Prometheus reloading meanwhile never reads half
// a rule file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("--output %s: %w", path, err)
	}
	return nil
}
