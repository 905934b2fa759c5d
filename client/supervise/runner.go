//go:build unix

package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/slogate/slogate/client"
)

// Reasons slogate gives the server when it aborts a run itself.
const (
	reasonInterrupted = "interrupted"
	reasonLostContact = "slogate run lost contact with the server"
)

// waitDelay bounds how long slogate waits, once CMD has exited, for output
// that processes it left behind still write into slogate's pipes (only in
// tests: with real files as stdio there are no pipes).
const waitDelay = 2 * time.Second

// runner runs one chaos command under one run.
type runner struct {
	client *client.Client
	server string

	grace, pollTimeout, serverTimeout, recoveryTimeout time.Duration

	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer // CMD's stderr
	log     *lockedWriter
	signals <-chan os.Signal

	// What the user has been shown of the run; main goroutine only.
	id      string
	state   client.State
	printed int
}

func newRunner(s *Supervisor) *runner {
	r := &runner{
		client:          s.Client,
		server:          s.Client.Server(),
		grace:           s.Grace,
		pollTimeout:     s.PollTimeout,
		serverTimeout:   s.ServerTimeout,
		recoveryTimeout: s.RecoveryTimeout,
		stdin:           s.Stdin,
		stdout:          s.Stdout,
		signals:         s.Signals,
	}
	r.setStderr(s.Stderr)
	return r
}

// setStderr shares w between CMD and slogate's own messages, which come
// from several goroutines. A real file goes to CMD as it is, so that CMD
// sees a terminal when there is one.
func (r *runner) setStderr(w io.Writer) {
	if w == nil {
		w = io.Discard
	}
	r.log = &lockedWriter{w: w}
	r.stderr = r.log
	if f, ok := w.(*os.File); ok {
		r.stderr = f
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// logf prints one of slogate's own lines; safe from any goroutine.
func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "slogate: "+format+"\n", args...)
}

