//go:build unix

// The run command relies on process groups and POSIX signals to stop a
// chaos command and everything it started; it is not built elsewhere.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/slogate/slogate/client"
)

func init() { subcommands = append(subcommands, newRunCmd) }

// Reasons slogate gives the server when it aborts a run itself.
const (
	reasonInterrupted = "interrupted"
	reasonLostContact = "slogate run lost contact with the server"
)

// minPollGap spaces out long polls that come back at once without news, so
// that a server (or proxy) that does not hold them is asked once a second
// rather than in a busy loop.
const minPollGap = time.Second

// waitDelay bounds how long slogate waits, once CMD has exited, for output
// that processes it left behind still write into slogate's pipes (only in
// tests: with real files as stdio there are no pipes).
const waitDelay = 2 * time.Second

func newRunCmd() *cobra.Command {
	var (
		cf clientFlags
		r  runner
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
			if err := r.checkFlags(); err != nil {
				return exitWith(exitUnknown, err)
			}
			c, err := cf.newClient()
			if err != nil {
				return exitWith(exitUnknown, err)
			}
			r.client, r.server = c, c.Server()
			r.stdin, r.stdout = cmd.InOrStdin(), cmd.OutOrStdout()
			r.setStderr(cmd.ErrOrStderr())

			// Registered before the run exists, so that no signal can end
			// slogate between starting a run and being able to abort it.
			// SIGHUP too: a closed terminal must not leave the chaos
			// running unsupervised.
			signals := make(chan os.Signal, 2)
			signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
			defer signal.Stop(signals)
			r.signals = signals

			return r.execute(cmd.Context(), args[0], args[1:])
		},
	}
	cf.register(cmd.Flags())
	cmd.Flags().DurationVar(&r.grace, "grace", 10*time.Second, "time CMD has to exit after SIGTERM before it gets SIGKILL")
	cmd.Flags().DurationVar(&r.pollTimeout, "poll-timeout", 30*time.Second, "how long the server may hold one long poll of the run")
	cmd.Flags().DurationVar(&r.serverTimeout, "server-timeout", 2*time.Minute, "how long the server may stay unreachable before CMD is stopped")
	cmd.Flags().DurationVar(&r.recoveryTimeout, "recovery-timeout", 15*time.Minute, "how long to wait for the verdict after CMD exited 0")
	cmd.SetFlagErrorFunc(usageError)
	return cmd
}

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

func (r *runner) checkFlags() error {
	var errs []error
	if r.grace < 0 {
		errs = append(errs, fmt.Errorf("--grace %s: must not be negative", r.grace))
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"--poll-timeout", r.pollTimeout}, {"--server-timeout", r.serverTimeout}, {"--recovery-timeout", r.recoveryTimeout}} {
		if f.d <= 0 {
			errs = append(errs, fmt.Errorf("%s %s: must be positive", f.name, f.d))
		}
	}
	return errors.Join(errs...)
}

// setStderr shares w between CMD and slogate's own messages, which come
// from several goroutines. A real file goes to CMD as it is, so that CMD
// sees a terminal when there is one.
func (r *runner) setStderr(w io.Writer) {
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
		return exitWith(exitUnknown, fmt.Errorf("cannot run the chaos command: %w", err))
	}
	child := exec.Command(argv[0], argv[1:]...)
	if child.Err != nil {
		return exitWith(exitUnknown, fmt.Errorf("cannot run the chaos command: %w", child.Err))
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
		return exitWith(exitGateClosed, nil)
	}
	if err != nil {
		return exitWith(exitUnknown, describeClientError(r.server, err))
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
			return exitWith(exitUnknown, fmt.Errorf("interrupted before the chaos command started; aborting run %s failed: %w", r.id, err))
		}
		return exitWith(exitUnknown, fmt.Errorf("interrupted; run %s aborted, the chaos command never started", r.id))
	default:
	}

	if err := child.Start(); err != nil {
		reason := fmt.Sprintf("command failed to start: %v", err)
		if _, abortErr := r.abort(ctx, reason, r.serverTimeout); abortErr != nil {
			return exitWith(exitUnknown, fmt.Errorf("the chaos command could not start (%v), and aborting run %s failed: %w", err, r.id, abortErr))
		}
		return exitWith(exitUnknown, fmt.Errorf("the chaos command could not start (%v); run %s aborted", err, r.id))
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
				return exitWith(exitUnknown, fmt.Errorf("run %s has no verdict: %w", r.id, describeClientError(r.server, err)))
			}
			return exitWith(exitUnknown, fmt.Errorf("run %s has no verdict: %w", r.id, err))

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
				return exitWith(exitUnknown, fmt.Errorf("interrupted; aborting run %s failed: %w", r.id, err))
			}
			return exitWith(exitUnknown, fmt.Errorf("interrupted; run %s aborted", r.id))
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
		return exitWith(exitUnknown, fmt.Errorf("the chaos command failed (%v), and aborting run %s failed: %w", cmdErr, r.id, err))
	}
	if run.State != client.StateAborted {
		return exitWith(exitUnknown, fmt.Errorf("the chaos command failed (%v); run %s is %s", cmdErr, r.id, run.State))
	}
	return exitWith(exitUnknown, fmt.Errorf("the chaos command failed (%v); run %s aborted", cmdErr, r.id))
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
		r.logf("aborting run %s: %v", r.id, describeClientError(r.server, err))
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
			return exitWith(exitUnknown, fmt.Errorf("finishing run %s: %w", r.id, refusal))
		}
	}
	if err != nil {
		return exitWith(exitUnknown, fmt.Errorf("the chaos command succeeded, but finishing run %s failed: %w", r.id, describeClientError(r.server, err)))
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
			return exitWith(exitUnknown, fmt.Errorf("waiting for the verdict of run %s: %w", r.id, describeClientError(r.server, err)))
		case <-deadline.C:
			return exitWith(exitUnknown, fmt.Errorf("no verdict for run %s within --recovery-timeout %s; it is still %s on the server", r.id, r.recoveryTimeout, r.state))
		case sig := <-r.signals:
			// The chaos is over: aborting now would only throw away the
			// verdict the server is about to record.
			return exitWith(exitUnknown, fmt.Errorf("received %s: stopped waiting; run %s is still %s on the server, which will record its verdict", sigName(sig), r.id, r.state))
		}
	}
}

