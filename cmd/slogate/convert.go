package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slogate/slogate/slo"
)

func newConvertCmd() *cobra.Command {
	var output string
	var lf loadFlags
	cmd := &cobra.Command{
		Use:   "convert PATH...",
		Short: "Rewrite Sloth and OpenSLO definitions in slogate's native format",
		Long: `convert loads definition files (files, directories searched recursively for
*.yaml and *.yml, or globs) as check does — Sloth prometheus/v1 specs, OpenSLO
v1 documents or native ones — and writes them as native slogate.dev/v1
documents, which load into exactly the same definitions.

With --output - (the default) everything goes to stdout. With --output DIR,
each input file becomes DIR/<its name>, holding the definitions it declared
(an OpenSLO SLI is written into the SLOs that use it, so a file of SLIs
only gets no output); DIR is created if needed, and existing files are
overwritten.

The files are checked together first, since OpenSLO SLOs may refer to SLIs in
other files: on any error, the problems are printed as check prints them,
nothing is written and the exit code is 1. Warnings are printed to stderr and
do not stop the conversion.`,
		Example: `  slogate convert sloth/ openslo/ > slogate-definitions.yaml
  slogate convert 'slos/*.yaml' --output converted/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				return errors.New("--output: give a directory, or - for stdout")
			}
			set, diags := lf.load(args)
			if len(diags) > 0 {
				// Problems go to stderr so that stdout stays valid YAML.
				if _, err := io.WriteString(cmd.ErrOrStderr(), diags.String()); err != nil {
					return fmt.Errorf("writing the problems: %w", err)
				}
			}
			if diags.HasErrors() {
				fmt.Fprintln(cmd.ErrOrStderr(), slo.Summarize(set, diags))
				return exitWith(1, nil)
			}
			if len(set.SLOs)+len(set.Hypotheses)+len(set.Experiments)+len(set.AlertWindows) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "nothing to convert: the input holds no SLO, hypothesis or experiment definitions")
				return nil
			}
			if output == "-" {
				out, err := slo.MarshalNative(set)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(out)
				return err
			}
			return convertToDir(cmd.ErrOrStderr(), set, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "-", "directory to write one file per input file into, or - for stdout")
	lf.register(cmd.Flags())
	return cmd
}

// convertToDir writes the definitions of each input file into a file of the
// same name in dir. Two inputs of the same name in different directories
// would overwrite each other, so that is refused before anything is written.
func convertToDir(stderr io.Writer, set *slo.Set, dir string) error {
	byFile := map[string]*slo.Set{}
	get := func(file string) *slo.Set {
		s, ok := byFile[file]
		if !ok {
			s = &slo.Set{}
			byFile[file] = s
		}
		return s
	}
	for _, o := range set.SLOs {
		s := get(o.Pos.File)
		s.SLOs = append(s.SLOs, o)
	}
	for _, h := range set.Hypotheses {
		s := get(h.Pos.File)
		s.Hypotheses = append(s.Hypotheses, h)
	}
	for _, e := range set.Experiments {
		s := get(e.Pos.File)
		s.Experiments = append(s.Experiments, e)
	}
	for _, aw := range set.AlertWindows {
		s := get(aw.Pos.File)
		s.AlertWindows = append(s.AlertWindows, aw)
	}

	files := make([]string, 0, len(byFile))
	for f := range byFile {
		files = append(files, f)
	}
	sort.Strings(files)
	targets := map[string]string{} // output name → input file
	for _, f := range files {
		name := filepath.Base(f)
		if prev, dup := targets[name]; dup {
			return exitWith(1, fmt.Errorf("%s and %s would both be written to %s: convert them separately",
				prev, f, filepath.Join(dir, name)))
		}
		targets[name] = f
	}

	// Everything is marshalled before the first file is written, so that a
	// failure leaves no half-converted directory behind.
	contents := make(map[string][]byte, len(files))
	for _, f := range files {
		out, err := slo.MarshalNative(byFile[f])
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		header := "# Converted by slogate convert from " + filepath.ToSlash(f) + "\n"
		contents[f] = append([]byte(header), out...)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	for _, f := range files {
		path := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(path, contents[f], 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		fmt.Fprintf(stderr, "%s -> %s (%s)\n", f, path, describeSet(byFile[f]))
	}
	return nil
}

// describeSet says what a converted file holds, e.g. "2 SLOs, 1 hypothesis".
func describeSet(s *slo.Set) string {
	var parts []string
	add := func(n int, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
	}
	add(len(s.SLOs), "SLO", "SLOs")
	add(len(s.Hypotheses), "hypothesis", "hypotheses")
	add(len(s.Experiments), "experiment", "experiments")
	return strings.Join(parts, ", ")
}