func (r *runner) execute(ctx context.Context, experiment string, argv []string) error {
	// A command that cannot run is found out before a run exists, rather
	// than by aborting one. exec.Command looks up bare names only.
	if _, err := exec.LookPath(argv[0]); err != nil {
		return unknown(fmt.Errorf("cannot run the chaos command: %w", err))
	}
	child := exec.Command(argv[0], argv[1:]...)
	if child.Err != nil {
		return unknown(fmt.Errorf("cannot run the chaos command: %w", child.Err))
	}
	child.Stdin, child.Stdout, child.Stderr = r.stdin, r.stdout, r.stderr
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	child.WaitDelay = waitDelay

	run, gate, err := r.client.StartRun(ctx, experiment)
	if errors.Is(err, client.ErrGateClosed) && gate != nil {
		if gate.Experiment == "" {
			gate.Experiment = experiment
		}
		_ = client.WriteGateText(r.log, "slogate: run refused: ", gate)
		return &Error{Outcome: GateClosed}
	}
	if err != nil {
		return unknown(DescribeError(r.server, err))
	}
	r.id, r.state = run.ID, run.State
	r.logf("run %s of %s started (%s); running %s", run.ID, experiment, run.State, quoteArgs(argv))
	r.show(run)
	if run.State.Terminal() { // nothing left to supervise
		return r.verdict(run)
	}

	select {
	case sig := <-r.signals:
		r.logf("received %s before the chaos command started; aborting run %s", sigName(sig), r.id)
		if _, err := r.abort(ctx, reasonInterrupted, r.grace); err != nil {
			return unknown(fmt.Errorf("interrupted before the chaos command started; aborting run %s failed: %w", r.id, err))
		}
		return unknown(fmt.Errorf("interrupted; run %s aborted, the chaos command never started", r.id))
	default:
	}

	if err := child.Start(); err != nil {
		reason := fmt.Sprintf("command failed to start: %v", err)
		if _, abortErr := r.abort(ctx, reason, r.serverTimeout); abortErr != nil {
			return unknown(fmt.Errorf("the chaos command could not start (%v), and aborting run %s failed: %w", err, r.id, abortErr))
		}
		return unknown(fmt.Errorf("the chaos command could not start (%v); run %s aborted", err, r.id))
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	return r.supervise(ctx, run, child.Process.Pid, exited)
}

// supervise follows the run while CMD runs, and decides what happens when
// one of them ends first.
func (r *runner) supervise(ctx context.Context, run *client.Run, pid int, exited <-chan error) error {
	w := r.watch(ctx, run)
	defer w.stop()
	for {
		select {
		case run := <-w.updates:
			r.show(run)
			if run.State.Terminal() {
				r.stopChild(pid, exited)
				return r.verdict(run)
			}

		case err := <-exited:
			w.stop()
			if err != nil {
				return r.commandFailed(ctx, err)
			}
			return r.finish(ctx)

		case err := <-w.err:
			lost := client.Retryable(err)
			if lost {
				r.logf("lost contact with slogate at %s for over %s (%v); stopping the chaos command: an unsupervised experiment is unsafe", r.server, r.serverTimeout, rootCause(err))
			} else {
				r.logf("following run %s failed (%v); stopping the chaos command: an unsupervised experiment is unsafe", r.id, err)
			}
			r.stopChild(pid, exited)
			reason := reasonLostContact
			if !lost {
				reason = "slogate run cannot follow the run: " + err.Error()
			}
			r.abort(ctx, reason, 0) // likely in vain when the server is away, but it costs one request
			if lost {
				return unknown(fmt.Errorf("run %s has no verdict: %w", r.id, DescribeError(r.server, err)))
			}
			return unknown(fmt.Errorf("run %s has no verdict: %w", r.id, err))

		case sig := <-r.signals:
			w.stop()
			r.logf("received %s: stopping the chaos command and aborting run %s", sigName(sig), r.id)
			aborted := make(chan error, 1)
			go func() {
				_, err := r.abort(ctx, reasonInterrupted, r.grace)
				aborted <- err
			}()
			r.stopChild(pid, exited)
			if err := <-aborted; err != nil {
				return unknown(fmt.Errorf("interrupted; aborting run %s failed: %w", r.id, err))
			}
			return unknown(fmt.Errorf("interrupted; run %s aborted", r.id))
		}
	}
}

// stopChild ends CMD's process group: SIGTERM, then SIGKILL after the
// grace period, or at once on another SIGINT/SIGTERM from an impatient
// user. It returns once CMD has been reaped.
func (r *runner) stopChild(pid int, exited <-chan error) {
	r.logf("stopping the chaos command: SIGTERM to its process group, SIGKILL after %s", r.grace)
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	grace := time.NewTimer(r.grace)
	defer grace.Stop()
	var err error
	select {
	case err = <-exited:
	case <-grace.C:
		r.logf("the chaos command is still running after %s: SIGKILL", r.grace)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		err = <-exited
	case sig := <-r.signals:
		r.logf("received %s again: SIGKILL", sigName(sig))
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		err = <-exited
	}
	// Processes of the group that outlived its leader (they ignore SIGTERM,
	// or were left in the background) are chaos too. The group id cannot
	// have been reused while any of them is alive.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	if err == nil {
		r.logf("the chaos command stopped (exit status 0)")
	} else {
		r.logf("the chaos command stopped (%v)", err)
	}
}

// commandFailed aborts the run of a chaos command that failed on its own.
func (r *runner) commandFailed(ctx context.Context, cmdErr error) error {
	reason := "command failed: " + cmdErr.Error()
	r.logf("the chaos command failed (%v); aborting run %s", cmdErr, r.id)
	run, err := r.abort(ctx, reason, r.serverTimeout)
	if err != nil {
		return unknown(fmt.Errorf("the chaos command failed (%v), and aborting run %s failed: %w", cmdErr, r.id, err))
	}
	if run.State != client.StateAborted {
		return unknown(fmt.Errorf("the chaos command failed (%v); run %s is %s", cmdErr, r.id, run.State))
	}
	return unknown(fmt.Errorf("the chaos command failed (%v); run %s aborted", cmdErr, r.id))
}

