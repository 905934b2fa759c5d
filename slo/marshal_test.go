package slo

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// sameDefinitions compares sets as the evaluator sees them: positions
// differ between a file and its conversion, and a labels: {} block reads
// back as no labels, which means the same.
var sameDefinitions = []cmp.Option{
	cmpopts.IgnoreTypes(Pos{}, Source{}), // converting changes the format by design
	cmpopts.EquateEmpty(),
	cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() }),
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
}

// TestMarshalNativeRoundTrip loads every fixture and example, in each
// format, writes it as native YAML and reads that back: the definitions
// must be the same, and the output must load without a problem.
func TestMarshalNativeRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		paths []string
	}{
		{"good fixtures", []string{filepath.Join(definitions, "good")}},
		{"examples", []string{"../examples/definitions"}},
		{"sloth example", []string{"../examples/definitions/sloth"}},
		{"openslo example", []string{"../examples/definitions/openslo"}},
		{"demo", []string{"../examples/demo"}},
		{"calendar windows", []string{filepath.Join(definitions, "calendar")}},
		{"calendar example", []string{"../examples/calendar"}},
		{"time slices", []string{filepath.Join(definitions, "timeslices")}},
		{"time-slice example", []string{"../examples/timeslices"}},
		{"per-group example", []string{"../examples/groups"}},
		{"sloth twin", []string{filepath.Join(definitions, "twins/sloth/sloth.yaml")}},
		{"openslo twin", []string{filepath.Join(definitions, "twins/openslo/openslo.yaml")}},
		{"grouped, native, pyrra and sloth", []string{filepath.Join(definitions, "groups")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, diags := Load(tt.paths...)
			if diags.HasErrors() {
				t.Fatalf("fixture does not load:\n%s", diags)
			}
			if len(want.SLOs)+len(want.Hypotheses)+len(want.Experiments) == 0 {
				t.Fatal("fixture holds no definitions")
			}
			roundTrip(t, want)
		})
	}
}

// roundTrip marshals want, loads the output and compares.
func roundTrip(t *testing.T, want *Set) []byte {
	t.Helper()
	out, err := MarshalNative(want)
	if err != nil {
		t.Fatalf("MarshalNative: %v", err)
	}
	got, diags := LoadBytes("converted.yaml", out)
	if len(diags) != 0 {
		t.Fatalf("the output does not load cleanly:\n%s\noutput:\n%s", diags, out)
	}
	if diff := cmp.Diff(want, got, sameDefinitions...); diff != "" {
		t.Errorf("definitions changed on the round trip (-before +after):\n%s\noutput:\n%s", diff, out)
	}
	return out
}

