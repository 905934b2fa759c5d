package supervise

// Outcome is how a supervised run ended, as far as the caller is
// concerned. `slogate run` maps each to its exit code.
type Outcome int

const (
	// Unknown: the run has no verdict. Something went wrong (bad options,
	// the server unreachable or refusing, the command failing or not
	// starting), the supervisor was interrupted, or the verdict did not
	// come in time.
	Unknown Outcome = iota
	// Passed: the hypotheses held during the run and recovered after it.
	Passed
	// Failed: the hypotheses did not recover in the experiment's recovery
	// time.
	Failed
	// GateClosed: the gate refused the run; the command never started.
	GateClosed
	// Aborted: the server aborted the run, and the command was stopped.
	Aborted
)

func (o Outcome) String() string {
	switch o {
	case Passed:
		return "passed"
	case Failed:
		return "failed"
	case GateClosed:
		return "gate closed"
	case Aborted:
		return "aborted"
	}
	return "unknown"
}

// Error is how Run reports any outcome but Passed.
type Error struct {
	Outcome Outcome
	// Err says what went wrong. It is nil when there is nothing more to
	// say: the outcome itself, and why, has been printed to Stderr.
	Err error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "chaos run: " + e.Outcome.String()
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// unknown is the outcome of a run that has no verdict, for reason err.
func unknown(err error) error { return &Error{Outcome: Unknown, Err: err} }
