package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/slogate/slogate/client"
	"github.com/slogate/slogate/client/supervise"
)

func newGateCmd() *cobra.Command {
	var (
		cf     clientFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "gate EXPERIMENT",
		Short: "Ask a slogate server whether an experiment may run",
		Long: `gate asks a running slogate serve whether EXPERIMENT may run now: whether its
hypotheses pass, the gate policies of its SLOs hold, no run of it is active
and the data is fresh. It prints the status and the reasons.

Exit codes:
  0  open: the experiment may run
  2  closed: it may not; the reasons say why
  4  unknown (the server cannot tell, e.g. no fresh data), or an error: bad
     flags, server unreachable, unknown experiment

The gate only answers; to start a run atomically with the gate's approval,
use slogate run.`,
		Example: `  slogate gate kill-checkout-pod
  slogate gate kill-checkout-pod --server https://slogate.example.com -o json
  slogate gate kill-checkout-pod && chaos run experiment.json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return exitWith(exitUnknown, fmt.Errorf("want one EXPERIMENT, got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return exitWith(exitUnknown, fmt.Errorf("--output: unknown format %q; use text or json", output))
			}
			c, err := cf.newClient()
			if err != nil {
				return exitWith(exitUnknown, err)
			}
			answer, err := c.Gate(cmd.Context(), args[0])
			if err != nil {
				return exitWith(exitUnknown, supervise.DescribeError(c.Server(), err))
			}
			if answer.Experiment == "" {
				answer.Experiment = args[0]
			}
			if output == "json" {
				err = writeGateJSON(cmd.OutOrStdout(), answer)
			} else {
				err = client.WriteGateText(cmd.OutOrStdout(), "", answer)
			}
			if err != nil {
				return exitWith(exitUnknown, fmt.Errorf("writing the answer: %w", err))
			}
			return gateExit(answer)
		},
	}
	cf.register(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "text", "answer format: text or json")
	cmd.SetFlagErrorFunc(usageError)
	return cmd
}

// gateExit is the exit of the gate command for an answer; the answer was
// printed, so the error carries only the code.
func gateExit(answer *client.GateAnswer) error {
	switch answer.Status {
	case client.StatusOpen:
		return nil
	case client.StatusClosed:
		return exitWith(exitGateClosed, nil)
	}
	// Unknown, or a status this client does not know: neither is "go".
	return exitWith(exitUnknown, nil)
}

func writeGateJSON(w io.Writer, answer *client.GateAnswer) error {
	if answer.Reasons == nil {
		answer.Reasons = []client.Reason{} // [] rather than null for jq users
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(answer)
}
