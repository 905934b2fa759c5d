package slo

import (
	"testing"
	"time"
)

func TestLoadTimeslices(t *testing.T) {
	set, diags := Load("../testdata/definitions/timeslices")
	if len(diags) != 0 {
		t.Fatal(diags)
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
