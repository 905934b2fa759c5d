package backtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/slogate/slogate/slo"
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

// WriteText writes the report for people: per SLO its budget at the end,
// the alerts with their firing intervals and what its low-traffic guard
// removed, then the verdict changes of every hypothesis in time order and
// what the guards of their probes changed.
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
		if l := s.LowTraffic; l != nil {
			ew.printf("  %s removed %s (%s) on low traffic\n", sloMinEvents(l.MinEvents), count(l.AlertsRemoved, "alert"), count(l.PagesRemoved, "page"))
			for _, a := range l.Removed {
				n := formatCount(float64(a.Events))
				if n != "1" {
					n += " events"
				} else {
					n += " event"
				}
				ew.printf("    %-6s would have fired %s on %s over %s: %s\n", a.Severity, stamp(a.FiredAt), n, a.Window, a.Condition)
			}
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
		for _, h := range rep.Hypotheses {
			if l := h.LowTraffic; l != nil {
				// Under the timeline's name column, after its changes.
				ew.printf("%*s  %-*s  %s removed %s (%d to fail) on low traffic and added %d\n", len(stamp(rep.From)), "", width, h.Name,
					probeMinEvents(l.MinEvents), count(l.FlipsRemoved, "verdict change"), l.FailsRemoved, l.FlipsAdded)
			}
		}
	}
	return ew.err
}

// count is "1 page", "3 pages".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// sloMinEvents is "minEvents 100", or "minEvents 100 (page), 20 (ticket)"
// when the severities' guards differ.
func sloMinEvents(m map[slo.Severity]float64) string {
	var parts []string
	values := map[float64]bool{}
	for _, sev := range slo.Severities {
		if v, ok := m[sev]; ok {
			parts = append(parts, formatCount(v)+" ("+string(sev)+")")
			values[v] = true
		}
	}
	if len(values) == 1 {
		for v := range values {
			return "minEvents " + formatCount(v)
		}
	}
	return "minEvents " + strings.Join(parts, ", ")
}

// probeMinEvents is "minEvents 100 on error-rate, 50 on latency".
func probeMinEvents(m map[string]float64) string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = formatCount(m[name]) + " on " + name
	}
	return "minEvents " + strings.Join(parts, ", ")
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