// abort aborts the run with reason, retrying for up to within while the
// server cannot be reached. When the server refuses because the run is
// already over, the run as it is now is returned instead.
func (r *runner) abort(ctx context.Context, reason string, within time.Duration) (*client.Run, error) {
	run, err := r.retry(ctx, within, func(ctx context.Context) (*client.Run, error) {
		return r.client.AbortRun(ctx, r.id, reason)
	})
	if isConflict(err) {
		run, err = r.retry(ctx, within, func(ctx context.Context) (*client.Run, error) {
			return r.client.GetRun(ctx, r.id)
		})
	}
	if err != nil {
		r.logf("aborting run %s: %v", r.id, DescribeError(r.server, err))
		return nil, err
	}
	r.show(run)
	return run, nil
}

// finish declares the chaos done and waits for the recovery verdict.
func (r *runner) finish(ctx context.Context) error {
	r.logf("the chaos command succeeded; finishing run %s", r.id)
	run, err := r.retry(ctx, r.serverTimeout, func(ctx context.Context) (*client.Run, error) {
		return r.client.FinishRun(ctx, r.id)
	})
	if isConflict(err) {
		// The run moved on meanwhile (the server aborted it), or an earlier
		// attempt whose answer was lost did finish it.
		refusal := err
		run, err = r.retry(ctx, r.serverTimeout, func(ctx context.Context) (*client.Run, error) {
			return r.client.GetRun(ctx, r.id)
		})
		if err == nil && run.State == client.StateRunning {
			return unknown(fmt.Errorf("finishing run %s: %w", r.id, refusal))
		}
	}
	if err != nil {
		return unknown(fmt.Errorf("the chaos command succeeded, but finishing run %s failed: %w", r.id, DescribeError(r.server, err)))
	}
	r.show(run)
	if run.State.Terminal() {
		return r.verdict(run)
	}
	return r.awaitVerdict(ctx, run)
}

func (r *runner) awaitVerdict(ctx context.Context, run *client.Run) error {
	r.logf("waiting up to %s for the recovery verdict", r.recoveryTimeout)
	deadline := time.NewTimer(r.recoveryTimeout)
	defer deadline.Stop()
	w := r.watch(ctx, run)
	defer w.stop()
	for {
		select {
		case run := <-w.updates:
			r.show(run)
			if run.State.Terminal() {
				return r.verdict(run)
			}
		case err := <-w.err:
			return unknown(fmt.Errorf("waiting for the verdict of run %s: %w", r.id, DescribeError(r.server, err)))
		case <-deadline.C:
			return unknown(fmt.Errorf("no verdict for run %s within --recovery-timeout %s; it is still %s on the server", r.id, r.recoveryTimeout, r.state))
		case sig := <-r.signals:
			// The chaos is over: aborting now would only throw away the
			// verdict the server is about to record.
			return unknown(fmt.Errorf("received %s: stopped waiting; run %s is still %s on the server, which will record its verdict", sigName(sig), r.id, r.state))
		}
	}
}

// verdict maps a finished run to its outcome; show has printed it.
func (r *runner) verdict(run *client.Run) error {
	switch run.State {
	case client.StatePassed:
		return nil
	case client.StateFailed:
		return &Error{Outcome: Failed}
	case client.StateAborted:
		return &Error{Outcome: Aborted}
	}
	return unknown(fmt.Errorf("run %s is %s, not over", run.ID, run.State))
}

// show prints what is new in run: timeline entries, then a state change.
func (r *runner) show(run *client.Run) {
	if r.printed > len(run.Timeline) {
		r.printed = len(run.Timeline) // a shorter timeline: nothing new to show
	}
	for _, e := range run.Timeline[r.printed:] {
		r.logf("%s", formatEntry(e))
	}
	r.printed = len(run.Timeline)
	if run.State == r.state {
		return
	}
	r.state = run.State
	msg := fmt.Sprintf("run %s %s", run.ID, run.State)
	if run.Reason != "" {
		msg += ": " + run.Reason
	}
	if run.State.Terminal() {
		msg += fmt.Sprintf(" (budget spent %s%%)", strconv.FormatFloat(run.BudgetSpent*100, 'f', 2, 64))
	}
	r.logf("%s", msg)
}

// sigName names the signals slogate handles the way kill(1) does.
func sigName(sig os.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return sig.String()
}
