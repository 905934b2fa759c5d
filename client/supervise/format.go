package supervise

import (
	"strconv"
	"strings"

	"github.com/slogate/slogate/client"
)

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
