package slo

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Level is how bad a diagnostic is. It is not called Severity because that
// name belongs to alert tiers (SeverityPage, SeverityTicket).
type Level string

const (
	// LevelError makes a definition unusable: Load's Set must not be
	// evaluated while any error is reported.
	LevelError Level = "error"
	// LevelWarning is a probable mistake that still yields a usable
	// definition (an objective of 0.999 that was likely meant as 99.9).
	LevelWarning Level = "warning"
)

// Diagnostic is one problem found in a definition file, at the YAML node it
// is about.
type Diagnostic struct {
	Pos      Pos
	Severity Level
	Message  string
}

// location renders the position; a diagnostic about a whole file or path
// (unreadable, no match) has no line and renders as the bare path.
func (d Diagnostic) location() string {
	switch {
	case d.Pos.File == "":
		return ""
	case d.Pos.Line <= 0:
		return d.Pos.File
	}
	return d.Pos.File + ":" + strconv.Itoa(d.Pos.Line) + ":" + strconv.Itoa(d.Pos.Col)
}

// Error renders the diagnostic as "file:line:col: message", the form
// compilers use and editors jump to.
func (d Diagnostic) Error() string {
	if loc := d.location(); loc != "" {
		return loc + ": " + d.Message
	}
	return d.Message
}

// String renders the diagnostic with its level, as `slogate check` prints
// it: "file:line:col: error: message".
func (d Diagnostic) String() string {
	if loc := d.location(); loc != "" {
		return loc + ": " + string(d.Severity) + ": " + d.Message
	}
	return string(d.Severity) + ": " + d.Message
}

// Diagnostics are all the problems of a load, sorted by file, line and
// column once Load returns them.
type Diagnostics []Diagnostic

// Errors returns the diagnostics of level error.
func (ds Diagnostics) Errors() Diagnostics { return ds.filter(LevelError) }

// Warnings returns the diagnostics of level warning.
func (ds Diagnostics) Warnings() Diagnostics { return ds.filter(LevelWarning) }

func (ds Diagnostics) filter(l Level) Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == l {
			out = append(out, d)
		}
	}
	return out
}

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	return slices.ContainsFunc(ds, func(d Diagnostic) bool { return d.Severity == LevelError })
}

// Err joins the errors (not the warnings) into one error, or returns nil
// when there are none, so callers can write `if err := diags.Err(); err != nil`.
func (ds Diagnostics) Err() error {
	var errs []error
	for _, d := range ds {
		if d.Severity == LevelError {
			errs = append(errs, d)
		}
	}
	return errors.Join(errs...)
}

// String renders one diagnostic per line, with levels.
func (ds Diagnostics) String() string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// sort orders by file, line, column; ties keep the order of discovery so
// that a message that explains another one stays before it.
func (ds Diagnostics) sort() {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
		)
	})
}

// Summary counts what a load found, for the last line of `slogate check`.
type Summary struct {
	SLOs        int `json:"slos"`
	Hypotheses  int `json:"hypotheses"`
	Experiments int `json:"experiments"`
	Errors      int `json:"errors"`
	Warnings    int `json:"warnings"`
}

// Summarize counts the definitions of set (nil counts as empty) and the
// diagnostics by level.
func Summarize(set *Set, ds Diagnostics) Summary {
	var s Summary
	if set != nil {
		s.SLOs, s.Hypotheses, s.Experiments = len(set.SLOs), len(set.Hypotheses), len(set.Experiments)
	}
	s.Errors, s.Warnings = len(ds.Errors()), len(ds.Warnings())
	return s
}

// String renders the summary as "3 SLOs, 2 hypotheses, 1 experiment;
// 0 errors, 1 warning".
func (s Summary) String() string {
	return fmt.Sprintf("%s, %s, %s; %s, %s",
		plural(s.SLOs, "SLO", "SLOs"),
		plural(s.Hypotheses, "hypothesis", "hypotheses"),
		plural(s.Experiments, "experiment", "experiments"),
		plural(s.Errors, "error", "errors"),
		plural(s.Warnings, "warning", "warnings"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
