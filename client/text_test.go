package client

import (
	"strings"
	"testing"
)

func TestWriteGateText(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		answer GateAnswer
		want   string
	}{
		{name: "open", answer: GateAnswer{Experiment: "kill-pod", Status: StatusOpen}, want: "gate kill-pod: open\n"},
		{name: "reasons with prefix", prefix: "slogate: run refused: ",
			answer: GateAnswer{Experiment: "kill-pod", Status: StatusClosed, Reasons: []Reason{
				{Kind: "slo", Name: "checkout-availability", Message: "error budget remaining 12% < 25%"},
				{Kind: "run-active", Message: "run r1 is active"},
			}},
			want: "slogate: run refused: gate kill-pod: closed\n" +
				"slogate: run refused:   - slo checkout-availability: error budget remaining 12% < 25%\n" +
				"slogate: run refused:   - run-active: run r1 is active\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := WriteGateText(&b, tt.prefix, &tt.answer); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got %q, want %q", b.String(), tt.want)
			}
		})
	}
}
