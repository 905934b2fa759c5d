package slo

import (
	"math"
	"testing"
	"time"
)

func TestEvents(t *testing.T) {
	for _, tc := range []struct {
		name string
		ind  Indicator
		want Events
	}{
		{"errors ratio", Indicator{Ratio: &RatioIndicator{Errors: "e[{{.window}}]", Total: "t[{{.window}}]"}}, Events{Bad: "e[{{.window}}]", Total: "t[{{.window}}]"}},
		{"good ratio", Indicator{Ratio: &RatioIndicator{Good: "g", Total: "t"}}, Events{Good: "g", Total: "t"}},
		{"raw", Indicator{Raw: &RawIndicator{ErrorRatio: "r"}}, Events{Raw: "r"}},
		{"classic latency, integer bound", Indicator{Latency: &LatencyIndicator{Histogram: `http_seconds{job="a\"b"}`, Threshold: 1}}, Events{
			Good:  `sum(rate(http_seconds_bucket{job="a\"b",le=~"1|1\\.0"}[{{.window}}]))`,
			Total: `sum(rate(http_seconds_count{job="a\"b"}[{{.window}}]))`,
		}},
		{"classic latency", Indicator{Latency: &LatencyIndicator{Histogram: `{__name__="h",job="x"}`, Threshold: 0.3}}, Events{
			Good:  `sum(rate(h_bucket{job="x",le=~"0\\.3"}[{{.window}}]))`,
			Total: `sum(rate(h_count{job="x"}[{{.window}}]))`,
		}},
		{"native latency", Indicator{Latency: &LatencyIndicator{Histogram: `h{job="x"}`, Threshold: 0.3, Native: true}}, Events{
			Good:  `histogram_fraction(0, 0.3, sum(rate(h{job="x"}[{{.window}}]))) * histogram_count(sum(rate(h{job="x"}[{{.window}}])))`,
			Total: `histogram_count(sum(rate(h{job="x"}[{{.window}}])))`,
			Ratio: `1 - histogram_fraction(0, 0.3, sum(rate(h{job="x"}[{{.window}}])))`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &SLO{Name: "s", Indicator: tc.ind}
			got, err := o.Events()
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Events() =\n%#v\nwant\n%#v", got, tc.want)
			}
			for _, q := range got.Templates() {
				if _, err := promql.ParseExpr(FillWindow(q, 5*time.Minute)); err != nil {
					t.Errorf("template %q does not parse once filled: %v", q, err)
				}
			}
		})
	}
	if _, err := (&SLO{Name: "none"}).Events(); err == nil {
		t.Error("an SLO without indicator must be an error")
	}
}

func TestSliceCounts(t *testing.T) {
	step := 30 * time.Second
	bad, good, raw := Events{Bad: "b", Total: "t"}, Events{Good: "g", Total: "t"}, Events{Raw: "r"}
	for _, tc := range []struct {
		name string
		ev   Events
		r    Rates
		want Counts
	}{
		{"no total is no traffic", bad, Rates{Bad: 1, HasBad: true}, Counts{}},
		{"zero total is no traffic", bad, Rates{Total: 0, HasTotal: true}, Counts{}},
		{"NaN total is no traffic", bad, Rates{Total: math.NaN(), HasTotal: true}, Counts{}},
		{"missing errors count as none", bad, Rates{Total: 2, HasTotal: true}, Counts{Bad: 0, Total: 60}},
		{"errors", bad, Rates{Bad: 0.5, HasBad: true, Total: 2, HasTotal: true}, Counts{Bad: 15, Total: 60}},
		{"errors above total are clamped", bad, Rates{Bad: 3, HasBad: true, Total: 2, HasTotal: true}, Counts{Bad: 60, Total: 60}},
		{"negative errors are clamped", bad, Rates{Bad: -1, HasBad: true, Total: 2, HasTotal: true}, Counts{Bad: 0, Total: 60}},
		{"good", good, Rates{Good: 1.5, HasGood: true, Total: 2, HasTotal: true}, Counts{Bad: 15, Total: 60}},
		{"missing good is all bad", good, Rates{Total: 2, HasTotal: true}, Counts{Bad: 60, Total: 60}},
		{"raw ratio counts seconds", raw, Rates{Raw: 0.1, HasRaw: true}, Counts{Bad: 3, Total: 30}},
		{"raw ratio above 1 is clamped", raw, Rates{Raw: 7, HasRaw: true}, Counts{Bad: 30, Total: 30}},
		{"raw Inf is no data", raw, Rates{Raw: math.Inf(1), HasRaw: true}, Counts{}},
		{"raw missing is no data", raw, Rates{}, Counts{}},
	} {
		if got := tc.ev.SliceCounts(step, tc.r); math.Abs(got.Bad-tc.want.Bad) > 1e-9 || math.Abs(got.Total-tc.want.Total) > 1e-9 {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
