package main

import (
	"errors"
	"fmt"

	"github.com/prometheus/common/version"
	"github.com/spf13/cobra"
)

// exitError carries a process exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// exitWith makes a command end the process with code; a nil err prints nothing.
func exitWith(code int, err error) error { return &exitError{code: code, err: err} }

func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "slogate",
		Short: "SLO and steady-state verdicts from Prometheus, and a gate for chaos runs",
		Long: `slogate reads SLO, steady-state hypothesis and chaos-experiment definitions,
queries Prometheus continuously, and turns the measurements into verdicts:
exported metrics, Alertmanager alerts, and a gate (HTTP API and CLI) that chaos
runs and deployment pipelines ask before, during and after an experiment.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServeCmd(), newDemoCmd(),
		newCheckCmd(), newConvertCmd(), newRulesCmd(), newBacktestCmd(),
		newGateCmd(), newRunCmd(), newStorageCmd(),
		newVersionCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print build information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), version.Print("slogate"))
			return nil
		},
	}
}
