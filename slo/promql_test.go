package slo

import (
	"strings"
	"testing"
	"time"
)

func TestOpenSLOQuery(t *testing.T) {
	tests := []struct {
		name    string
		query   string
		counter bool
		want    string
	}{
		{
			name:  "templated query kept, spelling normalised",
			query: `sum(rate(x[{{ .window }}]))`, counter: true,
			want: `sum(rate(x[{{.window}}]))`,
		},
		{
			name:  "fixed ranges become the window",
			query: `sum(rate(x{a="1"}[5m])) / sum(rate(y[1h] offset 5m))`,
			want:  `sum(rate(x{a="1"}[{{.window}}])) / sum(rate(y[{{.window}}] offset 5m))`,
		},
		{
			name:  "increase becomes rate",
			query: `sum(increase(x[5m]))`, counter: true,
			want: `sum(rate(x[{{.window}}]))`,
		},
		{
			name:  "bare counter is rated and summed",
			query: `http_requests_total{job="a"}`, counter: true,
			want: `sum(rate(http_requests_total{job="a"}[{{.window}}]))`,
		},
		{
			name:  "aggregated counter is rated",
			query: `sum by (job) (http_requests_total{job="a"})`, counter: true,
			want: `sum by (job) (rate(http_requests_total{job="a"}[{{.window}}]))`,
		},
		{
			name:  "every selector of an expression is rated",
			query: `sum(a) - sum(b)`, counter: true,
			want: `sum(rate(a[{{.window}}])) - sum(rate(b[{{.window}}]))`,
		},
		{
			name:  "gauge without range kept",
			query: `sum(queue_length)`,
			want:  `sum(queue_length)`,
		},
		{
			name:  "unparsable kept for validation to report",
			query: `sum(rate(x[5m]`, counter: true,
			want: `sum(rate(x[5m]`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := openSLOQuery(tt.query, tt.counter); got != tt.want {
				t.Errorf("openSLOQuery(%q, %v) =\n  %s\nwant\n  %s", tt.query, tt.counter, got, tt.want)
			}
		})
	}
}

func TestFillWindow(t *testing.T) {
	tests := []struct {
		name, query string
		window      time.Duration
		want        string
	}{
		{"canonical", `rate(x[{{.window}}])`, 5 * time.Minute, `rate(x[5m])`},
		{"spaced", `rate(x[{{ .window }}]) / rate(y[{{.window}}])`, 30 * 24 * time.Hour, `rate(x[30d]) / rate(y[30d])`},
		{"trim markers", `rate(x[{{- .window -}}])`, 90 * time.Minute, `rate(x[1h30m])`},
		{"untemplated", `up`, time.Hour, `up`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FillWindow(tt.query, tt.window); got != tt.want {
				t.Errorf("FillWindow = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClosest(t *testing.T) {
	known := []string{"objective", "window", "indicator", "errorRatio", "description"}
	tests := []struct{ name, in, want string }{
		{"one letter missing", "objectiv", "objective"},
		{"transposed", "windwo", "window"},
		{"snake case", "error_ratio", "errorRatio"},
		{"case", "Indicator", "indicator"},
		{"too far", "frobnicate", ""},
		{"short and far", "x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := closest(tt.in, known); got != tt.want {
				t.Errorf("closest(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestQueryTooComplex(t *testing.T) {
	tests := []struct{ name, query, want string }{
		{"ordinary", `sum(rate(x{code=~"(5..|429)"}[5m]))`, ""},
		{"long regex", `sum(rate(x{path=~"` + strings.Repeat(`/a/(b|c)+|`, 3000) + `"}[5m]))`, ""},
		{"brackets in strings", `x{a="` + strings.Repeat("(", 100) + `\"` + `"}`, ""},
		{"too long", strings.Repeat(" ", maxQueryLen) + "1", "the query is 32769 bytes long; at most 32768 are accepted"},
		{"too many tokens", strings.Repeat("x+", 1000) + "1", "the query has more than 2000 tokens"},
		{"too deep", strings.Repeat("(", 65) + "1" + strings.Repeat(")", 65), "the query nests brackets more than 64 deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := queryTooComplex(tt.query); got != tt.want {
				t.Errorf("queryTooComplex = %q, want %q", got, tt.want)
			}
		})
	}
}
