//go:build unix

// The run command relies on process groups and POSIX signals to stop a
// chaos command and everything it started; it is not built elsewhere.

package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/slogate/slogate/client/supervise"
)

func newRunCmd() *cobra.Command {
	var (
		cf clientFlags
		s  supervise.Supervisor
	)
	cmd := &cobra.Command{
		Use:   "run EXPERIMENT [flags] -- CMD [ARGS...]",
		Short: "Run a chaos command as a run of an experiment, stopping it if the server aborts the run",
		Long: `run starts a run of EXPERIMENT on a running slogate serve, runs the chaos
command CMD while the server checks the experiment's hypotheses and error
budgets, and exits with the run's verdict:

 1. Starting the run asks the gate; when it is closed, the reasons are printed
    and CMD never starts.
 2. CMD runs with slogate's stdin, stdout and stderr, in a process group of
    its own so that stopping it reaches every process it started (it is
    therefore not in the terminal's foreground and must not read from the
    terminal). slogate long-polls the run and prints every new timeline entry
    and state change to stderr.
 3. If the server aborts the run (a hypothesis failed, too much error budget
    spent, maxDuration reached), slogate sends SIGTERM to CMD's process group
    and SIGKILL after --grace.
 4. When CMD exits 0, slogate finishes the run and waits, up to
    --recovery-timeout, for the server's recovery verdict.

Exit codes:
  0  passed: the hypotheses held during the run and recovered after it
  1  failed: the hypotheses did not recover in the experiment's recovery time
  2  gate closed: the run was refused and CMD did not start
  3  aborted: the server aborted the run and CMD was stopped
  4  unknown or error, the run has no verdict:
     - bad flags, the server unreachable or refusing the request;
     - CMD could not start, or exited non-zero: the run is aborted with reason
       "command failed: exit status N". A failing chaos command is a broken
       experiment, not a verdict on the system, so this is not exit 1 or 3;
     - slogate got SIGINT, SIGTERM or SIGHUP while CMD ran: CMD gets SIGTERM
       (a second signal SIGKILLs it at once) and the run is aborted with reason
       "interrupted". This is 4, not 3, even though the run ends aborted: 3
       means the server stopped the experiment. A signal while waiting for the
       recovery verdict only stops the waiting; the server still records it;
     - the server stayed unreachable for --server-timeout while CMD ran: CMD
       is stopped as above, since an unsupervised experiment is unsafe;
     - no verdict within --recovery-timeout (the run is left to the server).`,
		Example: `  slogate run kill-checkout-pod -- kubectl delete pod -l app=checkout
  slogate run kill-checkout-pod --grace 30s --token-file /run/secrets/slogate -- chaos run experiment.json`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch dash := cmd.ArgsLenAtDash(); {
			case dash == -1:
				return exitWith(exitUnknown, errors.New("put the chaos command after --, as in: slogate run EXPERIMENT -- CMD [ARGS]"))
			case dash != 1:
				return exitWith(exitUnknown, fmt.Errorf("want one EXPERIMENT before --, got %d arguments", dash))
			case len(args) == 1:
				return exitWith(exitUnknown, errors.New("no command after --"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := s.Check(); err != nil {
				return exitWith(exitUnknown, err)
			}
			c, err := cf.newClient()
			if err != nil {
				return exitWith(exitUnknown, err)
			}
			s.Client = c
			s.Stdin, s.Stdout, s.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()

			// Registered before the run exists, so that no signal can end
			// slogate between starting a run and being able to abort it.
			// SIGHUP too: a closed terminal must not leave the chaos
			// running unsupervised.
			signals := make(chan os.Signal, 2)
			signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
			defer signal.Stop(signals)
			s.Signals = signals

			return runExit(s.Run(cmd.Context(), args[0], args[1:]))
		},
	}
	cf.register(cmd.Flags())
	cmd.Flags().DurationVar(&s.Grace, "grace", 10*time.Second, "time CMD has to exit after SIGTERM before it gets SIGKILL")
	cmd.Flags().DurationVar(&s.PollTimeout, "poll-timeout", 30*time.Second, "how long the server may hold one long poll of the run")
	cmd.Flags().DurationVar(&s.ServerTimeout, "server-timeout", 2*time.Minute, "how long the server may stay unreachable before CMD is stopped")
	cmd.Flags().DurationVar(&s.RecoveryTimeout, "recovery-timeout", 15*time.Minute, "how long to wait for the verdict after CMD exited 0")
	cmd.SetFlagErrorFunc(usageError)
	return cmd
}

// runExit maps the outcome of a supervised run to the exit code the help
// text promises; an outcome without an error has been printed already.
func runExit(err error) error {
	if err == nil {
		return nil
	}
	var e *supervise.Error
	if !errors.As(err, &e) {
		return exitWith(exitUnknown, err)
	}
	code := exitUnknown
	switch e.Outcome {
	case supervise.Passed:
		code = exitPassed
	case supervise.Failed:
		code = exitFailed
	case supervise.GateClosed:
		code = exitGateClosed
	case supervise.Aborted:
		code = exitAborted
	}
	return exitWith(code, e.Err)
}