// TestMarshalNativeEdgeCases covers values whose notation matters: label
// values that look like numbers or booleans, shares that are not exact in
// percent, multi-line queries, turned-off alerting, non-default gate and
// hypothesis settings.
func TestMarshalNativeEdgeCases(t *testing.T) {
	src := `apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: odd-values, labels: {tier: "1", critical: "true", empty: ""}}
spec:
  service: "007"
  description: "colon: and # hash"
  objective: 99.95
  window: 7d
  indicator:
    raw:
      errorRatio: |
        1 - avg_over_time(
          up{job="odd"}[{{.window}}]
        )
  alerting:
    enabled: false
    name: OddBurn
    labels: {team: "x"}
    annotations: {summary: "multi\nline"}
    page: {enabled: false}
    ticket: {labels: {severity: low}, annotations: {note: "n"}}
  gate: {minBudgetRemaining: 0.07, maxBurnRate: 1e-3, burnRateWindow: 6h}
---
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: latency}
spec:
  service: s
  objective: 99
  window: 30d
  indicator:
    latency: {histogram: 'h_seconds{job="s"}', threshold: 0.25, native: true}
  gate: {minBudgetRemaining: 25%}
---
apiVersion: slogate.dev/v1
kind: SLO
metadata: {name: good-ratio}
spec:
  service: s
  objective: 90
  indicator:
    ratio:
      good: sum(rate(ok_total[{{.window}}]))
      total: sum(rate(all_total[{{.window}}]))
---
apiVersion: slogate.dev/v1
kind: Hypothesis
metadata: {name: h, labels: {a: b}}
spec:
  probes:
    - {name: neg, query: 'sum(x)', tolerance: "< -1.5"}
    - {name: tiny, query: 'sum(y)', tolerance: ">= 1e-9"}
    - {name: band, query: 'sum(z)', tolerance: "between -2 and 3.25"}
    - {name: budget-band, slo: good-ratio, tolerance: {budgetRemaining: "between 10% and 0.333"}}
    - {name: burn, slo: latency, tolerance: {burnRate: {window: 5m, below: 14.4}}}
  failAfter: 3
  passAfter: 2
  onNoData: pass
  onError: fail
  series: any
---
apiVersion: slogate.dev/v1
kind: Experiment
metadata: {name: e, labels: {team: t}}
spec:
  slos: [good-ratio, latency]
  maxBudgetSpend: 0.1234567
  maxDuration: 1h30m
  recovery: 90s
  onUnknown: open
`
	want, diags := LoadBytes("edge.yaml", []byte(src))
	if len(diags) != 0 {
		t.Fatalf("fixture:\n%s", diags)
	}
	out := string(roundTrip(t, want))
	// Spot checks of the notation, beyond the equality of the models.
	for _, s := range []string{
		`tier: "1"`, `critical: "true"`, `service: "007"`,
		"minBudgetRemaining: 7%", "minBudgetRemaining: 25%", "maxBudgetSpend: 12.34567%",
		"budgetRemaining: between 10% and 0.333",
		"maxDuration: 1h30m", "recovery: 1m30s", "window: 7d",
		"slos: [good-ratio, latency]",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

// TestMarshalNativeSloth pins what a converted Sloth spec looks like: the
// implicit window and alert tiers made explicit, no defaults repeated.
func TestMarshalNativeSloth(t *testing.T) {
	src := `version: prometheus/v1
service: search
labels: {team: storefront}
slos:
  - name: availability
    objective: 99.9
    description: Search answers.
    sli:
      events:
        error_query: sum(rate(http_requests_total{job="search",code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_requests_total{job="search"}[{{.window}}]))
    alerting:
      name: SearchErrors
      page_alert: {labels: {severity: page}}
      ticket_alert: {disable: true}
`
	set, diags := LoadBytes("sloth.yaml", []byte(src))
	if len(diags) != 0 {
		t.Fatalf("fixture:\n%s", diags)
	}
	want := `apiVersion: slogate.dev/v1
kind: SLO
metadata:
  name: search-availability
  labels:
    team: storefront
spec:
  service: search
  description: Search answers.
  objective: 99.9
  window: 30d
  indicator:
    ratio:
      errors: sum(rate(http_requests_total{job="search",code=~"5.."}[{{.window}}]))
      total: sum(rate(http_requests_total{job="search"}[{{.window}}]))
  alerting:
    name: SearchErrors
    page:
      labels:
        severity: page
    ticket:
      enabled: false
`
	if got := string(roundTrip(t, set)); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

// TestMarshalNativeRefusesIncomplete: what the loader would reject is an
// error here, not a file that fails to load later.
func TestMarshalNativeRefusesIncomplete(t *testing.T) {
	tests := []struct {
		name string
		set  *Set
		want string
	}{
		{"nil", nil, "nil set"},
		{"no indicator", &Set{SLOs: []*SLO{{Name: "a"}}}, `SLO "a": the indicator must have exactly one`},
		{"two indicators", &Set{SLOs: []*SLO{{Name: "a", Indicator: Indicator{Ratio: &RatioIndicator{Errors: "x", Total: "y"}, Raw: &RawIndicator{ErrorRatio: "z"}}}}}, "exactly one of ratio, latency, raw and threshold"},
		{"errors and good", &Set{SLOs: []*SLO{{Name: "a", Indicator: Indicator{Ratio: &RatioIndicator{Errors: "x", Good: "g", Total: "y"}}}}}, "exactly one of errors and good"},
		{"no total", &Set{SLOs: []*SLO{{Name: "a", Indicator: Indicator{Ratio: &RatioIndicator{Errors: "x"}}}}}, "needs a total query"},
		{"query probe without tolerance", &Set{Hypotheses: []*Hypothesis{{Name: "h", Probes: []*Probe{{Name: "p", Query: "up"}}}}}, `hypothesis "h": probe "p": a query probe needs a tolerance`},
		{"slo probe without tolerance", &Set{Hypotheses: []*Hypothesis{{Name: "h", Probes: []*Probe{{Name: "p", SLO: "s"}}}}}, "needs budgetRemaining or burnRate"},
		{"probe with neither", &Set{Hypotheses: []*Hypothesis{{Name: "h", Probes: []*Probe{{Name: "p"}}}}}, "exactly one of query and slo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MarshalNative(tt.set)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
