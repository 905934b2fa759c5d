package supervise

import (
	"testing"
	"time"

	"github.com/slogate/slogate/client"
)

func ptr(v float64) *float64 { return &v }

func TestFormatEntry(t *testing.T) {
	at := time.Date(2026, 1, 2, 12, 0, 30, 0, time.Local)
	tests := []struct {
		name  string
		entry client.TimelineEntry
		want  string
	}{
		{name: "probe", entry: client.TimelineEntry{At: at, Hypothesis: "checkout-steady", Probe: "error-rate", Value: ptr(0.002), Verdict: "pass"}, want: "12:00:30 checkout-steady/error-rate = 0.002 pass"},
		{name: "no value", entry: client.TimelineEntry{At: at, Hypothesis: "checkout-steady", Probe: "error-rate", Verdict: "unknown", Message: "no data"}, want: "12:00:30 checkout-steady/error-rate unknown: no data"},
		{name: "hypothesis", entry: client.TimelineEntry{At: at, Hypothesis: "checkout-steady", Verdict: "fail"}, want: "12:00:30 checkout-steady fail"},
		{name: "slo", entry: client.TimelineEntry{At: at, SLO: "checkout-availability", Value: ptr(0.031234), Verdict: "pass", Message: "budget spent"}, want: "12:00:30 slo checkout-availability = 0.03123 pass: budget spent"},
		{name: "state change", entry: client.TimelineEntry{At: at, Verdict: "aborted", Message: "maxDuration 15m reached"}, want: "12:00:30 run aborted: maxDuration 15m reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatEntry(tt.entry); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestQuoteArgs(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want string
	}{
		{name: "plain", argv: []string{"kubectl", "delete", "pod", "-l", "app=checkout"}, want: "kubectl delete pod -l app=checkout"},
		{name: "space", argv: []string{"sh", "-c", "echo chaos; exit 0"}, want: `sh -c "echo chaos; exit 0"`},
		{name: "empty", argv: []string{"chaos", ""}, want: `chaos ""`},
		{name: "shell characters", argv: []string{"echo", "$HOME", "a*", "it's"}, want: `echo "$HOME" "a*" "it's"`},
		{name: "quote and newline", argv: []string{"printf", "say \"hi\"\n"}, want: `printf "say \"hi\"\n"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quoteArgs(tt.argv); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
