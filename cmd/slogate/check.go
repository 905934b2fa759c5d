package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/slogate/slogate/slo"
)

func newCheckCmd() *cobra.Command {
	var output string
	var lf loadFlags
	cmd := &cobra.Command{
		Use:   "check PATH...",
		Short: "Validate SLO, hypothesis and experiment definitions",
		Long: `check loads definition files (files, directories searched recursively for
*.yaml and *.yml, or globs) in slogate's own format, as Sloth prometheus/v1
specs, or as OpenSLO v1 documents, and validates them together: fields and
types, ranges, PromQL, unique names and references between definitions.

Every problem is printed as file:line:col: error|warning: message, followed
by a summary. The exit code is 1 when there is any error; warnings alone
exit 0.`,
		Example: `  slogate check examples/definitions
  slogate check 'slos/*.yaml' hypotheses.yaml --output json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output: unknown format %q; use text or json", output)
			}
			set, diags := lf.load(args)
			summary := slo.Summarize(set, diags)
			out := cmd.OutOrStdout()
			var err error
			if output == "json" {
				err = writeCheckJSON(out, set, summary, diags)
			} else {
				err = writeCheckText(out, summary, diags)
			}
			if err != nil {
				return fmt.Errorf("writing the report: %w", err)
			}
			if diags.HasErrors() {
				return exitWith(1, nil) // the report said it all
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "report format: text or json")
	lf.register(cmd.Flags())
	return cmd
}

func writeCheckText(w io.Writer, summary slo.Summary, diags slo.Diagnostics) error {
	if _, err := io.WriteString(w, diags.String()); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, summary)
	return err
}

// checkProblem is one diagnostic in the JSON report; line and col are 0
// for problems with a whole path (a file that cannot be read).
type checkProblem struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Col      int    `json:"col"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// checkDefinition is one definition in the JSON report, with the format it
// was read from (a Sloth SLO also with its name in the Sloth spec).
type checkDefinition struct {
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Format     string `json:"format"`
	SourceName string `json:"sourceName,omitempty"`
	File       string `json:"file"`
	Line       int    `json:"line"`
	Col        int    `json:"col"`
}

func writeCheckJSON(w io.Writer, set *slo.Set, summary slo.Summary, diags slo.Diagnostics) error {
	report := struct {
		Summary     slo.Summary       `json:"summary"`
		Definitions []checkDefinition `json:"definitions"`
		Problems    []checkProblem    `json:"problems"`
	}{Summary: summary, Definitions: []checkDefinition{}, Problems: make([]checkProblem, 0, len(diags))}
	def := func(kind, name string, format slo.Format, sourceName string, pos slo.Pos) {
		report.Definitions = append(report.Definitions, checkDefinition{
			Kind: kind, Name: name, Format: string(format), SourceName: sourceName, File: pos.File, Line: pos.Line, Col: pos.Col,
		})
	}
	if set != nil {
		for _, o := range set.SLOs {
			def(slo.KindSLO, o.Name, o.Source.Format, o.Source.Name, o.Pos)
		}
		for _, h := range set.Hypotheses {
			def(slo.KindHypothesis, h.Name, slo.FormatNative, "", h.Pos)
		}
		for _, e := range set.Experiments {
			def(slo.KindExperiment, e.Name, slo.FormatNative, "", e.Pos)
		}
	}
	for _, d := range diags {
		report.Problems = append(report.Problems, checkProblem{
			File: d.Pos.File, Line: d.Pos.Line, Col: d.Pos.Col,
			Severity: string(d.Severity), Message: d.Message,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}
