package slo

import "time"

// Verdict is the judgement of a probe or a hypothesis. No data, NaN, query
// errors and stale data are never Pass unless a policy says so.
type Verdict string

const (
	Pass    Verdict = "pass"
	Fail    Verdict = "fail"
	Unknown Verdict = "unknown"
)

// Verdicts in the order the state-set metric exports them.
var Verdicts = []Verdict{Pass, Fail, Unknown}

// Verdict is the verdict the policy prescribes (an unset policy is unknown).
func (p Policy) Verdict() Verdict {
	switch p {
	case PolicyPass:
		return Pass
	case PolicyFail:
		return Fail
	}
	return Unknown
}

// Worst combines verdicts: fail beats unknown, unknown beats pass. It is
// how the probes of a hypothesis make its raw verdict; no verdicts at all
// are Pass (nothing failed).
func Worst(verdicts ...Verdict) Verdict {
	out := Pass
	for _, v := range verdicts {
		switch {
		case v == Fail:
			return Fail
		case v != Pass:
			out = Unknown
		}
	}
	return out
}

// Debounce is a hypothesis' verdict debounced by failAfter and passAfter:
// it turns fail after FailAfter raw fails in a row and pass after PassAfter
// raw passes in a row; a raw unknown makes it unknown at once, since a
// verdict nobody can measure must not keep a gate open. The zero value is
// an unknown verdict with no history.
type Debounce struct {
	Verdict Verdict
	// Since is when Verdict was reached (the first observation for a
	// verdict that never changed).
	Since time.Time
	// Streak is how many observations in a row gave RawStreak.
	Streak    int
	RawStreak Verdict
}

// Observe records the raw verdict of one evaluation at time at and reports
// whether the debounced verdict changed.
func (d *Debounce) Observe(raw Verdict, at time.Time, failAfter, passAfter int) (changed bool) {
	prev := d.Verdict
	if prev == "" {
		prev = Unknown
	}
	if raw == d.RawStreak {
		d.Streak++
	} else {
		d.RawStreak, d.Streak = raw, 1
	}
	next := prev
	switch raw {
	case Fail:
		if d.Streak >= max(failAfter, 1) {
			next = Fail
		}
	case Pass:
		if d.Streak >= max(passAfter, 1) {
			next = Pass
		}
	default:
		next = Unknown
	}
	changed = next != prev
	if changed || d.Since.IsZero() {
		d.Since = at
	}
	d.Verdict = next
	return changed
}