// verdict maps a finished run to the exit code; show has printed it.
func (r *runner) verdict(run *client.Run) error {
	switch run.State {
	case client.StatePassed:
		return nil
	case client.StateFailed:
		return exitWith(exitFailed, nil)
	case client.StateAborted:
		return exitWith(exitAborted, nil)
	}
	return exitWith(exitUnknown, fmt.Errorf("run %s is %s, not over", run.ID, run.State))
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

// formatEntry renders a timeline entry on one line, e.g.
// "12:00:30 checkout-steady/error-rate = 0.002 pass".
func formatEntry(e client.TimelineEntry) string {
	var b strings.Builder
	b.WriteString(e.At.Local().Format("15:04:05"))
	b.WriteByte(' ')
	switch {
	case e.Hypothesis != "" && e.Probe != "":
		b.WriteString(e.Hypothesis + "/" + e.Probe)
	case e.Hypothesis != "":
		b.WriteString(e.Hypothesis)
	case e.SLO != "":
		b.WriteString("slo " + e.SLO)
	default:
		b.WriteString("run")
	}
	if e.Value != nil {
		b.WriteString(" = " + strconv.FormatFloat(*e.Value, 'g', 4, 64))
	}
	if e.Verdict != "" {
		b.WriteString(" " + e.Verdict)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// watcher long-polls a run in its own goroutine.
type watcher struct {
	updates chan *client.Run // every answer with news
	err     chan error       // why it gave up
	cancel  context.CancelFunc
	done    chan struct{}
}

// stop ends the watcher and waits for it; it may be called more than once.
func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

func (r *runner) watch(ctx context.Context, run *client.Run) *watcher {
	ctx, cancel := context.WithCancel(ctx)
	w := &watcher{
		updates: make(chan *client.Run),
		err:     make(chan error, 1),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go func() {
		defer close(w.done)
		if err := r.poll(ctx, run, w.updates); err != nil {
			w.err <- err
		}
	}()
	return w
}

// poll long-polls run until it is over or ctx ends, sending each answer
// that differs from the previous one. When the server cannot be reached it
// retries with backoff; once --server-timeout has passed since the first
// failure without an answer, or at an answer that retrying cannot change
// (the run is gone, the token is refused), it gives up with that error.
func (r *runner) poll(ctx context.Context, run *client.Run, updates chan<- *client.Run) error {
	state, seen := run.State, len(run.Timeline)
	var (
		failures     int
		firstFailure time.Time
	)
	for {
		asked := time.Now()
		next, err := r.client.WaitRun(ctx, run.ID, state, r.pollTimeout)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if !client.Retryable(err) {
				return err
			}
			failures++
			if failures == 1 {
				// The clock starts when the failure shows: a held long
				// poll says nothing about the server until it ends.
				firstFailure = time.Now()
				r.logf("cannot reach slogate at %s (%v); retrying for up to %s", r.server, rootCause(err), r.serverTimeout)
			}
			left := r.serverTimeout - time.Since(firstFailure)
			if left <= 0 {
				return err
			}
			if !sleep(ctx, min(backoff(failures), left)) {
				return nil
			}
			continue
		}
		if failures > 0 {
			r.logf("reached slogate at %s again", r.server)
			failures = 0
		}
		if next.State != state || len(next.Timeline) != seen {
			state, seen = next.State, len(next.Timeline)
			select {
			case updates <- next:
			case <-ctx.Done():
				return nil
			}
			if state.Terminal() {
				return nil
			}
			continue
		}
		if !sleep(ctx, minPollGap-time.Since(asked)) {
			return nil
		}
	}
}

// retry makes call until it succeeds, fails in a way retrying cannot
// change, or within has passed.
func (r *runner) retry(ctx context.Context, within time.Duration, call func(context.Context) (*client.Run, error)) (*client.Run, error) {
	deadline := time.Now().Add(within)
	for attempt := 1; ; attempt++ {
		run, err := call(ctx)
		if err == nil || !client.Retryable(err) || ctx.Err() != nil {
			return run, err
		}
		wait := backoff(attempt)
		if time.Now().Add(wait).After(deadline) {
			return nil, err
		}
		if attempt == 1 {
			r.logf("%v; retrying for up to %s", describeClientError(r.server, err), within)
		}
		if !sleep(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}

// backoff is the pause before attempt n+1: 250ms doubling up to 5s, less
// up to a quarter at random so that the clients of a restarted server do
// not all come back at once.
func backoff(n int) time.Duration {
	d := 250 * time.Millisecond << min(n-1, 5)
	d = min(d, 5*time.Second)
	return d - rand.N(d/4)
}

// sleep waits d or until ctx ends, reporting whether it waited the whole d.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
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

func isConflict(err error) bool {
	var apiErr *client.APIError
	return errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict
}

// quoteArgs renders argv for a log line, quoting what needs it.
func quoteArgs(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`;&|<>()*?[]#~") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
