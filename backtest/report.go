package backtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// ParseTime reads a backtest bound: "now", a duration before now
// ("-7d", "-36h", "-90m"; units of Prometheus durations, ms to y), an
// RFC 3339 time ("2026-11-20T14:00:00Z") or a date ("2026-11-20", midnight
// UTC).
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-") || strings.HasPrefix(s, "now-"):
		d, err := model.ParseDuration(strings.TrimPrefix(strings.TrimPrefix(s, "now"), "-"))
		if err != nil {
			return time.Time{}, fmt.Errorf("time %q: %w", s, err)
		}
		return now.Add(-time.Duration(d)), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New(`time "` + s + `": use now, a duration before now like -7d, an RFC 3339 time like 2026-11-20T14:00:00Z, or a date like 2026-11-20`)
}

// WriteJSON writes the report as indented JSON. NaN budgets are null.
func WriteJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // reasons hold < and >, and this is no HTML
	return enc.Encode(rep)
}

// WriteText writes the report for people: per SLO its budget at the end and
// the alerts with their firing intervals, then the verdict changes of every
// hypothesis in time order.
func WriteText(w io.Writer, rep *Report) error {
	ew := &errWriter{w: w}
	ew.printf("Backtest %s → %s, step %s\n", stamp(rep.From), stamp(rep.To), rep.Step)
	for _, s := range rep.SLOs {
		budget := "no data"
		if b := float64(s.BudgetRemainingAtEnd); !math.IsNaN(b) {
			budget = fmt.Sprintf("%.1f%%", b*100)
		}
		ew.printf("\nSLO %s (%s): budget remaining at the end %s\n", s.Name, s.Service, budget)
		if len(s.Alerts) == 0 {
			ew.printf("  no alert would have fired\n")
		}
		for _, a := range s.Alerts {
			end := "still firing at the end"
			if a.ResolvedAt != nil {
				end = "resolved " + stamp(*a.ResolvedAt) + " (after " + model.Duration(a.ResolvedAt.Sub(a.FiredAt)).String() + ")"
			}
			ew.printf("  %-6s fired %s  %s: %s\n", a.Severity, stamp(a.FiredAt), end, a.Condition)
		}
	}
	if len(rep.Hypotheses) > 0 {
		ew.printf("\nHypotheses\n")
		type line struct {
			at   time.Time
			text string
		}
		var lines []line
		width := 0
		for _, h := range rep.Hypotheses {
			width = max(width, len(h.Name))
		}
		for _, h := range rep.Hypotheses {
			if len(h.Changes) == 0 {
				lines = append(lines, line{rep.From, fmt.Sprintf("%s  %-*s  unknown throughout (never evaluated to pass or fail)", stamp(rep.From), width, h.Name)})
			}
			for _, c := range h.Changes {
				lines = append(lines, line{c.At, fmt.Sprintf("%s  %-*s  %s → %s (%s)", stamp(c.At), width, h.Name, c.From, c.To, c.Reason)})
			}
		}
		sort.SliceStable(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })
		for _, l := range lines {
			ew.printf("%s\n", l.text)
		}
	}
	return ew.err
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// errWriter keeps the first write error, so that a report of many lines
// is written without checking each.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
