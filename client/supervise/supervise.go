//go:build unix

package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/slogate/slogate/client"
)

// Supervisor runs a chaos command under a run of an experiment. Set its
// fields, then call Run; Run does not change them.
type Supervisor struct {
	// Client talks to the slogate server; required.
	Client *client.Client

	// Grace is the time the command has to exit after SIGTERM before it
	// gets SIGKILL; zero kills it at once.
	Grace time.Duration
	// PollTimeout is how long the server may hold one long poll of the
	// run.
	PollTimeout time.Duration
	// ServerTimeout is how long the server may stay unreachable while the
	// command runs before the command is stopped: an unsupervised
	// experiment is unsafe. Calls that finish or abort the run are retried
	// for as long.
	ServerTimeout time.Duration
	// RecoveryTimeout is how long to wait for the verdict once the
	// command has exited 0.
	RecoveryTimeout time.Duration

	// Stdin and Stdout are the command's; nil is the null device.
	Stdin  io.Reader
	Stdout io.Writer
	// Stderr is the command's, and gets the supervisor's own lines, each
	// starting "slogate: ". An *os.File goes to the command as it is, so
	// that the command sees a terminal when there is one. Nil discards.
	Stderr io.Writer

	// Signals, when one arrives while the command runs, stop the command
	// and abort the run (a second one SIGKILLs the command at once); while
	// the supervisor waits for the verdict, one ends the waiting. The
	// caller registers them (signal.Notify) before calling Run, so that no
	// signal can end the process between starting the run and being able
	// to abort it. Nil: no signals.
	Signals <-chan os.Signal
}

// Check reports the options that cannot work, all at once.
func (s *Supervisor) Check() error {
	var errs []error
	if s.Grace < 0 {
		errs = append(errs, fmt.Errorf("--grace %s: must not be negative", s.Grace))
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"--poll-timeout", s.PollTimeout}, {"--server-timeout", s.ServerTimeout}, {"--recovery-timeout", s.RecoveryTimeout}} {
		if f.d <= 0 {
			errs = append(errs, fmt.Errorf("%s %s: must be positive", f.name, f.d))
		}
	}
	return errors.Join(errs...)
}

// Run runs the command argv (argv[0] looked up in PATH when it has no
// slash) as a run of experiment, following the run on the server and
// printing each new timeline entry and state change to Stderr, and
// returns the run's verdict:
//
//   - nil when the run passed;
//   - an *Error with Outcome Failed or Aborted for the server's other
//     verdicts, GateClosed when the gate refused the run (the command
//     never started), and Unknown when the run has no verdict. Its Err is
//     nil when what happened has been printed already.
//
// The run is aborted, and the command stopped, when the command fails,
// when a signal arrives, or when the server cannot be followed; see
// Supervisor's fields. ctx is that of the calls to the server: cancelling
// it does not stop the command, it only stops following the run. Stop a
// run through Signals.
func (s *Supervisor) Run(ctx context.Context, experiment string, argv []string) error {
	if err := s.Check(); err != nil {
		return unknown(err)
	}
	if s.Client == nil {
		return unknown(errors.New("supervise: no Client"))
	}
	if len(argv) == 0 {
		return unknown(errors.New("no command to run"))
	}
	return newRunner(s).execute(ctx, experiment, argv)
}
