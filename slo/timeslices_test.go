package slo

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestLoadTimeslices(t *testing.T) {
	set, diags := Load("../testdata/definitions/timeslices")
	if diags.HasErrors() || len(diags.Warnings()) != 1 || !strings.Contains(diags.Warnings()[0].Error(), "op: ignored") {
		t.Fatalf("want one warning, for the op of OpenSLO's example:\n%s", diags)
	}
	for _, tt := range []struct {
		slo       string
		objective float64
		ts        Timeslices
		threshold string // the threshold's tolerance, "" for none
	}{
		{"checkout-good-minutes", 99, Timeslices{Window: time.Minute, Target: 0.995, NoData: SliceSkip}, ""},
		{"checkout-p99-minutes", 95, Timeslices{Window: 5 * time.Minute, NoData: SliceGood}, "< 0.3"},
		{"cart-good-minutes", 99, Timeslices{Window: time.Minute, Target: 0.95, NoData: SliceSkip}, ""},
		{"cart-mean-minutes", 99.9, Timeslices{Window: 2 * time.Minute, Ratio: true, NoData: SliceSkip}, ""},
		{"cart-latency-minutes", 95, Timeslices{Window: time.Minute, NoData: SliceSkip}, "<= 0.3"},
		{"service-availability", 99.95, Timeslices{Window: time.Minute, Target: 0.95, NoData: SliceSkip}, ""},
	} {
		o := set.SLO(tt.slo)
		if o == nil || o.Timeslices == nil {
			t.Fatalf("%s: not a time-slice SLO: %+v", tt.slo, o)
		}
		if *o.Timeslices != tt.ts || o.Objective != tt.objective {
			t.Errorf("%s: objective %v, timeslices %+v; want %v, %+v", tt.slo, o.Objective, *o.Timeslices, tt.objective, tt.ts)
		}
		got := ""
		if th := o.Indicator.Threshold; th != nil {
			got = th.Tolerance.String()
		}
		if got != tt.threshold {
			t.Errorf("%s: threshold %q, want %q", tt.slo, got, tt.threshold)
		}
		if _, err := o.Events(); err != nil {
			t.Errorf("%s: %v", tt.slo, err)
		}
	}
}

// TestOpenSLOLowTrafficExample: OpenSLO's "treat low traffic as equally
// important" example counts good minutes over calendar weeks that start on
// Saturday noon in New York.
func TestOpenSLOLowTrafficExample(t *testing.T) {
	set, diags := Load("../testdata/definitions/timeslices/openslo-low-traffic.yaml")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	o := set.SLO("service-availability")
	start, end := o.Calendar.Period(time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC)) // Saturday 06:00 in New York
	if want := time.Date(2026, 11, 28, 17, 0, 0, 0, time.UTC); !start.Equal(want) || !end.Equal(want.Add(7*24*time.Hour)) {
		t.Errorf("period (%s, %s], want the week from Saturday 28 November noon in New York", start, end)
	}
	// The example's arithmetic: 0.05 % of 10,080 minutes is 5.04 bad minutes.
	if budget := (1 - o.Objective/100) * end.Sub(start).Minutes(); math.Abs(budget-5.04) > 1e-9 {
		t.Errorf("budget %g minutes, want 5.04", budget)
	}
}
